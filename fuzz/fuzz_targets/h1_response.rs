//! The HTTP/1.1 response parser: an `H1Conn` on an in-memory stream whose
//! reads return the input as the server's bytes, in chunks of varying size
//! (and, now and then, "not ready yet"), driven by a minimal executor.
//! Requests go out while the connection stays reusable (keep-alive), so
//! one input can hold several responses.
//!
//! Input: a flags byte (bit 0: `keep`, bit 1: the first request is a HEAD,
//! bit 2: reads may return Pending), a byte seeding the chunk sizes, then
//! the response bytes.
#![no_main]

use http::{HeaderMap, HeaderValue, Method};
use libfuzzer_sys::fuzz_target;
use stampede::protocol::h1::{is_redirect, H1Conn};
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The server's side of the connection: the response bytes, served in
/// chunks of 1..=`max_chunk` bytes (a fixed xorshift sequence).
struct Server<'a> {
    response: &'a [u8],
    state: u32,
    max_chunk: usize,
    pending: bool,
    ready: bool,
}

impl Server<'_> {
    fn next(&mut self) -> u32 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 17;
        self.state ^= self.state << 5;
        self.state
    }
}

impl AsyncRead for Server<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.pending && !self.ready && self.next() % 4 == 0 {
            self.ready = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.ready = false;
        let chunk = 1 + self.next() as usize % self.max_chunk;
        let n = chunk.min(buf.remaining()).min(self.response.len());
        let (now, later) = self.response.split_at(n);
        buf.put_slice(now);
        self.response = later;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Server<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Polls `future` to completion. The stream never waits on anything (a
/// Pending wakes itself at once), so a future still pending after a
/// million polls is a hang.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..1_000_000 {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("the exchange does not finish on a stream that is always ready");
}

fuzz_target!(|data: &[u8]| {
    let [flags, seed, response @ ..] = data else {
        return;
    };
    let keep = flags & 1 != 0;
    let server = Server {
        response,
        state: 0x9E37_79B9 ^ u32::from(*seed),
        max_chunk: 1 + usize::from(*seed % 64) * usize::from(*seed % 3 + 1) * 64,
        pending: flags & 4 != 0,
        ready: false,
    };
    // Half the inputs under a small body limit (`[http] max_body`), so
    // the refusal at the limit is fuzzed in every framing too.
    let max_body = if flags & 8 != 0 {
        u64::from(flags >> 4) * 16
    } else {
        1 << 20
    };
    let mut conn = H1Conn::new(server).with_max_body(max_body);
    let host = HeaderValue::from_static("127.0.0.1:8080");
    let headers = HeaderMap::new();
    block_on(async {
        for i in 0..4 {
            if !conn.is_reusable() {
                break;
            }
            let method = if i == 0 && flags & 2 != 0 {
                Method::HEAD
            } else {
                Method::GET
            };
            match conn.send(&method, "/", &host, &headers, b"", keep).await {
                Ok((head, body)) => {
                    assert!((200..=999).contains(&head.status), "status {}", head.status);
                    assert!(body.len() as u64 <= max_body, "a body past max_body");
                    if !keep {
                        // Only a redirect's Location is kept.
                        let location = is_redirect(head.status) && head.headers.len() <= 1;
                        let only = head.headers.keys().all(|k| k == "location");
                        assert!(body.is_empty() && (head.headers.is_empty() || location && only));
                    }
                    if method == Method::HEAD {
                        assert!(body.is_empty(), "a HEAD response has no body");
                    }
                }
                Err(e) => {
                    let _ = e.to_string();
                    assert!(!conn.is_reusable(), "reusable after an error");
                }
            }
        }
    });
});
