// waitset: one goroutine selects over n channels (reflect.Select, Go's
// select over a set of any size) of which one has a value per round; time
// per round for n = 10, 100, 1,000 and 10,000 as ws_<n>, beside mote's wait
// set. A round: a send on one buffered channel, then the select.
package main

import (
	"fmt"
	"reflect"
	"time"

	"motebench/report"
)

func rounds(n int) int {
	r := 2000000 / n
	if r > 100000 {
		r = 100000
	}
	if r < 50 {
		r = 50
	}
	return r
}

func main() {
	var first, last float64 // ns/round at the smallest and largest n
	for _, n := range []int{10, 100, 1000, 10000} {
		chans := make([]chan int, n)
		cases := make([]reflect.SelectCase, n)
		for i := range chans {
			chans[i] = make(chan int, 1)
			cases[i] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(chans[i])}
		}
		r := rounds(n)
		wrong := int64(0)
		start := time.Now()
		for i := 0; i < r; i++ {
			k := i % n
			chans[k] <- i
			chosen, v, _ := reflect.Select(cases)
			if chosen != k || int(v.Int()) != i {
				wrong++
			}
		}
		name := fmt.Sprintf("ws_%d", n)
		per := report.NsPer(start, r)
		report.Result(name, "ns/round", per)
		report.Check(name, wrong, 0)
		if n == 10 {
			first = per
		}
		last = per
	}
	// Flat in n: the cost per round at n = 10,000 over that at n = 10.
	report.Result("ws_flat", "ratio", last/first)
}
