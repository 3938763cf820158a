//! net_echo: the tokio peer of examples/echo.c: a task per connection on a
//! current_thread runtime, reading into a 16 KiB buffer and writing back
//! whatever arrived.
//!
//!     net_echo HOST:PORT
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn echo(mut s: TcpStream) {
    let mut buf = vec![0u8; 2048];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if s.write_all(&buf[..n]).await.is_err() {
                    return;
                }
            }
        }
    }
}

fn main() {
    motebench::serve("net_echo", echo);
}
