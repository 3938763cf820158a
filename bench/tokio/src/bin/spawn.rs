//! spawn: spawn 1M tasks that each send one reply on an mpsc channel; main
//! receives the 1M replies.
use motebench::{check, ns_per, result};
use std::time::Instant;
use tokio::sync::mpsc;

const N: u64 = 1_000_000;

#[tokio::main]
async fn main() {
    let (tx, mut rx) = mpsc::unbounded_channel::<i64>();
    let start = Instant::now();
    for _ in 0..N {
        let tx = tx.clone();
        tokio::spawn(async move {
            let _ = tx.send(1);
        });
    }
    drop(tx);
    let mut got = 0;
    for _ in 0..N {
        got += rx.recv().await.expect("reply");
    }
    let ns = ns_per(start, N);
    check("spawn_replies", got, N as i64);
    result("spawn", "ns/proc", ns);
}
