//! net_echo: the tokio peer of examples/echo.c: a task per connection on a
//! current_thread runtime, reading into a 16 KiB buffer and writing back
//! whatever arrived.
//!
//!     net_echo HOST:PORT
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn echo(mut s: TcpStream) {
    let mut buf = vec![0u8; 16384];
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
    let addr = std::env::args().nth(1).expect("usage: net_echo HOST:PORT");
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build().expect("runtime");
    rt.block_on(async {
        let listener = TcpListener::bind(&addr).await.expect("listen");
        loop {
            match listener.accept().await {
                Ok((s, _)) => drop(tokio::spawn(echo(s))),
                Err(e) => eprintln!("net_echo: accept: {}", e),
            }
        }
    });
}
