//! rearm: a Sleep re-armed to 60 s from now 1M times with Sleep::reset (it
//! never fires in between); reports ns per reset. Checks that a sleep moved
//! earlier and then later again completes at its new time, not its old.
use motebench::{check, ns_per, result};
use std::time::{Duration, Instant};
use tokio::time::{sleep, Instant as TInstant};

const REARMS: u64 = 1_000_000;

#[tokio::main]
async fn main() {
    let s = sleep(Duration::from_secs(60));
    tokio::pin!(s);
    // Register it with the timer driver first, as a sleep being awaited is.
    tokio::select! {
        biased;
        _ = &mut s => {}
        _ = std::future::ready(()) => {}
    }
    let start = Instant::now();
    for _ in 0..REARMS {
        s.as_mut().reset(TInstant::now() + Duration::from_secs(60));
    }
    result("rearm", "ns/op", ns_per(start, REARMS));
    // Earlier, then later again: the earlier deadline must not end it.
    let start = Instant::now();
    s.as_mut().reset(TInstant::now() + Duration::from_millis(50));
    s.as_mut().reset(TInstant::now() + Duration::from_millis(100));
    let early = tokio::select! {
        biased;
        _ = &mut s => (start.elapsed() < Duration::from_millis(100)) as i64,
        _ = sleep(Duration::from_millis(60)) => 0,
    };
    check("rearm_early", early, 0);
    if !s.is_elapsed() {
        s.as_mut().await;
    }
    check("rearm_fired_late_enough", (start.elapsed() >= Duration::from_millis(100)) as i64, 1);
}
