// sleepers: timer lateness while many goroutines come and go, the peer of
// bench/mote/sleepers.c. 10,000 goroutines each sleep once for a random
// 1-50 ms; lateness is how much longer than asked each time.Sleep took.
// Two runs, each in a child process of its own:
//
//	sleepers        each goroutine ends after its sleep;
//	sleepers_alive  each then waits on a channel of its own until main has
//	                every sample, and ends after that.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"sync/atomic"
	"time"

	"motebench/report"
)

const n = 10000

func run(alive bool) {
	name := "sleepers"
	if alive {
		name = "sleepers_alive"
	}
	late := make([]time.Duration, n)
	ended := make([]uint8, n)
	chans := make([]chan int, n)
	var slept, gone atomic.Int64
	allSlept, allGone := make(chan struct{}), make(chan struct{})
	for i := 0; i < n; i++ {
		if alive {
			chans[i] = make(chan int)
		}
		go func(i int, ch chan int) {
			d := time.Millisecond + time.Duration((uint64(i)*2654435761)%49000)*time.Microsecond
			t0 := time.Now()
			time.Sleep(d)
			late[i] = time.Since(t0) - d
			if slept.Add(1) == n {
				close(allSlept)
			}
			if ch != nil {
				<-ch
			}
			ended[i]++
			if gone.Add(1) == n {
				close(allGone)
			}
		}(i, chans[i])
	}
	<-allSlept
	if alive {
		for i, ch := range chans {
			ch <- i
		}
	}
	<-allGone
	once := int64(0)
	for _, e := range ended {
		if e == 1 {
			once++
		}
	}
	report.Check(name+"_ended_once", once, n)
	report.Lateness(name, late)
}

func main() {
	if len(os.Args) == 2 {
		run(os.Args[1] == "alive")
		return
	}
	status := 0
	for _, mode := range []string{"end", "alive"} {
		cmd := exec.Command(os.Args[0], mode)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			status = 1
		}
	}
	os.Exit(status)
}
