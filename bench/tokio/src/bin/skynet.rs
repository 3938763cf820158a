//! skynet: 1M leaf tasks in a 10-ary tree sum their ordinals; each child
//! sends its sum to its parent over an mpsc channel.
use motebench::{check, result};
use std::time::Instant;
use tokio::sync::mpsc;

const DIV: u64 = 10;
const LEAVES: u64 = 1_000_000;

fn skynet(out: mpsc::Sender<u64>, num: u64, size: u64) {
    tokio::spawn(async move {
        if size == 1 {
            let _ = out.send(num).await;
            return;
        }
        let (tx, mut rx) = mpsc::channel(DIV as usize);
        let sub = size / DIV;
        for i in 0..DIV {
            skynet(tx.clone(), num + i * sub, sub);
        }
        drop(tx);
        let mut sum = 0;
        for _ in 0..DIV {
            sum += rx.recv().await.expect("child sum");
        }
        let _ = out.send(sum).await;
    });
}

#[tokio::main]
async fn main() {
    let start = Instant::now();
    let (tx, mut rx) = mpsc::channel(1);
    skynet(tx, 0, LEAVES);
    let sum = rx.recv().await.expect("root sum");
    let ms = start.elapsed().as_nanos() as f64 / 1e6;
    check("skynet_sum", sum as i64, 499_999_500_000);
    result("skynet", "ms", ms);
}
