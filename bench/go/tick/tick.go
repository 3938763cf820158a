// Package tick runs a ticker under load, shared by block_tick and
// spin_tick: 2 x GOMAXPROCS goroutines call work() in a loop while a
// goroutine sleeps 1 ms Ticks times, or as often as it can in Limit;
// lateness = time slept - 1 ms.
package tick

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"motebench/report"
)

const (
	Ticks    = 2000            // 1 ms sleeps the ticker takes
	Limit    = 8 * time.Second // unless this has passed
	minTicks = 100             // for a meaningful p99
)

// UnderLoad prints <name>_enough_ticks, <name>_busy_loaders and
// <name>_early checks, and <name>_ticks and <name>_p50/_p99/_max.
func UnderLoad(name string, work func()) {
	loaders := 2 * runtime.GOMAXPROCS(0)
	var stop atomic.Bool
	var rounds atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < loaders; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				work()
				rounds.Add(1)
			}
		}()
	}
	time.Sleep(20 * time.Millisecond) // let the load start
	late := make([]time.Duration, 0, Ticks)
	done := make(chan int64)
	go func() {
		begin := time.Now()
		for len(late) < Ticks && time.Since(begin) < Limit {
			start := time.Now()
			time.Sleep(time.Millisecond)
			late = append(late, time.Since(start)-time.Millisecond)
		}
		done <- int64(len(late))
	}()
	ticks := <-done
	stop.Store(true)
	wg.Wait()
	enough := int64(0)
	if ticks >= minTicks {
		enough = 1
	}
	report.Check(name+"_enough_ticks", enough, 1)
	report.Result(name+"_ticks", "ticks", float64(ticks))
	busy := int64(0)
	if rounds.Load() >= int64(loaders) {
		busy = int64(loaders)
	}
	report.Check(name+"_busy_loaders", busy, int64(loaders))
	report.Lateness(name, late)
}
