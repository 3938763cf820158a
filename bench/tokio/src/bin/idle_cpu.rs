//! idle_cpu: CPU time used by an idle runtime while the main task sleeps
//! 5 s (tokio::time::sleep), as a percentage of one core.
use motebench::check;
use std::time::{Duration, Instant};

/// User + system CPU time of the whole process (getrusage(RUSAGE_SELF)).
fn cpu() -> Duration {
    // struct rusage on 64-bit Linux: two struct timeval, then 14 longs.
    #[repr(C)]
    struct Rusage {
        utime: [i64; 2],
        stime: [i64; 2],
        rest: [i64; 14],
    }
    extern "C" {
        fn getrusage(who: i32, usage: *mut Rusage) -> i32;
    }
    let mut ru = Rusage { utime: [0; 2], stime: [0; 2], rest: [0; 14] };
    // SAFETY: ru is a valid, writable struct rusage; RUSAGE_SELF is 0.
    assert_eq!(unsafe { getrusage(0, &mut ru) }, 0);
    let us = (ru.utime[0] + ru.stime[0]) * 1_000_000 + ru.utime[1] + ru.stime[1];
    Duration::from_micros(us as u64)
}

#[tokio::main]
async fn main() {
    let (cpu0, start) = (cpu(), Instant::now());
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (used, wall) = (cpu() - cpu0, start.elapsed());
    check("idle_slept_5s", (wall >= Duration::from_secs(5)) as i64, 1);
    // finer than result()'s one decimal: the figure is well below 1
    println!("RESULT idle_cpu % {:.3}", 100.0 * used.as_secs_f64() / wall.as_secs_f64());
}
