//! net_http: the tokio peer of examples/http_hello.c. No HTTP crate is
//! packaged offline, so this is a minimal hand-written HTTP/1.1 server: a
//! task per connection on a current_thread runtime, keep-alive and
//! pipelining (every complete request in the buffer is answered in one
//! write), the same response bytes as mote's, "Connection: close" honoured,
//! request bodies (Content-Length) skipped.
//!
//!     net_http HOST:PORT
use memchr::memmem;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\n\
Content-Type: text/plain\r\n\
Content-Length: 13\r\n\
\r\n\
Hello, World!";

/// The value of header `name` (lower case) in a request's header block.
fn header<'a>(head: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    head.split(|&b| b == b'\n').find_map(|line| {
        let value = line.get(name.len()..)?.strip_prefix(b":")?;
        line[..name.len()].eq_ignore_ascii_case(name).then_some(value)
    })
}

fn content_length(head: &[u8]) -> usize {
    let v = header(head, b"content-length").unwrap_or(b"");
    let digits = v.iter().skip_while(|b| b.is_ascii_whitespace());
    digits.take_while(|b| b.is_ascii_digit()).fold(0, |n, &d| n * 10 + (d - b'0') as usize)
}

fn wants_close(head: &[u8]) -> bool {
    header(head, b"connection").map_or(false, |v| {
        let v: Vec<u8> = v.iter().copied().skip_while(|b| b.is_ascii_whitespace()).take(5).collect();
        v.eq_ignore_ascii_case(b"close")
    })
}

async fn connection(mut s: TcpStream) {
    let mut buf = vec![0u8; 65536];
    let mut out = Vec::with_capacity(RESPONSE.len() * 64);
    let mut have = 0;
    let mut close = false;
    while !close {
        match s.read(&mut buf[have..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => have += n,
        }
        let mut used = 0;
        while let Some(end) = memmem::find(&buf[used..have], b"\r\n\r\n") {
            let head = &buf[used..used + end + 4];
            let body = content_length(head);
            if have - used - head.len() < body {
                break; // the body is still on its way
            }
            close = wants_close(head);
            used += head.len() + body;
            out.extend_from_slice(RESPONSE);
            if close {
                break;
            }
        }
        if !out.is_empty() {
            if s.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        buf.copy_within(used..have, 0);
        have -= used;
        if have == buf.len() {
            return; // a request larger than we accept
        }
    }
}

fn main() {
    motebench::serve("net_http", connection);
}
