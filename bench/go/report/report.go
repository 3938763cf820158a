// Package report prints the lines every benchmark implementation shares
// (see bench/mote/bench.h): "RESULT <metric> <unit> <value>" per metric and
// "CHECK <what> <got> ok|FAIL ..." per correctness check.
package report

import (
	"fmt"
	"os"
	"sort"
	"time"
)

// Result prints one metric line.
func Result(metric, unit string, value float64) {
	fmt.Printf("RESULT %s %s %.1f\n", metric, unit, value)
}

// Check prints a check line and exits with status 1 when got != want.
func Check(what string, got, want int64) {
	if got != want {
		fmt.Printf("CHECK %s %d FAIL (want %d)\n", what, got, want)
		os.Exit(1)
	}
	fmt.Printf("CHECK %s %d ok\n", what, got)
}

// NsPer is the elapsed time since start in nanoseconds, divided by n.
func NsPer(start time.Time, n int) float64 {
	return float64(time.Since(start).Nanoseconds()) / float64(n)
}

// RSS is the resident set size in bytes, from /proc/self/statm.
func RSS() int64 {
	f, err := os.Open("/proc/self/statm")
	if err != nil {
		panic(err)
	}
	defer f.Close()
	var total, resident int64
	if _, err := fmt.Fscan(f, &total, &resident); err != nil {
		panic(err)
	}
	return resident * int64(os.Getpagesize())
}

// Lateness checks that no sample is negative and prints the p50, p99 and
// max of the samples in microseconds as <name>_p50, <name>_p99, <name>_max.
func Lateness(name string, late []time.Duration) {
	sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
	early := int64(0)
	for _, d := range late {
		if d < 0 {
			early++
		}
	}
	Check(name+"_early", early, 0)
	n := len(late)
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	Result(name+"_p50", "us", us(late[n/2]))
	Result(name+"_p99", "us", us(late[n*99/100]))
	Result(name+"_max", "us", us(late[n-1]))
}
