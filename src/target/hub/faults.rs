//! The hub's fault knobs: a kick disconnects a fraction of the live
//! connections, a restart closes them all and refuses new ones (HTTP 503
//! with `Retry-After`) for a while, and shutdown refuses for good. How a
//! connection is ended is resolved in the registry ([`Ender`]): a kill
//! switch where there is a WebSocket transport, a namespace DISCONNECT
//! for a Socket.IO socket on long-polling.

use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use socketioxide::SocketIo;

use super::registry::{Ender, Link};
use super::{Core, Hub};
use crate::target::api::error;
use crate::target::knobs::KnobError;

impl Hub {
    /// Disconnects `fraction` (0..=1, rounded to the nearest whole
    /// connection) of the live connections of both kinds, spread evenly
    /// over them in connection order; returns how many.
    pub fn kick(&self, fraction: f64) -> Result<usize, KnobError> {
        if !(fraction.is_finite() && (0.0..=1.0).contains(&fraction)) {
            return Err(KnobError::OutOfRange {
                option: "fraction",
                value: fraction.to_string(),
                expected: "between 0 and 1".into(),
            });
        }
        let enders = {
            let mut reg = self.core.reg.lock();
            let live: Vec<u64> = reg
                .conns
                .iter()
                .filter(|(_, c)| !c.closing)
                .map(|(seq, _)| *seq)
                .collect();
            let n = live.len();
            let k = ((fraction * n as f64).round() as usize).min(n);
            let mut enders = Vec::with_capacity(k);
            for (i, seq) in live.iter().enumerate() {
                // Picks exactly k of n, evenly spaced (every n/k-th).
                if (i + 1) * k / n > i * k / n {
                    enders.extend(reg.mark_closing(*seq));
                }
            }
            enders
        };
        Ok(self.core.end(&self.io, enders))
    }

    /// Closes every hub connection and refuses new ones (HTTP 503) for
    /// `refuse_for`; returns how many were closed.
    pub fn restart(&self, refuse_for: Duration) -> usize {
        let until = self
            .core
            .now_nanos()
            .saturating_add(refuse_for.as_nanos().min(u64::MAX as u128) as u64);
        self.core.refuse_until.fetch_max(until, Ordering::AcqRel);
        self.close_all()
    }

    /// Ends every connection: plain WebSockets, Socket.IO WebSocket
    /// transports (each once, in a namespace or not) and long-polling
    /// sockets; returns how many.
    fn close_all(&self) -> usize {
        let enders = {
            let mut reg = self.core.reg.lock();
            let seqs: Vec<u64> = reg.conns.keys().copied().collect();
            let mut enders = Vec::with_capacity(seqs.len());
            for seq in seqs {
                let via_transport = reg.conns.get(&seq).is_some_and(|c| {
                    matches!(c.link, Link::Sio(..)) && reg.kill_switch(c).is_some()
                });
                if let Some(e) = reg.mark_closing(seq) {
                    if !via_transport {
                        enders.push(e);
                    }
                }
            }
            enders.extend(reg.transports.values().map(|k| Ender::Kill(k.clone())));
            enders
        };
        self.core.end(&self.io, enders)
    }

    /// Refuses new connections for good and closes every connection
    /// (including long-polling Engine.IO sessions), waiting at most 2 s.
    pub async fn shutdown(&self) {
        self.core.refuse_until.store(u64::MAX, Ordering::Release);
        self.close_all();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.io.close()).await;
    }
}

impl Core {
    /// Ends these connections; returns how many.
    fn end(&self, io: &SocketIo, enders: Vec<Ender>) -> usize {
        let n = enders.len();
        for e in enders {
            match e {
                Ender::Kill(k) => k.fire(),
                Ender::Disconnect(ns, sid) => {
                    if let Some(s) = io.of(ns.path()).and_then(|op| op.get_socket(sid)) {
                        let _ = s.disconnect();
                    }
                }
            }
        }
        n
    }
}

/// The answer to a new connection while a restart refuses them.
pub(super) fn refused() -> Response {
    let mut r = error(StatusCode::SERVICE_UNAVAILABLE, "hub restarting");
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::extract::ws::Utf8Bytes;
    use socketioxide::socket::Sid;
    use tokio::sync::mpsc;

    use super::super::kill::KillSwitch;
    use super::super::registry::Ns;
    use super::*;
    use crate::target::knobs::TargetConfig;

    /// A hub holding `n` live connections (plain WebSockets and Socket.IO
    /// sockets alternating, as the registry holds them), and the kill
    /// switch of each, in connection order.
    fn hub_with(n: usize) -> (Arc<Hub>, Vec<Arc<KillSwitch>>, mpsc::Receiver<Utf8Bytes>) {
        let hub = Hub::new(&TargetConfig::default());
        let (tx, rx) = mpsc::channel(1);
        let mut kills = Vec::new();
        {
            let mut reg = hub.core.reg.lock();
            for i in 0..n {
                let kill = Arc::new(KillSwitch::default());
                let link = if i % 2 == 0 {
                    Link::Ws(tx.clone())
                } else {
                    Link::Sio(Ns::Root, Sid::new())
                };
                let seq = reg.insert(link, Some(kill.clone()));
                reg.register(seq, &format!("a{i}")).unwrap();
                kills.push(kill);
            }
        }
        assert_eq!(hub.stats().connected, n as u64);
        (hub, kills, rx)
    }

    fn fired(kills: &[Arc<KillSwitch>]) -> Vec<usize> {
        (0..kills.len()).filter(|&i| kills[i].is_fired()).collect()
    }

    /// `Hub::kick` on a real registry: round(fraction × n) connections (half
    /// away from zero), every n/k-th in connection order, their kill
    /// switches fired, the rest untouched; a second kick only reaches the
    /// connections still live.
    #[test]
    fn kick_ends_exactly_the_rounded_fraction_evenly_spread() {
        // (n, fraction, indices kicked): worked by hand from the doc comment.
        let cases: [(usize, f64, &[usize]); 16] = [
            (0, 0.5, &[]),
            (1, 0.49, &[]),
            (1, 0.5, &[0]),
            (3, 1.0 / 3.0, &[2]),
            (3, 0.5, &[1, 2]),
            (4, 0.0, &[]),
            (4, 0.1, &[]),
            (4, 0.125, &[3]),
            (4, 0.5, &[1, 3]),
            (5, 1.0, &[0, 1, 2, 3, 4]),
            (7, 0.5, &[1, 3, 5, 6]),
            (10, 0.25, &[3, 6, 9]),
            (10, 0.34, &[3, 6, 9]),
            (10, 0.9, &[1, 2, 3, 4, 5, 6, 7, 8, 9]),
            (30, 0.34, &[2, 5, 8, 11, 14, 17, 20, 23, 26, 29]),
            (30, 0.05, &[14, 29]),
        ];
        for (n, fraction, want) in cases {
            let (hub, kills, _rx) = hub_with(n);
            let what = format!("kick({fraction}) of {n}");
            assert_eq!(hub.kick(fraction), Ok(want.len()), "{what}");
            assert_eq!(fired(&kills), want, "{what}");
            let st = hub.stats();
            assert_eq!(st.connected, (n - want.len()) as u64, "{what}");
            assert_eq!(st.registered, (n - want.len()) as u64, "{what}");
            // Kicked connections are closing: a full kick reaches the others only.
            assert_eq!(hub.kick(1.0), Ok(n - want.len()), "{what}, then kick(1)");
            assert_eq!(fired(&kills), (0..n).collect::<Vec<_>>(), "{what}");
            assert_eq!(hub.stats().connected, 0, "{what}");
            assert_eq!(hub.kick(1.0), Ok(0), "{what}, nothing left");
        }
        let (hub, kills, _rx) = hub_with(4);
        for bad in [-0.1, 1.01, f64::NAN, f64::INFINITY] {
            assert!(hub.kick(bad).is_err(), "{bad}");
        }
        assert_eq!(fired(&kills), Vec::<usize>::new());
        assert_eq!(hub.stats().connected, 4);
    }

    #[test]
    fn a_bad_fraction_is_refused_naming_it() {
        let (hub, _kills, _rx) = hub_with(2);
        let e = hub.kick(1.5).unwrap_err();
        assert_eq!(
            e,
            KnobError::OutOfRange {
                option: "fraction",
                value: "1.5".into(),
                expected: "between 0 and 1".into(),
            }
        );
        assert_eq!(e.to_string(), "fraction must be between 0 and 1, got 1.5");
        assert_eq!(hub.stats().connected, 2);
    }
}
