// section_ns: what Go pays to enter and leave a system call that may block
// (entersyscall/exitsyscall), mote's blocking section: getppid through
// syscall.Syscall minus getppid through syscall.RawSyscall (no scheduler
// calls). Batches alternate; the fastest of each counts.
package main

import (
	"os"
	"syscall"
	"time"

	"motebench/report"
)

const (
	batch  = 200000
	rounds = 15
)

var sink uintptr

func plain() time.Duration {
	start := time.Now()
	for i := 0; i < batch; i++ {
		sink, _, _ = syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0)
	}
	return time.Since(start)
}

func section() time.Duration {
	start := time.Now()
	for i := 0; i < batch; i++ {
		sink, _, _ = syscall.Syscall(syscall.SYS_GETPPID, 0, 0, 0)
	}
	return time.Since(start)
}

func main() {
	bestPlain, bestSection := time.Hour, time.Hour
	for r := 0; r < rounds; r++ {
		if d := plain(); d < bestPlain {
			bestPlain = d
		}
		if d := section(); d < bestSection {
			bestSection = d
		}
	}
	report.Check("section_parent", int64(sink), int64(os.Getppid()))
	report.Result("section_call", "ns/call", float64(bestPlain.Nanoseconds())/batch)
	report.Result("section", "ns/call", float64((bestSection-bestPlain).Nanoseconds())/batch)
}
