// roundtrip: a client goroutine sends n requests to a server goroutine, each
// with its own reply channel, and waits for each reply (argument + 1); main
// receives the total.
package main

import (
	"time"

	"motebench/report"
)

const n = 1000000

type request struct {
	arg   int64
	reply chan int64
}

func server(requests <-chan request) {
	for r := range requests {
		r.reply <- r.arg + 1
	}
}

func client(requests chan<- request, total chan<- int64) {
	var sum int64
	for i := int64(0); i < n; i++ {
		reply := make(chan int64, 1)
		requests <- request{i, reply}
		sum += <-reply
	}
	total <- sum
}

func main() {
	requests := make(chan request)
	total := make(chan int64)
	go server(requests)
	start := time.Now()
	go client(requests, total)
	sum := <-total
	ns := report.NsPer(start, n)
	close(requests)
	report.Check("roundtrip_total", sum, int64(n)*(n+1)/2)
	report.Result("roundtrip", "ns/call", ns)
}
