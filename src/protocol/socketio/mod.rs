//! Engine.IO v4 + Socket.IO v5 client packet codec, written by hand from the
//! protocol documents (engine.io-protocol v4, socket.io-protocol v5). Pure:
//! no I/O, no tasks, no timers. The caller owns the WebSocket and feeds its
//! frames in; encoders write outgoing frames into a `String` it reuses.
//!
//! Why not a client crate: `rust_socketio` (and its kin) owns the connection,
//! its buffers and a callback thread or task per client. An agent fleet holds
//! thousands of idle connections per process (goal: ≤ 16 KiB per idle
//! agent) and pays per-packet CPU in the hot loop; what we need from the
//! protocol is a few bytes of state per agent ([`Decoder`] is 120 bytes, no heap
//! while idle) and string building into buffers that are already there.
//!
//! # Layout
//!
//! - `engineio.rs`: Engine.IO framing — the open handshake ([`OpenInfo`]),
//!   the [`EioPacket`]s of a WebSocket frame, pongs.
//! - `packet.rs`: Socket.IO packets ([`SioKind`], [`SioPacket`]) and the
//!   [`Decoder`] that reassembles them, binary attachments included.
//! - `encode.rs`: the outgoing frames and [`validate_namespace`].
//! - This file: the limits and [`CodecError`], shared by all three; every
//!   public item is re-exported here, so `protocol::socketio::X` is the path.
//!
//! # Layers
//!
//! Only the WebSocket transport is supported (no HTTP long-polling, no
//! `b`-prefixed base64 binary).
//!
//! - Engine.IO: a text frame is `<type digit><payload>`
//!   ([`parse_eio_text`] → [`EioPacket`]). The server pings (`2`), the client
//!   answers [`pong`] (`3`); a probe ping `2probe` is answered `3probe` with
//!   [`pong_with`]. A binary frame is a binary message, without prefix in v4.
//! - Socket.IO: inside each Engine.IO message,
//!   `<type>[<attachments>-][<namespace>,][<ack id>][<json>]`. [`Decoder`]
//!   takes message payloads and binary frames and yields whole
//!   [`SioPacket`]s; a BINARY_EVENT / BINARY_ACK completes once its `N`
//!   attachment frames have arrived.
//! - Encoders ([`encode_connect`], [`encode_event`], [`encode_ack`],
//!   [`encode_disconnect`], [`pong`]) replace the contents of `out` with one
//!   complete text frame, Engine.IO prefix included (`42…` for an event).
//!   They never allocate once `out` is large enough.
//!
//! # Binary attachments: kept aside
//!
//! The JSON of a binary packet is kept exactly as received: each
//! `{"_placeholder":true,"num":k}` stays in [`SioPacket::data`] and the
//! attachments are in [`SioPacket::attachments`], in arrival order, so
//! placeholder `num: k` is `attachments[k]` ([`SioPacket::attachment`]
//! resolves one). This costs nothing per packet (no second walk to rewrite
//! the tree, no copy of the bytes: the frames are moved in as [`Bytes`](bytes::Bytes)) and
//! loses nothing. The decoder does check, when the packet's text arrives,
//! that every placeholder's `num` is an integer below the announced count.
//! The packet's `kind` stays `BinaryEvent` / `BinaryAck` (the JavaScript
//! parser turns them into EVENT / ACK); the helpers treat both alike.
//!
//! # Limits and leniency
//!
//! - A message payload or binary frame larger than the decoder's
//!   `max_payload` (the handshake's `maxPayload`, 1 MB before it) is refused.
//!   Outgoing frames are the caller's to check against
//!   [`OpenInfo::max_payload`].
//! - At most [`MAX_ATTACHMENTS`] attachments per packet.
//! - As in the reference parser, data after `1` (close), `5` (upgrade) and
//!   `6` (noop) is ignored, and a namespace running to the end of the packet
//!   may omit its `,`. A missing `maxPayload` in the handshake means
//!   [`DEFAULT_MAX_PAYLOAD`]; `upgrades` may be missing too.
//! - Payload shapes follow socket.io-parser: CONNECT carries an object or
//!   nothing, DISCONNECT nothing, EVENT a non-empty array, ACK an array and an
//!   id, CONNECT_ERROR an object (`{"message": …, "data"?: …}`) or, as in v4,
//!   a string.
//! - After any error the decoder is idle again (a pending binary packet is
//!   dropped); a protocol error normally means closing the connection.
//!
//! # Example
//!
//! ```
//! use stampede::protocol::socketio::{encode_connect, parse_eio_text, pong, Decoder, EioPacket};
//!
//! let mut decoder = Decoder::default();
//! let mut out = String::new();
//! let frames = [
//!     r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#,
//!     r#"40{"sid":"wZX3oN0bSVIhsaknAAAI"}"#,
//!     "2",
//!     r#"42["command",{"op":"update"}]"#,
//! ];
//! for frame in frames {
//!     match parse_eio_text(frame)? {
//!         EioPacket::Open(info) => {
//!             decoder.set_max_payload(info.max_payload);
//!             encode_connect("/", None, &mut out); // send `out`: "40"
//!         }
//!         EioPacket::Ping(_) => pong(&mut out), // send `out`: "3"
//!         EioPacket::Message(payload) => {
//!             if let Some(packet) = decoder.feed_text(payload)? {
//!                 if packet.event_name() == Some("command") {
//!                     assert_eq!(packet.event_args()[0]["op"], "update");
//!                 }
//!             }
//!         }
//!         _ => {}
//!     }
//! }
//! # Ok::<(), stampede::protocol::socketio::CodecError>(())
//! ```

mod encode;
mod engineio;
mod packet;

pub use encode::{
    encode_ack, encode_connect, encode_disconnect, encode_event, push_json_string,
    validate_namespace,
};
pub use engineio::{parse_eio_binary, parse_eio_text, pong, pong_with, EioPacket, OpenInfo};
pub use packet::{Decoder, SioKind, SioPacket};

/// `maxPayload` assumed until the handshake says otherwise (the JavaScript
/// server's default `maxHttpBufferSize`).
pub const DEFAULT_MAX_PAYLOAD: usize = 1_000_000;

/// The most binary attachments one packet may announce.
pub const MAX_ATTACHMENTS: usize = 256;

/// How much of an offending input an error message quotes, in characters.
const EXCERPT_CHARS: usize = 80;

/// Why a frame could not be decoded. `seen` fields quote the offending input,
/// cut to about 80 characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// The text frame does not start with an Engine.IO type `0`..`6`.
    #[error("unknown Engine.IO packet type in {seen:?}")]
    UnknownEioType { seen: String },
    /// The open packet's handshake JSON is missing or malformed.
    #[error("malformed Engine.IO open packet ({reason}) in {seen:?}")]
    MalformedOpen { reason: String, seen: String },
    /// The message does not start with a Socket.IO type `0`..`6`.
    #[error("unknown Socket.IO packet type in {seen:?}")]
    UnknownSioType { seen: String },
    /// A namespace with control characters (or, for
    /// [`validate_namespace`], without its leading `/` or with a `,`).
    #[error("malformed namespace in {seen:?}")]
    MalformedNamespace { seen: String },
    /// An ack id that does not fit in 64 bits, or an ACK without one.
    #[error("malformed ack id ({reason}) in {seen:?}")]
    MalformedAckId { reason: &'static str, seen: String },
    /// The payload is not JSON.
    #[error("malformed JSON payload ({reason}) in {seen:?}")]
    MalformedJson { reason: String, seen: String },
    /// The payload is JSON of the wrong shape for the packet type.
    #[error("invalid {kind:?} payload ({reason}) in {seen:?}")]
    InvalidPayload {
        kind: SioKind,
        reason: &'static str,
        seen: String,
    },
    /// A binary packet without a valid `N-` prefix, or with more than
    /// [`MAX_ATTACHMENTS`].
    #[error("bad attachment count in {seen:?}")]
    BadAttachmentCount { seen: String },
    /// A placeholder whose `num` is not an index below the attachment count.
    #[error("bad attachment placeholder (num must be an integer below {count}) in {seen:?}")]
    BadPlaceholder { count: usize, seen: String },
    /// A binary frame while no binary packet awaits attachments.
    #[error("unexpected binary frame of {len} bytes: no binary packet awaits attachments")]
    UnexpectedBinary { len: usize },
    /// A text packet while a binary packet still awaits attachments.
    #[error("text packet {seen:?} while a {kind:?} packet still awaits {missing} attachment(s)")]
    AttachmentsPending {
        kind: SioKind,
        missing: usize,
        seen: String,
    },
    /// A frame larger than `maxPayload`.
    #[error("{what} of {len} bytes exceeds maxPayload ({max})")]
    Oversized {
        what: &'static str,
        len: usize,
        max: usize,
    },
}

type Result<T, E = CodecError> = std::result::Result<T, E>;

/// The offending input, quoted in errors: at most [`EXCERPT_CHARS`]
/// characters, `…` marking a cut.
fn excerpt(s: &str) -> String {
    match s.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod test_util;
