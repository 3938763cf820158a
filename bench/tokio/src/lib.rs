//! Lines every benchmark implementation shares (see bench/mote/bench.h):
//! `RESULT <metric> <unit> <value>` per metric and
//! `CHECK <what> <got> ok|FAIL ...` per correctness check.

use std::time::{Duration, Instant};

/// Print one metric line.
pub fn result(metric: &str, unit: &str, value: f64) {
    println!("RESULT {} {} {:.1}", metric, unit, value);
}

/// Print a check line; exit with status 1 when `got != want`.
pub fn check(what: &str, got: i64, want: i64) {
    if got != want {
        println!("CHECK {} {} FAIL (want {})", what, got, want);
        std::process::exit(1);
    }
    println!("CHECK {} {} ok", what, got);
}

/// Nanoseconds elapsed since `start`, divided by `n`.
pub fn ns_per(start: Instant, n: u64) -> f64 {
    start.elapsed().as_nanos() as f64 / n as f64
}

/// Resident set size in bytes, from /proc/self/statm.
pub fn rss() -> i64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("read /proc/self/statm");
    let resident: i64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    resident * page_size()
}

fn page_size() -> i64 {
    extern "C" {
        fn sysconf(name: i32) -> i64;
    }
    const SC_PAGESIZE: i32 = 30; // Linux
    // SAFETY: sysconf has no preconditions.
    unsafe { sysconf(SC_PAGESIZE) }
}

/// Check that no sample is negative, then print the p50, p99 and max of the
/// lateness samples (how much longer than asked each sleep took) in
/// microseconds as `<name>_p50`, `<name>_p99`, `<name>_max`.
pub fn lateness(name: &str, asked: Duration, took: &mut [Duration]) {
    took.sort();
    let early = took.iter().filter(|d| **d < asked).count();
    check(&format!("{}_early", name), early as i64, 0);
    let n = took.len();
    let us = |d: Duration| (d - asked).as_nanos() as f64 / 1e3;
    result(&format!("{}_p50", name), "us", us(took[n / 2]));
    result(&format!("{}_p99", name), "us", us(took[n * 99 / 100]));
    result(&format!("{}_max", name), "us", us(took[n - 1]));
}

/// The network benchmarks' accept loop: listen on the address in argv[1] and
/// run `handler` in a task per connection, all on one current_thread runtime
/// (the servers are pinned to one CPU, like mote's with MOTE_THREADS=1).
pub fn serve<F, Fut>(name: &str, handler: F)
where
    F: Fn(tokio::net::TcpStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let addr = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: {} HOST:PORT", name);
        std::process::exit(2)
    });
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build().expect("runtime");
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(&addr).await.expect("listen");
        loop {
            match listener.accept().await {
                Ok((s, _)) => drop(tokio::spawn(handler(s))),
                Err(e) => eprintln!("{}: accept: {}", name, e),
            }
        }
    });
}
