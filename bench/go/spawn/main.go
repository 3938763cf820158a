// spawn: start 1M goroutines that each send one reply on a channel; main
// receives the 1M replies.
package main

import (
	"time"

	"motebench/report"
)

const n = 1000000

func main() {
	replies := make(chan int64, n)
	start := time.Now()
	for i := 0; i < n; i++ {
		go func() { replies <- 1 }()
	}
	var got int64
	for i := 0; i < n; i++ {
		got += <-replies
	}
	ns := report.NsPer(start, n)
	report.Check("spawn_replies", got, n)
	report.Result("spawn", "ns/proc", ns)
}
