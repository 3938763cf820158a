// switch: two goroutines on one P (GOMAXPROCS=1) each call runtime.Gosched
// in a loop; every yield switches to the other one.
package main

import (
	"runtime"
	"sync/atomic"
	"time"

	"motebench/report"
)

const yields = 2000000 // per goroutine

func main() {
	runtime.GOMAXPROCS(1)
	var total int64
	done := make(chan struct{})
	start := time.Now()
	for i := 0; i < 2; i++ {
		go func() {
			n := int64(0)
			for ; n < yields; n++ {
				runtime.Gosched()
			}
			atomic.AddInt64(&total, n)
			done <- struct{}{}
		}()
	}
	<-done
	<-done
	ns := report.NsPer(start, 2*yields)
	report.Check("switch_yields", atomic.LoadInt64(&total), 2*yields)
	report.Result("switch", "ns/switch", ns)
}
