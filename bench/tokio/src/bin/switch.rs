//! switch: two tasks on a current_thread runtime each call yield_now in a
//! loop; every yield switches to the other one.
use motebench::{check, ns_per, result};
use std::time::Instant;

const YIELDS: u64 = 2_000_000; // per task

async fn yielder() -> u64 {
    let mut n = 0;
    while n < YIELDS {
        tokio::task::yield_now().await;
        n += 1;
    }
    n
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let start = Instant::now();
        let a = tokio::spawn(yielder());
        let b = tokio::spawn(yielder());
        let total = a.await.expect("a") + b.await.expect("b");
        let ns = ns_per(start, 2 * YIELDS);
        check("switch_yields", total as i64, 2 * YIELDS as i64);
        result("switch", "ns/switch", ns);
    });
}
