// cancel_read: how long cancelling a goroutine blocked in a socket read
// takes until it has ended. A reader goroutine blocks in conn.Read on an
// accepted loopback connection; the measure starts at
// conn.SetReadDeadline(past) (the way a context's cancel reaches a
// blocked read) and ends when the reader signals its done channel as it
// returns. The connection is closed after the measurement (as mote's and
// tokio's). 2000 times; p50, p99, max in microseconds.
package main

import (
	"net"
	"sort"
	"time"

	"motebench/report"
)

const rounds = 2000

func main() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	lat := make([]time.Duration, rounds)
	var cancelled int64
	for i := 0; i < rounds; i++ {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			panic(err)
		}
		s, err := l.Accept()
		if err != nil {
			panic(err)
		}
		ready, done := make(chan struct{}), make(chan error, 1)
		go func() {
			buf := make([]byte, 256)
			close(ready)
			_, err := s.Read(buf)
			done <- err
		}()
		<-ready
		time.Sleep(200 * time.Microsecond) // blocked in the read by now
		start := time.Now()
		s.SetReadDeadline(time.Unix(1, 0))
		err = <-done
		lat[i] = time.Since(start)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			cancelled++
		}
		s.Close()
		c.Close()
	}
	l.Close()
	report.Check("cancel_read_cancelled", cancelled, rounds)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	report.Result("cancel_read_p50", "us", us(lat[rounds/2]))
	report.Result("cancel_read_p99", "us", us(lat[rounds*99/100]))
	report.Result("cancel_read_max", "us", us(lat[rounds-1]))
}
