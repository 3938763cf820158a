//! block_tick: a task sleeps 1 ms 2000 times (tokio::time::sleep) while
//! 2 x workers tasks each run a blocking 50 ms sleep on tokio's blocking
//! pool (spawn_blocking + std::thread::sleep, a nanosleep), in a loop.
//! Reports the ticker's lateness (tokio's timer has 1 ms resolution). The
//! ticker stops after TICKS sleeps or LIMIT, as the mote and Go peers do.
use motebench::{check, lateness, result};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TICKS: usize = 2000;
const LIMIT: Duration = Duration::from_secs(8);

#[tokio::main]
async fn main() {
    let loaders = std::thread::available_parallelism().map_or(1, |n| n.get()) * 2;
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicI64::new(0));
    let mut handles = Vec::new();
    for _ in 0..loaders {
        let (stop, rounds) = (stop.clone(), rounds.clone());
        handles.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                tokio::task::spawn_blocking(|| std::thread::sleep(Duration::from_millis(50)))
                    .await
                    .expect("blocking sleep");
                rounds.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(20)).await; // let the load start
    let asked = Duration::from_millis(1);
    let ticker = tokio::spawn(async move {
        let mut took = Vec::with_capacity(TICKS);
        let begin = Instant::now();
        while took.len() < TICKS && begin.elapsed() < LIMIT {
            let start = Instant::now();
            tokio::time::sleep(asked).await;
            took.push(start.elapsed());
        }
        took
    });
    let mut took = ticker.await.expect("ticker");
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.await.expect("loader");
    }
    check("block_enough_ticks", (took.len() >= 100) as i64, 1);
    result("block_ticks", "ticks", took.len() as f64);
    let busy = if rounds.load(Ordering::Relaxed) >= loaders as i64 { loaders } else { 0 };
    check("block_busy_loaders", busy as i64, loaders as i64);
    lateness("block", asked, &mut took);
}
