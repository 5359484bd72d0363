//! Engine.IO v4 framing of the WebSocket transport: a text frame is
//! `<type digit><payload>`, a binary frame is a message without prefix.
//! [`parse_eio_text`] reads one frame into an [`EioPacket`] (the open
//! handshake into [`OpenInfo`]); [`pong`] / [`pong_with`] write the answer
//! to a ping. Messages (`4…`) carry the Socket.IO packets that
//! [`Decoder`](super::Decoder) reassembles.

use std::time::Duration;

use super::{excerpt, CodecError, Result, DEFAULT_MAX_PAYLOAD};

/// The handshake of an Engine.IO open packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenInfo {
    /// The Engine.IO session id (not the Socket.IO socket id, which comes in
    /// the CONNECT reply).
    pub sid: String,
    /// Transports the session may upgrade to (empty on WebSocket).
    pub upgrades: Vec<String>,
    /// How often the server pings.
    pub ping_interval: Duration,
    /// How long the server waits for the pong.
    pub ping_timeout: Duration,
    /// The largest frame the server accepts, in bytes.
    pub max_payload: usize,
}

impl OpenInfo {
    /// How long the client may go without a ping before it considers the
    /// server gone: `pingInterval + pingTimeout`, as the reference client.
    pub fn ping_deadline(&self) -> Duration {
        self.ping_interval.saturating_add(self.ping_timeout)
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawOpen {
    sid: String,
    #[serde(default)]
    upgrades: Vec<String>,
    ping_interval: u64,
    ping_timeout: u64,
    max_payload: Option<u64>,
}

/// One Engine.IO packet of the WebSocket transport. Borrowed payloads point
/// into the frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EioPacket<'a> {
    /// `0{…}`: the handshake.
    Open(OpenInfo),
    /// `1`: the server closes the session.
    Close,
    /// `2…`: answer with [`pong_with`] the same payload (`""`, or `probe`).
    Ping(&'a str),
    /// `3…`.
    Pong(&'a str),
    /// `4…`: a Socket.IO packet, for [`Decoder::feed_text`](super::Decoder::feed_text).
    Message(&'a str),
    /// `5`.
    Upgrade,
    /// `6`.
    Noop,
    /// A binary WebSocket frame: an attachment, for [`Decoder::feed_binary`](super::Decoder::feed_binary).
    Binary(&'a [u8]),
}

/// Parses one Engine.IO text frame.
pub fn parse_eio_text(frame: &str) -> Result<EioPacket<'_>> {
    let unknown = || CodecError::UnknownEioType {
        seen: excerpt(frame),
    };
    let Some(&kind) = frame.as_bytes().first() else {
        return Err(unknown());
    };
    if !(b'0'..=b'6').contains(&kind) {
        return Err(unknown());
    }
    // The first byte is ASCII: 1 is a char boundary.
    let data = frame.get(1..).unwrap_or_default();
    Ok(match kind {
        b'0' => EioPacket::Open(parse_open(data, frame)?),
        b'1' => EioPacket::Close,
        b'2' => EioPacket::Ping(data),
        b'3' => EioPacket::Pong(data),
        b'4' => EioPacket::Message(data),
        b'5' => EioPacket::Upgrade,
        _ => EioPacket::Noop,
    })
}

/// A binary WebSocket frame as an Engine.IO packet (v4: the frame is the
/// message, no type byte). Exists so one `match` can cover both frame kinds.
pub fn parse_eio_binary(frame: &[u8]) -> EioPacket<'_> {
    EioPacket::Binary(frame)
}

fn parse_open(json: &str, frame: &str) -> Result<OpenInfo> {
    let malformed = |reason: String| CodecError::MalformedOpen {
        reason,
        seen: excerpt(frame),
    };
    let raw: RawOpen = serde_json::from_str(json).map_err(|e| malformed(e.to_string()))?;
    if raw.sid.is_empty() {
        return Err(malformed("empty sid".into()));
    }
    Ok(OpenInfo {
        sid: raw.sid,
        upgrades: raw.upgrades,
        ping_interval: Duration::from_millis(raw.ping_interval),
        ping_timeout: Duration::from_millis(raw.ping_timeout),
        max_payload: raw.max_payload.map_or(DEFAULT_MAX_PAYLOAD, |n| {
            usize::try_from(n).unwrap_or(usize::MAX)
        }),
    })
}

/// Writes the answer to a ping without payload: `3`.
pub fn pong(out: &mut String) {
    out.clear();
    out.push('3');
}

/// Writes the answer to a ping carrying `data` (`2probe` → `3probe`).
pub fn pong_with(data: &str, out: &mut String) {
    out.clear();
    out.push('3');
    out.push_str(data);
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{BIN, OPEN};
    use super::*;

    #[test]
    fn open_packet() {
        let Ok(EioPacket::Open(info)) = parse_eio_text(OPEN) else {
            panic!()
        };
        assert_eq!(info.sid, "lv_VI97HAXpY6yYWAAAC");
        assert_eq!(info.upgrades, ["websocket"]);
        assert_eq!(info.ping_interval, Duration::from_millis(25_000));
        assert_eq!(info.ping_timeout, Duration::from_millis(20_000));
        assert_eq!(info.max_payload, 1_000_000);
        assert_eq!(info.ping_deadline(), Duration::from_secs(45));

        // The socket.io-protocol sample session's, without maxPayload.
        let older = r#"0{"sid":"s","upgrades":[],"pingInterval":300,"pingTimeout":200,"extra":1}"#;
        let Ok(EioPacket::Open(info)) = parse_eio_text(older) else {
            panic!()
        };
        assert_eq!(info.max_payload, DEFAULT_MAX_PAYLOAD);
        assert!(info.upgrades.is_empty());

        for bad in [
            "0",
            "0{}",
            "0[]",
            r#"0{"sid":"","pingInterval":1,"pingTimeout":1}"#,
            r#"0{"sid":"s","pingInterval":-1,"pingTimeout":1}"#,
            r#"0{"sid":"s","pingInterval":"25000","pingTimeout":1}"#,
            r#"0{"sid":"s","pingTimeout":1}"#,
        ] {
            let err = parse_eio_text(bad).unwrap_err();
            assert!(
                matches!(err, CodecError::MalformedOpen { .. }),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn heartbeat_probe_and_other_types() {
        let mut out = String::new();
        assert_eq!(parse_eio_text("2"), Ok(EioPacket::Ping("")));
        pong(&mut out);
        assert_eq!(out, "3");
        assert_eq!(parse_eio_text("2probe"), Ok(EioPacket::Ping("probe")));
        pong_with("probe", &mut out);
        assert_eq!(out, "3probe");
        assert_eq!(parse_eio_text("3probe"), Ok(EioPacket::Pong("probe")));
        assert_eq!(parse_eio_text("3"), Ok(EioPacket::Pong("")));
        assert_eq!(parse_eio_text("1"), Ok(EioPacket::Close));
        assert_eq!(parse_eio_text("5"), Ok(EioPacket::Upgrade));
        assert_eq!(parse_eio_text("6"), Ok(EioPacket::Noop));
        assert_eq!(
            parse_eio_text("4HelloWorld"),
            Ok(EioPacket::Message("HelloWorld"))
        );
        assert_eq!(parse_eio_text("4"), Ok(EioPacket::Message("")));
        assert_eq!(parse_eio_binary(BIN), EioPacket::Binary(BIN));
        for bad in ["", "7", "9", "x", "b4AQID", "é", " 2"] {
            let err = parse_eio_text(bad).unwrap_err();
            assert!(matches!(err, CodecError::UnknownEioType { .. }), "{bad:?}");
        }
    }
}
