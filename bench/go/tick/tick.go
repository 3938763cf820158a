// Package tick runs a ticker under load, shared by block_tick and
// spin_tick: 2 x GOMAXPROCS goroutines call work() in a loop while a
// goroutine sleeps 1 ms Ticks times; lateness = time slept - 1 ms.
package tick

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"motebench/report"
)

// Ticks is the number of 1 ms sleeps the ticker takes.
const Ticks = 2000

// UnderLoad prints <name>_count, <name>_busy_loaders and <name>_early checks
// and <name>_p50/_p99/_max.
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
	late := make([]time.Duration, Ticks)
	done := make(chan int64)
	go func() {
		for i := range late {
			start := time.Now()
			time.Sleep(time.Millisecond)
			late[i] = time.Since(start) - time.Millisecond
		}
		done <- Ticks
	}()
	ticks := <-done
	stop.Store(true)
	wg.Wait()
	report.Check(name+"_count", ticks, Ticks)
	busy := int64(0)
	if rounds.Load() >= int64(loaders) {
		busy = int64(loaders)
	}
	report.Check(name+"_busy_loaders", busy, int64(loaders))
	report.Lateness(name, late)
}
