//! sleep: a task sleeps 1 ms 2000 times with tokio::time::sleep; reports how
//! much later than 1 ms each sleep returned.
use motebench::{check, lateness};
use std::time::{Duration, Instant};

const SLEEPS: usize = 2000;

#[tokio::main]
async fn main() {
    let asked = Duration::from_millis(1);
    let sleeper = tokio::spawn(async move {
        let mut took = Vec::with_capacity(SLEEPS);
        for _ in 0..SLEEPS {
            let start = Instant::now();
            tokio::time::sleep(asked).await;
            took.push(start.elapsed());
        }
        took
    });
    let mut took = sleeper.await.expect("sleeper");
    check("sleep_count", took.len() as i64, SLEEPS as i64);
    lateness("sleep", asked, &mut took);
}
