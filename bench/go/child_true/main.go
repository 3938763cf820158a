// child_true: exec.Command("/bin/true").Run() 1000 times one after the
// other, then 2000 times from 8 goroutines at once; reports microseconds
// per child. Standard streams are /dev/null (exec.Command's default).
package main

import (
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"motebench/report"
)

const (
	seq      = 1000
	par      = 2000
	inflight = 8
)

func runTrue() int64 {
	if exec.Command("/bin/true").Run() != nil {
		return 0
	}
	return 1
}

func main() {
	var ok int64
	start := time.Now()
	for i := 0; i < seq; i++ {
		ok += runTrue()
	}
	seqUs := report.NsPer(start, seq) / 1e3
	report.Check("child_true_ok", ok, seq)
	var parOk int64
	var wg sync.WaitGroup
	start = time.Now()
	for g := 0; g < inflight; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < par/inflight; i++ {
				atomic.AddInt64(&parOk, runTrue())
			}
		}()
	}
	wg.Wait()
	parUs := report.NsPer(start, par) / 1e3
	report.Check("child_true_par_ok", parOk, par)
	report.Result("child_true", "us/child", seqUs)
	report.Result("child_true_par", "us/child", parUs)
}
