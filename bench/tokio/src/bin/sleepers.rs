//! sleepers: timer lateness while many tasks come and go, the peer of
//! bench/mote/sleepers.c. 10,000 tasks each sleep once for a random 1-50 ms
//! with tokio::time::sleep (tokio's timer wheel has 1 ms resolution, so its
//! lateness is about 1 ms by design); lateness is how much longer than
//! asked each sleep took. Two runs, each in a child process of its own:
//! `sleepers` (each task ends after its sleep) and `sleepers_alive` (each
//! then waits on a oneshot of its own until main has every sample).
use motebench::{check, lateness};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const N: usize = 10000;

async fn run(alive: bool) {
    let name = if alive { "sleepers_alive" } else { "sleepers" };
    let ended: Arc<Vec<AtomicU8>> = Arc::new((0..N).map(|_| AtomicU8::new(0)).collect());
    let (slept_tx, mut slept_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut gates = Vec::with_capacity(N);
    let mut tasks = Vec::with_capacity(N);
    for i in 0..N {
        let (gate_tx, gate_rx) = tokio::sync::oneshot::channel::<()>();
        if alive {
            gates.push(gate_tx);
        }
        let slept_tx = slept_tx.clone();
        let ended = ended.clone();
        tasks.push(tokio::spawn(async move {
            let asked = Duration::from_millis(1) + Duration::from_micros((i as u64 * 2654435761) % 49000);
            let start = Instant::now();
            tokio::time::sleep(asked).await;
            let took = start.elapsed();
            slept_tx.send((asked, took)).expect("send");
            if alive {
                gate_rx.await.expect("gate");
            }
            ended[i].fetch_add(1, Ordering::Relaxed);
        }));
    }
    let mut late = Vec::with_capacity(N);
    let mut early = 0;
    for _ in 0..N {
        let (asked, took): (Duration, Duration) = slept_rx.recv().await.expect("recv");
        if took < asked {
            early += 1;
        }
        late.push(took.saturating_sub(asked));
    }
    for g in gates {
        g.send(()).expect("gate");
    }
    for t in tasks {
        t.await.expect("task");
    }
    let once = ended.iter().filter(|e| e.load(Ordering::Relaxed) == 1).count();
    check(&format!("{}_ended_once", name), once as i64, N as i64);
    check(&format!("{}_early_samples", name), early, 0);
    lateness(name, Duration::ZERO, &mut late);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 2 {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(run(args[1] == "alive"));
        return;
    }
    let mut status = 0;
    for mode in ["end", "alive"] {
        let ok = std::process::Command::new(&args[0]).arg(mode).status().map(|s| s.success()).unwrap_or(false);
        if !ok {
            status = 1;
        }
    }
    std::process::exit(status);
}
