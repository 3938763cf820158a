// block_tick: a goroutine sleeps 1 ms 2000 times while 2 x GOMAXPROCS
// goroutines each make a blocking 50 ms nanosleep system call in a loop
// (syscall.Nanosleep goes through entersyscall, so sysmon hands the P of a
// blocked thread to another one). Reports the ticker's lateness.
package main

import (
	"syscall"

	"motebench/tick"
)

func main() {
	tick.UnderLoad("block", func() {
		ts := syscall.NsecToTimespec(50e6)
		for syscall.Nanosleep(&ts, &ts) == syscall.EINTR {
		}
	})
}
