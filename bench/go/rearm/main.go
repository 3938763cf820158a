// rearm: a timer re-armed to 60 s from now 1M times with timer.Reset (the
// timer never fires in between); reports ns per Reset. Checks that a timer
// moved earlier and then later again fires at its new time, not its old.
package main

import (
	"time"

	"motebench/report"
)

const rearms = 1000000

func main() {
	t := time.NewTimer(60 * time.Second)
	start := time.Now()
	for i := 0; i < rearms; i++ {
		t.Reset(60 * time.Second)
	}
	report.Result("rearm", "ns/op", report.NsPer(start, rearms))
	// Earlier, then later again: the earlier deadline must not fire it.
	start = time.Now()
	t.Reset(50 * time.Millisecond)
	t.Reset(100 * time.Millisecond)
	time.Sleep(60 * time.Millisecond)
	early := int64(0)
	select {
	case <-t.C:
		if time.Since(start) < 100*time.Millisecond {
			early = 1
		}
	default:
		<-t.C
	}
	report.Check("rearm_early", early, 0)
	late := int64(0)
	if time.Since(start) >= 100*time.Millisecond {
		late = 1
	}
	report.Check("rearm_fired_late_enough", late, 1)
}
