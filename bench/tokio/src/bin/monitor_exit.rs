//! monitor_exit: the cost of learning that a task ended. Main spawns tasks
//! in batches of 1000, each ending at once, and awaits their JoinHandles;
//! 1M tasks in all (mote: mote_spawn_fn + mote_monitor, and the exit
//! notices received).
use motebench::{check, ns_per, result};
use std::time::Instant;

const N: usize = 1_000_000;
const BATCH: usize = 1000;

async fn run() -> i64 {
    let mut ended = 0i64;
    let mut handles = Vec::with_capacity(BATCH);
    for _ in 0..N / BATCH {
        for _ in 0..BATCH {
            handles.push(tokio::spawn(async {}));
        }
        for h in handles.drain(..) {
            h.await.expect("task");
            ended += 1;
        }
    }
    ended
}

#[tokio::main]
async fn main() {
    run().await; // warm-up, as mote's
    let start = Instant::now();
    let ended = run().await;
    let ns = ns_per(start, N as u64);
    check("monitor_exits", ended, N as i64);
    result("monitor_exit", "ns/proc", ns);
}
