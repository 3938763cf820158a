//! idle_rss: resident memory per idle task, each awaiting a oneshot;
//! measured once all of them have been polled. The vector of senders is
//! allocated and filled before the first measurement.
use motebench::{check, result, rss};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::oneshot;

const N: usize = 1_000_000;
static STARTED: AtomicUsize = AtomicUsize::new(0);

#[tokio::main]
async fn main() {
    let mut senders: Vec<Option<oneshot::Sender<()>>> = (0..N).map(|_| None).collect();
    let before = rss();
    for slot in senders.iter_mut() {
        let (tx, rx) = oneshot::channel::<()>();
        *slot = Some(tx);
        tokio::spawn(async move {
            STARTED.fetch_add(1, Ordering::Relaxed);
            let _ = rx.await;
        });
    }
    while STARTED.load(Ordering::Relaxed) < N {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let after = rss();
    check("idle_rss_procs", STARTED.load(Ordering::Relaxed) as i64, N as i64);
    drop(senders);
    result("idle_rss", "B/proc", (after - before) as f64 / N as f64);
}
