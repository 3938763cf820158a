// skynet: 1M leaf goroutines in a 10-ary tree sum their ordinals; each
// child sends its sum to its parent on a channel.
package main

import (
	"time"

	"motebench/report"
)

const (
	div    = 10
	leaves = 1000000
)

func skynet(out chan<- int64, num, size int64) {
	if size == 1 {
		out <- num
		return
	}
	rc := make(chan int64)
	sub := size / div
	for i := int64(0); i < div; i++ {
		go skynet(rc, num+i*sub, sub)
	}
	var sum int64
	for i := 0; i < div; i++ {
		sum += <-rc
	}
	out <- sum
}

func main() {
	start := time.Now()
	out := make(chan int64)
	go skynet(out, 0, leaves)
	sum := <-out
	ms := float64(time.Since(start).Nanoseconds()) / 1e6
	report.Check("skynet_sum", sum, 499999500000)
	report.Result("skynet", "ms", ms)
}
