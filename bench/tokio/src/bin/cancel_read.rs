//! cancel_read: how long cancelling a task blocked in a socket read takes
//! until it has ended. A reader task waits to read an accepted loopback
//! connection it shares (an Arc, so dropping the task does not close it);
//! the measure starts at abort() and ends when awaiting its JoinHandle
//! returns the cancellation. The connection is closed after the
//! measurement (as mote's and Go's). 2000 times; p50, p99, max in
//! microseconds.
use motebench::{check, result};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};

const ROUNDS: usize = 2000;

#[tokio::main]
async fn main() {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("listen");
    let addr = l.local_addr().expect("addr");
    let mut lat = Vec::with_capacity(ROUNDS);
    let mut cancelled = 0i64;
    for _ in 0..ROUNDS {
        let c = TcpStream::connect(addr).await.expect("connect");
        let (s, _) = l.accept().await.expect("accept");
        let s = Arc::new(s);
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let theirs = s.clone();
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 256];
            let _ = ready_tx.send(());
            loop {
                if theirs.readable().await.is_err() {
                    break;
                }
                match theirs.try_read(&mut buf) {
                    Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    _ => break,
                }
            }
        });
        ready_rx.await.expect("ready");
        tokio::time::sleep(Duration::from_micros(200)).await; // blocked in the read by now
        let start = Instant::now();
        reader.abort();
        let r = reader.await;
        lat.push(start.elapsed());
        if matches!(r, Err(ref e) if e.is_cancelled()) {
            cancelled += 1;
        }
        drop(s);
        drop(c);
    }
    check("cancel_read_cancelled", cancelled, ROUNDS as i64);
    lat.sort();
    let us = |d: Duration| d.as_nanos() as f64 / 1e3;
    result("cancel_read_p50", "us", us(lat[ROUNDS / 2]));
    result("cancel_read_p99", "us", us(lat[ROUNDS * 99 / 100]));
    result("cancel_read_max", "us", us(lat[ROUNDS - 1]));
}
