//! roundtrip: a client task sends N requests, each with its own oneshot
//! reply channel, to a server task over an mpsc channel and awaits each
//! reply (argument + 1); main awaits the total.
use motebench::{check, ns_per, result};
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

const N: u64 = 1_000_000;

#[tokio::main]
async fn main() {
    let (tx, mut rx) = mpsc::unbounded_channel::<(u64, oneshot::Sender<u64>)>();
    tokio::spawn(async move {
        while let Some((arg, reply)) = rx.recv().await {
            let _ = reply.send(arg + 1);
        }
    });
    let start = Instant::now();
    let client = tokio::spawn(async move {
        let mut sum = 0;
        for i in 0..N {
            let (reply_tx, reply_rx) = oneshot::channel();
            tx.send((i, reply_tx)).expect("server alive");
            sum += reply_rx.await.expect("reply");
        }
        sum
    });
    let sum = client.await.expect("client");
    let ns = ns_per(start, N);
    check("roundtrip_total", sum as i64, (N * (N + 1) / 2) as i64);
    result("roundtrip", "ns/call", ns);
}
