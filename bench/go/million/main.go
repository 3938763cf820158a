// million: many goroutines suspended at once, the peer of
// bench/mote/million.c. Two runs, each in a child process of its own:
//
//	million        N (MILLION_N, default 1,000,000) goroutines each blocked
//	               receiving on a channel of its own; main then sends each
//	               one value, and each ends;
//	million_sleep  N/10 goroutines each in time.Sleep of 500-1000 ms.
//
// Reported: RSS growth per goroutine once all are blocked, the time from
// the first `go` until all are blocked and until the last has ended.
// Checks: every goroutine got its own value and ended exactly once.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"time"

	"motebench/report"
)

func run(n int, sleep bool) {
	name := "million"
	if sleep {
		name = "million_sleep"
	}
	var chans []chan int64
	if !sleep {
		chans = make([]chan int64, n)
	}
	done := make([]uint8, n)
	var blocked, ended, bad atomic.Int64
	all := make(chan struct{})
	rss0 := report.RSS()
	t0 := time.Now()
	for i := 0; i < n; i++ {
		var ch chan int64
		if !sleep {
			ch = make(chan int64)
			chans[i] = ch
		}
		go func(i int64, ch chan int64) {
			blocked.Add(1)
			if ch == nil {
				time.Sleep(time.Duration(500+(uint64(i)*2654435761)%500) * time.Millisecond)
			} else if v := <-ch; v != i {
				bad.Add(1)
			}
			done[i]++
			if ended.Add(1) == int64(n) {
				close(all)
			}
		}(int64(i), ch)
	}
	for blocked.Load() < int64(n) {
		time.Sleep(time.Millisecond)
	}
	tBlocked := time.Now()
	time.Sleep(20 * time.Millisecond) // the last ones counted are parking now
	rss1 := report.RSS()
	for i, ch := range chans {
		ch <- int64(i)
	}
	<-all
	tEnd := time.Now()
	once := int64(0)
	for _, d := range done {
		if d == 1 {
			once++
		}
	}
	report.Check(name+"_ended_once", once, int64(n))
	report.Check(name+"_bad", bad.Load(), 0)
	report.Result(name+"_rss", "B/proc", float64(rss1-rss0)/float64(n))
	report.Result(name+"_blocked", "ms", float64(tBlocked.Sub(t0).Nanoseconds())/1e6)
	report.Result(name+"_total", "ms", float64(tEnd.Sub(t0).Nanoseconds())/1e6)
}

func main() {
	if len(os.Args) == 3 {
		n, _ := strconv.Atoi(os.Args[1])
		run(n, os.Args[2] == "sleep")
		return
	}
	n := 1000000
	if v, err := strconv.Atoi(os.Getenv("MILLION_N")); err == nil && v >= 10 {
		n = v
	}
	status := 0
	for _, r := range []struct {
		n    int
		mode string
	}{{n, "recv"}, {n / 10, "sleep"}} {
		cmd := exec.Command(os.Args[0], strconv.Itoa(r.n), r.mode)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			status = 1
		}
	}
	os.Exit(status)
}
