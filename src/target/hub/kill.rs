//! Kill switches: how a kick or a restart ends one hub connection from
//! outside, abruptly (the TCP connection closes without a closing
//! handshake, as when a hub dies). A plain WebSocket's loop waits on its
//! switch; a Socket.IO WebSocket transport is wrapped in [`Killable`],
//! which reads end-of-stream once its switch fires, and listed in the
//! registry by a [`TransportGuard`] for as long as it lives.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use parking_lot::Mutex;
use socketioxide::socket::Sid;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

use super::Core;

/// Ends one connection from outside: wakes its reader (a Socket.IO
/// connection's wrapped stream) or its loop (a plain WebSocket).
#[derive(Default)]
pub(crate) struct KillSwitch {
    /// Set once; never cleared.
    fired: AtomicBool,
    /// The waker of the wrapped stream's last pending read.
    reader: Mutex<Option<Waker>>,
    /// Wakes a plain WebSocket's loop.
    notify: Notify,
}

impl KillSwitch {
    pub(super) fn fire(&self) {
        self.fired.store(true, Ordering::Release);
        if let Some(w) = self.reader.lock().take() {
            w.wake();
        }
        self.notify.notify_one();
    }

    pub(super) fn is_fired(&self) -> bool {
        self.fired.load(Ordering::Acquire)
    }

    fn register(&self, waker: &Waker) {
        let mut slot = self.reader.lock();
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }

    pub(super) async fn fired(&self) {
        while !self.is_fired() {
            self.notify.notified().await;
        }
    }
}

/// Put in the upgrade request's extensions so the Socket.IO handlers can
/// find the kill switch of the connection a socket rides on.
#[derive(Clone)]
pub(super) struct KillHandle(pub(super) Arc<KillSwitch>);

/// An upgraded stream that reads end-of-stream (and fails writes) once its
/// kill switch fires; dropping it closes the TCP connection.
pub(super) struct Killable<T> {
    pub(super) io: T,
    pub(super) kill: Arc<KillSwitch>,
    pub(super) _listed: TransportGuard,
}

/// Keeps a Socket.IO WebSocket transport in the registry's lists (so a
/// restart reaches sessions not yet in a namespace, and kicks reach
/// sessions upgraded from long-polling) until it ends.
pub(super) struct TransportGuard {
    pub(super) core: Arc<Core>,
    pub(super) id: u64,
    /// The Engine.IO session it upgraded, if it was an upgrade.
    pub(super) upgraded: Option<Sid>,
}

impl Drop for TransportGuard {
    fn drop(&mut self) {
        let mut reg = self.core.reg.lock();
        if let Some(kill) = reg.transports.remove(&self.id) {
            if let Some(sid) = self.upgraded {
                if reg
                    .upgraded
                    .get(&sid)
                    .is_some_and(|k| Arc::ptr_eq(k, &kill))
                {
                    reg.upgraded.remove(&sid);
                }
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Killable<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.kill.is_fired() {
            return Poll::Ready(Ok(()));
        }
        self.kill.register(cx.waker());
        if self.kill.is_fired() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Killable<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.kill.is_fired() {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.kill.is_fired() {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.kill.is_fired() {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
