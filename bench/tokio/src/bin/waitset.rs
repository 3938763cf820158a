//! waitset: one task waits over n tasks in a JoinSet (tokio's persistent
//! set: join_next is woken by the task that finished) of which one finishes
//! per round; the other n - 1 sleep an hour. Time per round for n = 10,
//! 100, 1,000 and 10,000 as ws_<n>, beside mote's wait set. A round: spawn a
//! task that returns i (mote: an async call to an echo process, its future
//! added to the set), then join_next. One thread, like mote's one worker.
use motebench::{check, ns_per, result};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

fn rounds(n: u64) -> u64 {
    (2_000_000 / n).clamp(50, 100_000)
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let (mut first, mut last) = (0.0, 0.0); // ns/round at the smallest and largest n
        for n in [10u64, 100, 1000, 10000] {
            let mut set = JoinSet::new();
            for _ in 0..n - 1 {
                set.spawn(async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    u64::MAX
                });
            }
            let r = rounds(n);
            let mut wrong = 0i64;
            let start = Instant::now();
            for i in 0..r {
                set.spawn(async move { i });
                match set.join_next().await {
                    Some(Ok(v)) if v == i => {}
                    _ => wrong += 1,
                }
            }
            let name = format!("ws_{}", n);
            let per = ns_per(start, r);
            result(&name, "ns/round", per);
            check(&name, wrong, 0);
            set.abort_all();
            if n == 10 {
                first = per;
            }
            last = per;
        }
        // Flat in n: the cost per round at n = 10,000 over that at n = 10.
        result("ws_flat", "ratio", last / first);
    });
}
