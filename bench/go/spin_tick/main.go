// spin_tick: a goroutine sleeps 1 ms 2000 times while 2 x GOMAXPROCS
// goroutines each spin for about 200 ms of CPU at a time (a loop with no
// calls: only sysmon's asynchronous preemption, after 10 ms, stops it), in
// a loop. Reports the ticker's lateness.
package main

import (
	"time"

	"motebench/tick"
)

var sink uint64

// spin runs n rounds of xorshift64, a dependent chain with no calls.
func spin(n uint64) {
	x := uint64(88172645463325252)
	for i := uint64(0); i < n; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	sink = x
}

func main() {
	const trial = 20_000_000
	best := time.Hour
	for i := 0; i < 3; i++ {
		start := time.Now()
		spin(trial)
		if d := time.Since(start); d < best {
			best = d
		}
	}
	n := uint64(float64(trial) * float64(200*time.Millisecond) / float64(best))
	tick.UnderLoad("spin", func() { spin(n) })
}
