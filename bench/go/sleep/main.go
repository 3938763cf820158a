// sleep: a goroutine sleeps 1 ms 2000 times; reports how much later than
// 1 ms each time.Sleep returned.
package main

import (
	"time"

	"motebench/report"
)

const sleeps = 2000

func main() {
	late := make([]time.Duration, sleeps)
	done := make(chan int64)
	go func() {
		for i := range late {
			start := time.Now()
			time.Sleep(time.Millisecond)
			late[i] = time.Since(start) - time.Millisecond
		}
		done <- sleeps
	}()
	report.Check("sleep_count", <-done, sleeps)
	report.Lateness("sleep", late)
}
