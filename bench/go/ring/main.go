// ring: 1000 goroutines linked by channels pass a token 1000 times around
// (1M hops); the holder after the last hop reports the hop count and its
// index.
package main

import (
	"time"

	"motebench/report"
)

const (
	procs  = 1000
	rounds = 1000
	hops   = procs * rounds
)

func node(index int64, in <-chan int64, next chan<- int64, done chan<- [2]int64) {
	for h := range in {
		if h == hops {
			done <- [2]int64{h, index}
		} else {
			next <- h + 1
		}
	}
}

func main() {
	ring := make([]chan int64, procs)
	for i := range ring {
		ring[i] = make(chan int64)
	}
	done := make(chan [2]int64)
	for i := range ring {
		go node(int64(i), ring[i], ring[(i+1)%procs], done)
	}
	start := time.Now()
	ring[0] <- 0
	res := <-done
	ns := report.NsPer(start, hops)
	for _, c := range ring {
		close(c)
	}
	report.Check("ring_hops", res[0], hops)
	report.Check("ring_end", res[1], 0)
	report.Result("ring", "ns/hop", ns)
}
