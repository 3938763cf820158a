//! child_true: tokio::process::Command::new("/bin/true").status() 1000
//! times one after the other in a spawned task (as mote's ordinary
//! process; the main future runs on the runtime's own thread), then 2000
//! times from 8 tasks at once;
//! reports microseconds per child. Standard streams are /dev/null, as the
//! mote and Go peers have them.
use motebench::{check, ns_per, result};
use std::process::Stdio;
use std::time::Instant;
use tokio::process::Command;

const SEQ: u64 = 1000;
const PAR: u64 = 2000;
const INFLIGHT: u64 = 8;

async fn run_true() -> i64 {
    let status = Command::new("/bin/true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .expect("spawn /bin/true");
    status.success() as i64
}

#[tokio::main]
async fn main() {
    let (ok, seq_us) = tokio::spawn(async {
        let mut ok = 0;
        let start = Instant::now();
        for _ in 0..SEQ {
            ok += run_true().await;
        }
        (ok, ns_per(start, SEQ) / 1e3)
    })
    .await
    .expect("sequential runner");
    check("child_true_ok", ok, SEQ as i64);
    let start = Instant::now();
    let tasks: Vec<_> = (0..INFLIGHT)
        .map(|_| {
            tokio::spawn(async {
                let mut ok = 0;
                for _ in 0..PAR / INFLIGHT {
                    ok += run_true().await;
                }
                ok
            })
        })
        .collect();
    let mut par_ok = 0;
    for t in tasks {
        par_ok += t.await.expect("runner");
    }
    let par_us = ns_per(start, PAR) / 1e3;
    check("child_true_par_ok", par_ok, PAR as i64);
    result("child_true", "us/child", seq_us);
    result("child_true_par", "us/child", par_us);
}
