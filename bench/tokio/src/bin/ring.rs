//! ring: 1000 tasks linked by mpsc channels pass a token 1000 times around
//! (1M hops); the holder after the last hop reports the hop count and its
//! index.
use motebench::{check, ns_per, result};
use std::time::Instant;
use tokio::sync::mpsc;

const PROCS: usize = 1000;
const ROUNDS: u64 = 1000;
const HOPS: u64 = PROCS as u64 * ROUNDS;

#[tokio::main]
async fn main() {
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..PROCS).map(|_| mpsc::unbounded_channel::<u64>()).unzip();
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(u64, usize)>();
    for (index, mut rx) in receivers.into_iter().enumerate() {
        let next = senders[(index + 1) % PROCS].clone();
        let done = done_tx.clone();
        tokio::spawn(async move {
            while let Some(hops) = rx.recv().await {
                if hops == HOPS {
                    let _ = done.send((hops, index));
                } else {
                    let _ = next.send(hops + 1);
                }
            }
        });
    }
    let start = Instant::now();
    senders[0].send(0).expect("ring alive");
    let (hops, index) = done_rx.recv().await.expect("token");
    let ns = ns_per(start, HOPS);
    check("ring_hops", hops as i64, HOPS as i64);
    check("ring_end", index as i64, 0);
    result("ring", "ns/hop", ns);
}
