// idle_cpu: CPU time used by an idle runtime while the main goroutine
// sleeps 5 s, as a percentage of one core.
package main

import (
	"fmt"
	"syscall"
	"time"

	"motebench/report"
)

func cpu() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func main() {
	cpu0, start := cpu(), time.Now()
	time.Sleep(5 * time.Second)
	used, wall := cpu()-cpu0, time.Since(start)
	slept := int64(0)
	if wall >= 5*time.Second {
		slept = 1
	}
	report.Check("idle_slept_5s", slept, 1)
	// finer than report.Result's one decimal: the figure is well below 1
	fmt.Printf("RESULT idle_cpu %% %.3f\n", 100*float64(used)/float64(wall))
}
