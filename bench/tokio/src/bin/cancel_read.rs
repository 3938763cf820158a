//! cancel_read: how long cancelling a task blocked in a socket read takes
//! until it has ended. A reader task blocks in read() on an accepted
//! loopback connection; the measure starts at abort() and ends when
//! awaiting its JoinHandle returns the cancellation (the task was dropped,
//! and its socket with it). 2000 times; p50, p99, max in microseconds.
use motebench::{check, result};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;
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
        let (mut s, _) = l.accept().await.expect("accept");
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 256];
            let _ = ready_tx.send(());
            let _ = s.read(&mut buf).await;
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
        drop(c);
    }
    check("cancel_read_cancelled", cancelled, ROUNDS as i64);
    lat.sort();
    let us = |d: Duration| d.as_nanos() as f64 / 1e3;
    result("cancel_read_p50", "us", us(lat[ROUNDS / 2]));
    result("cancel_read_p99", "us", us(lat[ROUNDS * 99 / 100]));
    result("cancel_read_max", "us", us(lat[ROUNDS - 1]));
}
