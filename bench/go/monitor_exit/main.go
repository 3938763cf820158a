// monitor_exit: the cost of learning that a goroutine ended. Main starts
// goroutines in batches of 1000, each ending at once and telling a
// sync.WaitGroup, and waits for the batch; 1M goroutines in all (mote:
// mote_spawn_fn + mote_monitor, and the exit notices received).
package main

import (
	"sync"
	"time"

	"motebench/report"
)

const (
	n     = 1000000
	batch = 1000
)

func run() int64 {
	var wg sync.WaitGroup
	var ended int64
	var mu sync.Mutex
	for b := 0; b < n/batch; b++ {
		wg.Add(batch)
		for i := 0; i < batch; i++ {
			go func() { wg.Done() }()
		}
		wg.Wait()
		mu.Lock()
		ended += batch
		mu.Unlock()
	}
	return ended
}

func main() {
	run() // warm-up, as mote's
	start := time.Now()
	ended := run()
	ns := report.NsPer(start, n)
	report.Check("monitor_exits", ended, n)
	report.Result("monitor_exit", "ns/proc", ns)
}
