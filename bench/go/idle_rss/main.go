// idle_rss: resident memory per idle goroutine, each blocked receiving on a
// channel; measured once all of them have started.
package main

import (
	"runtime"
	"sync"

	"motebench/report"
)

const n = 1000000

func main() {
	release := make(chan struct{})
	var started sync.WaitGroup
	started.Add(n)
	before := report.RSS()
	for i := 0; i < n; i++ {
		go func() {
			started.Done()
			<-release
		}()
	}
	started.Wait()
	after := report.RSS()
	report.Check("idle_rss_procs", int64(runtime.NumGoroutine()-1), n)
	close(release)
	report.Result("idle_rss", "B/proc", float64(after-before)/n)
}
