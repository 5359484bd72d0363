//! Socket.IO v5 packets inside Engine.IO messages:
//! `<type>[<attachments>-][<namespace>,][<ack id>][<json>]`. [`SioKind`]
//! is the type, [`SioPacket`] one whole packet with helpers to read an
//! event, an ack or a CONNECT reply, and [`Decoder`] takes message payloads
//! and binary frames and yields whole packets (a BINARY_EVENT / BINARY_ACK
//! once its attachments have arrived), checking the payload shapes and
//! limits the [module docs](super) list.

use std::borrow::Cow;

use bytes::Bytes;
use serde_json::Value;

use super::{excerpt, CodecError, Result, DEFAULT_MAX_PAYLOAD, MAX_ATTACHMENTS};

/// Socket.IO v5 packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SioKind {
    Connect = 0,
    Disconnect = 1,
    Event = 2,
    Ack = 3,
    ConnectError = 4,
    BinaryEvent = 5,
    BinaryAck = 6,
}

impl SioKind {
    /// The type of an ASCII digit `0`..`6`.
    pub fn from_digit(digit: u8) -> Option<SioKind> {
        Some(match digit {
            b'0' => SioKind::Connect,
            b'1' => SioKind::Disconnect,
            b'2' => SioKind::Event,
            b'3' => SioKind::Ack,
            b'4' => SioKind::ConnectError,
            b'5' => SioKind::BinaryEvent,
            b'6' => SioKind::BinaryAck,
            _ => return None,
        })
    }

    /// BINARY_EVENT or BINARY_ACK: carries `N-` and attachments.
    pub fn is_binary(self) -> bool {
        matches!(self, SioKind::BinaryEvent | SioKind::BinaryAck)
    }

    /// EVENT or BINARY_EVENT.
    pub fn is_event(self) -> bool {
        matches!(self, SioKind::Event | SioKind::BinaryEvent)
    }

    /// ACK or BINARY_ACK.
    pub fn is_ack(self) -> bool {
        matches!(self, SioKind::Ack | SioKind::BinaryAck)
    }
}

/// One complete Socket.IO packet.
#[derive(Debug, Clone, PartialEq)]
pub struct SioPacket {
    pub kind: SioKind,
    /// `/` for the main namespace (borrowed: no allocation), else `/name`.
    pub namespace: Cow<'static, str>,
    pub ack_id: Option<u64>,
    /// The JSON payload as received, placeholders included.
    pub data: Option<Value>,
    /// Binary attachments in arrival order: placeholder `num: k` is `[k]`.
    pub attachments: Vec<Bytes>,
}

impl SioPacket {
    /// An event's name (the first array item, when a string).
    pub fn event_name(&self) -> Option<&str> {
        if !self.kind.is_event() {
            return None;
        }
        self.array()?.first()?.as_str()
    }

    /// An event's arguments (the array after the name), or an ack's
    /// (the whole array); empty for other packets.
    pub fn event_args(&self) -> &[Value] {
        match self.array() {
            Some(items) if self.kind.is_event() => items.get(1..).unwrap_or_default(),
            Some(items) if self.kind.is_ack() => items,
            _ => &[],
        }
    }

    /// The attachment a `{"_placeholder":true,"num":k}` value stands for.
    pub fn attachment(&self, placeholder: &Value) -> Option<&Bytes> {
        let object = placeholder.as_object()?;
        if object.get("_placeholder") != Some(&Value::Bool(true)) {
            return None;
        }
        let num = usize::try_from(object.get("num")?.as_u64()?).ok()?;
        self.attachments.get(num)
    }

    /// The Socket.IO socket id of a CONNECT reply (`{"sid": …}`).
    pub fn connect_sid(&self) -> Option<&str> {
        if self.kind != SioKind::Connect {
            return None;
        }
        self.data.as_ref()?.get("sid")?.as_str()
    }

    /// The reason of a CONNECT_ERROR: `message` of the v5 object, or the
    /// v4 string.
    pub fn connect_error_message(&self) -> Option<&str> {
        if self.kind != SioKind::ConnectError {
            return None;
        }
        match self.data.as_ref()? {
            Value::String(message) => Some(message),
            data => data.get("message")?.as_str(),
        }
    }

    fn array(&self) -> Option<&Vec<Value>> {
        self.data.as_ref()?.as_array()
    }
}

/// Reassembles Socket.IO packets from Engine.IO message payloads and binary
/// frames. One per connection; idle, it holds no heap memory.
#[derive(Debug)]
pub struct Decoder {
    /// A binary packet whose attachments are still arriving.
    pending: Option<SioPacket>,
    /// How many attachments `pending` announced.
    expected: usize,
    max_payload: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(DEFAULT_MAX_PAYLOAD)
    }
}

impl Decoder {
    /// A decoder refusing frames over `max_payload` bytes.
    pub fn new(max_payload: usize) -> Self {
        Decoder {
            pending: None,
            expected: 0,
            max_payload,
        }
    }

    /// Adopts the handshake's `maxPayload`.
    pub fn set_max_payload(&mut self, max_payload: usize) {
        self.max_payload = max_payload;
    }

    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// How many attachments the pending binary packet still awaits (0: idle).
    pub fn awaiting_attachments(&self) -> usize {
        self.pending
            .as_ref()
            .map_or(0, |p| self.expected.saturating_sub(p.attachments.len()))
    }

    /// Drops a pending binary packet (on reconnect).
    pub fn reset(&mut self) {
        self.pending = None;
        self.expected = 0;
    }

    /// Takes the payload of an Engine.IO message (the text after `4`).
    /// `Ok(None)`: a binary packet whose attachments are to come.
    pub fn feed_text(&mut self, payload: &str) -> Result<Option<SioPacket>> {
        if let Some(pending) = self.pending.take() {
            let missing = self.expected.saturating_sub(pending.attachments.len());
            self.reset();
            return Err(CodecError::AttachmentsPending {
                kind: pending.kind,
                missing,
                seen: excerpt(payload),
            });
        }
        if payload.len() > self.max_payload {
            return Err(CodecError::Oversized {
                what: "text message",
                len: payload.len(),
                max: self.max_payload,
            });
        }
        let (mut packet, attachments) = parse_sio(payload)?;
        if attachments == 0 {
            return Ok(Some(packet));
        }
        packet.attachments.reserve_exact(attachments);
        self.pending = Some(packet);
        self.expected = attachments;
        Ok(None)
    }

    /// Takes a binary WebSocket frame: the next attachment of the pending
    /// binary packet, which it returns once complete.
    pub fn feed_binary(&mut self, frame: Bytes) -> Result<Option<SioPacket>> {
        let Some(pending) = self.pending.as_mut() else {
            return Err(CodecError::UnexpectedBinary { len: frame.len() });
        };
        if frame.len() > self.max_payload {
            let max = self.max_payload;
            self.reset();
            return Err(CodecError::Oversized {
                what: "binary attachment",
                len: frame.len(),
                max,
            });
        }
        pending.attachments.push(frame);
        if pending.attachments.len() < self.expected {
            return Ok(None);
        }
        self.expected = 0;
        Ok(self.pending.take())
    }
}

/// Parses one Socket.IO packet; also returns how many attachments follow.
fn parse_sio(payload: &str) -> Result<(SioPacket, usize)> {
    let bytes = payload.as_bytes();
    let Some(kind) = bytes.first().and_then(|&b| SioKind::from_digit(b)) else {
        return Err(CodecError::UnknownSioType {
            seen: excerpt(payload),
        });
    };
    // Every index below is 0, len, or just after an ASCII byte: a char
    // boundary; `get` keeps it panic-free regardless.
    let mut i = 1;

    let mut attachments = 0;
    if kind.is_binary() {
        let start = i;
        i = skip_digits(bytes, i);
        let count = parse_u64(&bytes[start..i])
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n <= MAX_ATTACHMENTS);
        match (count, bytes.get(i)) {
            (Some(n), Some(b'-')) => attachments = n,
            _ => {
                return Err(CodecError::BadAttachmentCount {
                    seen: excerpt(payload),
                })
            }
        }
        i += 1;
    }

    let mut namespace = Cow::Borrowed("/");
    if bytes.get(i) == Some(&b'/') {
        let (end, next) = match bytes[i..].iter().position(|&b| b == b',') {
            Some(comma) => (i + comma, i + comma + 1),
            None => (bytes.len(), bytes.len()),
        };
        let name = payload.get(i..end).unwrap_or_default();
        if name.bytes().any(|b| b.is_ascii_control()) {
            return Err(CodecError::MalformedNamespace {
                seen: excerpt(payload),
            });
        }
        if name != "/" {
            namespace = Cow::Owned(name.to_owned());
        }
        i = next;
    }

    let start = i;
    i = skip_digits(bytes, i);
    let ack_id = if i > start {
        Some(
            parse_u64(&bytes[start..i]).ok_or_else(|| CodecError::MalformedAckId {
                reason: "does not fit in 64 bits",
                seen: excerpt(payload),
            })?,
        )
    } else {
        None
    };

    let json = payload.get(i..).unwrap_or_default();
    let data = if json.is_empty() {
        None
    } else {
        Some(
            serde_json::from_str::<Value>(json).map_err(|e| CodecError::MalformedJson {
                reason: e.to_string(),
                seen: excerpt(payload),
            })?,
        )
    };

    let invalid = |reason| CodecError::InvalidPayload {
        kind,
        reason,
        seen: excerpt(payload),
    };
    match (kind, &data) {
        (SioKind::Connect, None | Some(Value::Object(_))) => {}
        (SioKind::Connect, _) => return Err(invalid("expected an object or nothing")),
        (SioKind::Disconnect, None) => {}
        (SioKind::Disconnect, _) => return Err(invalid("expected nothing")),
        (SioKind::Event | SioKind::BinaryEvent, Some(Value::Array(items))) if !items.is_empty() => {
        }
        (SioKind::Event | SioKind::BinaryEvent, _) => {
            return Err(invalid("expected a non-empty array"))
        }
        (SioKind::Ack | SioKind::BinaryAck, Some(Value::Array(_))) => {}
        (SioKind::Ack | SioKind::BinaryAck, _) => return Err(invalid("expected an array")),
        (SioKind::ConnectError, None | Some(Value::Object(_) | Value::String(_))) => {}
        (SioKind::ConnectError, _) => return Err(invalid("expected an object or a string")),
    }
    if kind.is_ack() && ack_id.is_none() {
        return Err(CodecError::MalformedAckId {
            reason: "an ACK needs one",
            seen: excerpt(payload),
        });
    }
    if kind.is_binary() {
        if let Some(data) = &data {
            if !placeholders_ok(data, attachments) {
                return Err(CodecError::BadPlaceholder {
                    count: attachments,
                    seen: excerpt(payload),
                });
            }
        }
    }

    let packet = SioPacket {
        kind,
        namespace,
        ack_id,
        data,
        attachments: Vec::new(),
    };
    Ok((packet, attachments))
}

fn skip_digits(bytes: &[u8], mut i: usize) -> usize {
    while bytes.get(i).is_some_and(u8::is_ascii_digit) {
        i += 1;
    }
    i
}

/// ASCII digits as a u64; `None` when empty or on overflow.
fn parse_u64(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?
            .checked_add(u64::from(d.wrapping_sub(b'0')))
    })
}

/// Every placeholder in `value` points below `count`. Recursion depth is
/// bounded by serde_json's nesting limit (128).
fn placeholders_ok(value: &Value, count: usize) -> bool {
    match value {
        Value::Array(items) => items.iter().all(|v| placeholders_ok(v, count)),
        Value::Object(object) => {
            if object.get("_placeholder") == Some(&Value::Bool(true)) {
                object
                    .get("num")
                    .and_then(Value::as_u64)
                    .and_then(|n| usize::try_from(n).ok())
                    .is_some_and(|n| n < count)
            } else {
                object.values().all(|v| placeholders_ok(v, count))
            }
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{decode, BIN, OPEN};
    use super::super::{parse_eio_text, EioPacket};
    use super::*;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    use serde_json::json;

    /// Decodes a binary packet's text, then its attachments in order.
    fn decode_binary(frame: &str, attachments: &[&[u8]]) -> SioPacket {
        let Ok(EioPacket::Message(payload)) = parse_eio_text(frame) else {
            panic!("not a message: {frame:?}");
        };
        let mut decoder = Decoder::default();
        assert_eq!(decoder.feed_text(payload), Ok(None), "{frame:?}");
        let (last, first) = attachments.split_last().unwrap();
        for (i, a) in first.iter().enumerate() {
            assert_eq!(decoder.awaiting_attachments(), attachments.len() - i);
            let got = decoder.feed_binary(Bytes::copy_from_slice(a));
            assert_eq!(got, Ok(None));
        }
        assert_eq!(decoder.awaiting_attachments(), 1);
        let packet = decoder
            .feed_binary(Bytes::copy_from_slice(last))
            .unwrap()
            .unwrap();
        assert_eq!(decoder.awaiting_attachments(), 0);
        packet
    }

    fn feed(payload: &str) -> Result<Option<SioPacket>> {
        Decoder::default().feed_text(payload)
    }

    fn placeholder(num: u64) -> Value {
        json!({"_placeholder": true, "num": num})
    }

    // -------------------------------------------- Socket.IO: spec examples

    #[test]
    fn connect_examples() {
        let p = decode("40");
        assert_eq!(
            (p.kind, &*p.namespace, &p.data),
            (SioKind::Connect, "/", &None)
        );
        assert!(matches!(p.namespace, Cow::Borrowed(_)));

        let p = decode(r#"40{"sid":"wZX3oN0bSVIhsaknAAAI"}"#);
        assert_eq!(p.namespace, "/");
        assert_eq!(p.connect_sid(), Some("wZX3oN0bSVIhsaknAAAI"));

        let p = decode("40/admin,");
        assert_eq!(
            (p.kind, &*p.namespace, &p.data),
            (SioKind::Connect, "/admin", &None)
        );

        let p = decode(r#"40/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#);
        assert_eq!(p.namespace, "/admin");
        assert_eq!(p.connect_sid(), Some("oSO0OpakMV_3jnilAAAA"));

        // A client's CONNECT with auth, as a server would see it.
        let p = decode(r#"40/admin,{"token":"123"}"#);
        assert_eq!(p.data, Some(json!({"token": "123"})));
        assert_eq!(p.connect_sid(), None);

        // Sample session.
        let p = decode(r#"40/admin,{"sid":"-G5j-67EZFp-q59rADQM"}"#);
        assert_eq!(p.connect_sid(), Some("-G5j-67EZFp-q59rADQM"));
        // The reference parser accepts a namespace without `,` at the end.
        assert_eq!(decode("40/admin").namespace, "/admin");
        assert_eq!(decode("40/,").namespace, "/");
    }

    #[test]
    fn connect_error_examples() {
        let p = decode(r#"44{"message":"Not authorized"}"#);
        assert_eq!(p.kind, SioKind::ConnectError);
        assert_eq!(p.connect_error_message(), Some("Not authorized"));
        let p = decode(r#"44/admin,{"message":"Not authorized","data":{"code":7}}"#);
        assert_eq!(p.namespace, "/admin");
        assert_eq!(p.connect_error_message(), Some("Not authorized"));
        assert_eq!(p.data.as_ref().unwrap()["data"]["code"], 7);
        // v4 servers sent a plain string.
        assert_eq!(
            decode(r#"44"Not authorized""#).connect_error_message(),
            Some("Not authorized")
        );
        assert_eq!(decode("44").connect_error_message(), None);
    }

    #[test]
    fn event_examples() {
        let p = decode(r#"42["foo"]"#);
        assert_eq!(
            (p.kind, &*p.namespace, p.ack_id),
            (SioKind::Event, "/", None)
        );
        assert_eq!(p.event_name(), Some("foo"));
        assert!(p.event_args().is_empty());

        let p = decode(r#"42/admin,["bar"]"#);
        assert_eq!((&*p.namespace, p.event_name()), ("/admin", Some("bar")));

        let p = decode(r#"4212["foo"]"#);
        assert_eq!((p.ack_id, p.event_name()), (Some(12), Some("foo")));

        let p = decode(r#"42/admin,13["foo"]"#);
        assert_eq!(
            (&*p.namespace, p.ack_id, p.event_name()),
            ("/admin", Some(13), Some("foo"))
        );

        let p = decode(r#"4215["foo"]"#);
        assert_eq!(p.ack_id, Some(15));

        let p = decode(r#"42["hey","Jude"]"#);
        assert_eq!(p.event_name(), Some("hey"));
        assert_eq!(p.event_args(), [json!("Jude")]);

        let p = decode(r#"42/admin,1["tellme"]"#);
        assert_eq!((&*p.namespace, p.ack_id), ("/admin", Some(1)));

        // A numeric first item is not a name, but the packet is valid.
        assert_eq!(decode("42[1,2]").event_name(), None);
    }

    #[test]
    fn ack_examples() {
        let p = decode("4312[]");
        assert_eq!((p.kind, p.ack_id), (SioKind::Ack, Some(12)));
        assert!(p.event_args().is_empty());
        assert_eq!(p.event_name(), None);

        let p = decode(r#"43/admin,13["bar"]"#);
        assert_eq!((&*p.namespace, p.ack_id), ("/admin", Some(13)));
        assert_eq!(p.event_args(), [json!("bar")]);

        let p = decode(r#"4314["bar"]"#);
        assert_eq!((p.ack_id, p.event_args()), (Some(14), &[json!("bar")][..]));
    }

    #[test]
    fn binary_examples() {
        let p = decode_binary(r#"451-["baz",{"_placeholder":true,"num":0}]"#, &[BIN]);
        assert_eq!(
            (p.kind, &*p.namespace, p.ack_id),
            (SioKind::BinaryEvent, "/", None)
        );
        assert_eq!(p.event_name(), Some("baz"));
        assert_eq!(p.event_args(), [placeholder(0)]);
        assert_eq!(p.attachment(&p.event_args()[0]).map(|b| &b[..]), Some(BIN));

        let frame =
            r#"452-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#;
        let p = decode_binary(frame, &[&[1, 2], &[3, 4]]);
        assert_eq!(p.namespace, "/admin");
        assert_eq!(
            p.attachments,
            [Bytes::from_static(&[1, 2]), Bytes::from_static(&[3, 4])]
        );
        let args = p.event_args();
        assert_eq!(p.attachment(&args[0]).map(|b| &b[..]), Some(&[1, 2][..]));
        assert_eq!(p.attachment(&args[1]).map(|b| &b[..]), Some(&[3, 4][..]));
        assert_eq!(p.attachment(&json!({"num": 0})), None);

        let p = decode_binary(r#"451-14["foo",{"_placeholder":true,"num":0}]"#, &[BIN]);
        assert_eq!(
            (p.kind, p.ack_id, p.event_name()),
            (SioKind::BinaryEvent, Some(14), Some("foo"))
        );

        let p = decode_binary(r#"461-15["bar",{"_placeholder":true,"num":0}]"#, &[BIN]);
        assert_eq!((p.kind, p.ack_id), (SioKind::BinaryAck, Some(15)));
        assert_eq!(p.event_args(), [json!("bar"), placeholder(0)]);

        // Sample session.
        let p = decode_binary(r#"461-/admin,1[{"_placeholder":true,"num":0}]"#, &[BIN]);
        assert_eq!(
            (p.kind, &*p.namespace, p.ack_id),
            (SioKind::BinaryAck, "/admin", Some(1))
        );
        assert_eq!(p.attachment(&p.event_args()[0]).map(|b| &b[..]), Some(BIN));

        // Zero attachments: complete at once (as the reference parser).
        let p = feed(r#"50-["x"]"#).unwrap().unwrap();
        assert_eq!((p.kind, p.event_name()), (SioKind::BinaryEvent, Some("x")));
    }

    #[test]
    fn disconnect_examples() {
        let p = decode("41");
        assert_eq!(
            (p.kind, &*p.namespace, &p.data),
            (SioKind::Disconnect, "/", &None)
        );
        let p = decode("41/admin,");
        assert_eq!((p.kind, &*p.namespace), (SioKind::Disconnect, "/admin"));
    }
    #[test]
    fn an_idle_decoder_is_small() {
        let size = std::mem::size_of::<Decoder>();
        assert!(size <= 128, "{size}"); // 120 on 64-bit targets
        assert_eq!(Decoder::default().awaiting_attachments(), 0);
    }

    // -------------------------------------------------------------- errors

    /// The variant's name, to tabulate expected errors compactly.
    fn variant(e: &CodecError) -> &'static str {
        match e {
            CodecError::UnknownEioType { .. } => "UnknownEioType",
            CodecError::MalformedOpen { .. } => "MalformedOpen",
            CodecError::UnknownSioType { .. } => "UnknownSioType",
            CodecError::MalformedNamespace { .. } => "MalformedNamespace",
            CodecError::MalformedAckId { .. } => "MalformedAckId",
            CodecError::MalformedJson { .. } => "MalformedJson",
            CodecError::InvalidPayload { kind, .. } => match kind {
                SioKind::Connect => "InvalidPayload Connect",
                SioKind::Disconnect => "InvalidPayload Disconnect",
                SioKind::Event | SioKind::BinaryEvent => "InvalidPayload Event",
                SioKind::Ack | SioKind::BinaryAck => "InvalidPayload Ack",
                SioKind::ConnectError => "InvalidPayload ConnectError",
            },
            CodecError::BadAttachmentCount { .. } => "BadAttachmentCount",
            CodecError::BadPlaceholder { .. } => "BadPlaceholder",
            CodecError::UnexpectedBinary { .. } => "UnexpectedBinary",
            CodecError::AttachmentsPending { .. } => "AttachmentsPending",
            CodecError::Oversized { .. } => "Oversized",
        }
    }

    #[test]
    fn malformed_packets_are_errors() {
        let cases = [
            ("", "UnknownSioType"),
            ("7", "UnknownSioType"),
            ("x[]", "UnknownSioType"),
            ("-1", "UnknownSioType"),
            (r#"5["x"]"#, "BadAttachmentCount"),
            (r#"5-["x"]"#, "BadAttachmentCount"),
            (r#"51["x"]"#, "BadAttachmentCount"),
            (r#"5a-["x"]"#, "BadAttachmentCount"),
            (r#"5257-["x"]"#, "BadAttachmentCount"),
            (r#"599999999999999999999999-["x"]"#, "BadAttachmentCount"),
            ("61", "BadAttachmentCount"),
            (
                r#"51-["x",{"_placeholder":true,"num":1}]"#,
                "BadPlaceholder",
            ),
            (r#"51-["x",{"_placeholder":true}]"#, "BadPlaceholder"),
            (
                r#"51-["x",{"_placeholder":true,"num":-1}]"#,
                "BadPlaceholder",
            ),
            (
                r#"51-["x",{"a":[{"_placeholder":true,"num":"0"}]}]"#,
                "BadPlaceholder",
            ),
            ("2/a\u{0}b,[\"x\"]", "MalformedNamespace"),
            (r#"299999999999999999999999["x"]"#, "MalformedAckId"),
            ("3[]", "MalformedAckId"),
            (r#"61-[{"_placeholder":true,"num":0}]"#, "MalformedAckId"),
            (r#"2["foo""#, "MalformedJson"),
            (r#"2["foo"]x"#, "MalformedJson"),
            ("2/admin,x", "MalformedJson"),
            (r#"2-1["x"]"#, "MalformedJson"),
            ("4 ", "MalformedJson"),
            // No comma: the reference parser reads the namespace to the end.
            (r#"2/admin["foo"]"#, "InvalidPayload Event"),
            ("2", "InvalidPayload Event"),
            ("2[]", "InvalidPayload Event"),
            (r#"2{"a":1}"#, "InvalidPayload Event"),
            (r#"2"foo""#, "InvalidPayload Event"),
            (
                r#"51-{"_placeholder":true,"num":0}"#,
                "InvalidPayload Event",
            ),
            ("312", "InvalidPayload Ack"),
            ("312{}", "InvalidPayload Ack"),
            ("0[]", "InvalidPayload Connect"),
            (r#"0"tok""#, "InvalidPayload Connect"),
            ("1{}", "InvalidPayload Disconnect"),
            ("4[]", "InvalidPayload ConnectError"),
        ];
        for (payload, expected) in cases {
            let err = feed(payload).unwrap_err();
            assert_eq!(variant(&err), expected, "{payload:?}: {err}");
        }
        // Deep nesting hits serde_json's limit: an error, not a stack overflow.
        let deep = format!("2{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(matches!(feed(&deep), Err(CodecError::MalformedJson { .. })));
    }

    #[test]
    fn attachment_sequencing_errors_reset_the_decoder() {
        let mut decoder = Decoder::default();
        let err = decoder.feed_binary(Bytes::from_static(BIN)).unwrap_err();
        assert_eq!(err, CodecError::UnexpectedBinary { len: 4 });

        let header = r#"52-["x",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#;
        assert_eq!(decoder.feed_text(header), Ok(None));
        assert_eq!(decoder.feed_binary(Bytes::from_static(BIN)), Ok(None));
        let err = decoder.feed_text(r#"2["y"]"#).unwrap_err();
        assert_eq!(
            err,
            CodecError::AttachmentsPending {
                kind: SioKind::BinaryEvent,
                missing: 1,
                seen: r#"2["y"]"#.into()
            }
        );
        assert!(err.to_string().contains("awaits 1 attachment"), "{err}");
        // Idle again: the next packet decodes, a stray binary frame is refused.
        assert_eq!(decoder.awaiting_attachments(), 0);
        assert_eq!(
            decoder
                .feed_text(r#"2["y"]"#)
                .unwrap()
                .unwrap()
                .event_name(),
            Some("y")
        );
        assert!(decoder.feed_binary(Bytes::from_static(BIN)).is_err());

        assert_eq!(decoder.feed_text(header), Ok(None));
        decoder.reset();
        assert_eq!(decoder.awaiting_attachments(), 0);
        assert!(decoder.feed_text(r#"2["z"]"#).unwrap().is_some());
    }

    #[test]
    fn oversized_frames_are_refused() {
        let mut decoder = Decoder::new(16);
        assert_eq!(decoder.max_payload(), 16);
        assert!(decoder.feed_text(r#"2["0123456789a"]"#).unwrap().is_some()); // 16 bytes
        let err = decoder.feed_text(r#"2["0123456789ab"]"#).unwrap_err();
        assert_eq!(
            err,
            CodecError::Oversized {
                what: "text message",
                len: 17,
                max: 16
            }
        );
        assert_eq!(
            err.to_string(),
            "text message of 17 bytes exceeds maxPayload (16)"
        );

        let err = decoder
            .feed_text(r#"51-[{"_placeholder":true,"num":0}]"#)
            .unwrap_err();
        assert!(
            matches!(err, CodecError::Oversized { len: 34, .. }),
            "{err}"
        );
        decoder.set_max_payload(64);
        assert_eq!(
            decoder.feed_text(r#"51-["a",{"_placeholder":true,"num":0}]"#),
            Ok(None)
        );
        let err = decoder.feed_binary(Bytes::from(vec![0u8; 65])).unwrap_err();
        assert!(matches!(
            err,
            CodecError::Oversized {
                what: "binary attachment",
                len: 65,
                max: 64
            }
        ));
        assert_eq!(decoder.awaiting_attachments(), 0);
    }

    #[test]
    fn error_messages_quote_a_truncated_excerpt() {
        let long = format!(r#"2["{}"#, "é".repeat(500));
        let msg = feed(&long).unwrap_err().to_string();
        assert!(msg.starts_with("malformed JSON payload"), "{msg}");
        assert!(msg.contains("…"), "{msg}");
        assert!(
            msg.chars().count() < 200,
            "{} chars: {msg}",
            msg.chars().count()
        );
        let msg = parse_eio_text(&format!("9{}", "x".repeat(1000)))
            .unwrap_err()
            .to_string();
        assert!(msg.chars().count() < 120 && msg.contains("9xxx"), "{msg}");
        assert_eq!(
            feed("7").unwrap_err().to_string(),
            r#"unknown Socket.IO packet type in "7""#
        );
    }

    // ------------------------------------------- truncations and fuzzing

    /// Runs a frame through the whole pipeline, as an agent would.
    fn pipeline(
        decoder: &mut Decoder,
        frame: &str,
        attachments: &[&[u8]],
    ) -> Result<Option<SioPacket>> {
        match parse_eio_text(frame)? {
            EioPacket::Message(payload) => {
                let mut got = decoder.feed_text(payload)?;
                for a in attachments {
                    if decoder.awaiting_attachments() == 0 {
                        break;
                    }
                    got = decoder.feed_binary(Bytes::copy_from_slice(a))?;
                }
                Ok(got)
            }
            _ => Ok(None),
        }
    }

    /// What a truncated frame must decode to.
    #[derive(Debug)]
    enum Expect {
        /// A packet: the one its bytes mean.
        Packet(SioPacket),
        /// An error of this kind.
        Err(&'static str),
    }

    /// The kind of an error, without its fields: [`variant`]'s name without
    /// the payload kind it gives `InvalidPayload`.
    fn kind_of(e: &CodecError) -> &'static str {
        let name = variant(e);
        name.split_once(' ').map_or(name, |(kind, _)| kind)
    }

    /// A packet without data, ack id or attachments.
    fn bare(kind: SioKind, namespace: &str) -> Expect {
        Expect::Packet(SioPacket {
            kind,
            namespace: if namespace.is_empty() || namespace == "/" {
                Cow::Borrowed("/")
            } else {
                Cow::Owned(namespace.to_string())
            },
            ack_id: None,
            data: None,
            attachments: Vec::new(),
        })
    }

    #[test]
    fn every_truncation_is_an_error_or_a_packet() {
        // Each frame, its attachments, and what a cut before its JSON means
        // (`head(prefix)`, for prefixes of 2 bytes or more). A cut inside
        // the JSON leaves it unterminated (every frame ends with `]` or `}`).
        type Head = fn(&str) -> Expect;
        let needs_array: Head = |_| Expect::Err("InvalidPayload");
        let binary_head: Head = |p| {
            if p.contains('-') {
                Expect::Err("InvalidPayload") // `N-` read, no array yet
            } else {
                Expect::Err("BadAttachmentCount") // no `N-` yet
            }
        };
        let frames: &[(&str, &[&[u8]], Head)] = &[
            // `40`, `40/`, `40/a` … `40/admin,`: a CONNECT to that namespace.
            (r#"40/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#, &[], |p| {
                bare(SioKind::Connect, p[2..].trim_end_matches(','))
            }),
            // `44`: a CONNECT_ERROR without a reason.
            (
                r#"44{"message":"Not authorized","data":{"a":[1]}}"#,
                &[],
                |p| bare(SioKind::ConnectError, &p[2..]),
            ),
            // An EVENT and an ACK need their array (an ACK's is checked
            // before its id).
            (r#"42/admin,17["status",{"load":3}]"#, &[], needs_array),
            (r#"43/admin,13["bar"]"#, &[], needs_array),
            (
                r#"452-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
                &[&[1, 2], &[3, 4]],
                binary_head,
            ),
            (
                r#"461-15["bär",{"_placeholder":true,"num":0}]"#,
                &[BIN],
                binary_head,
            ),
            ("42[\"é🚀\\u00e9\",-1.5e3,true,null]", &[], needs_array),
        ];
        let mut cuts = 0;
        for &(frame, attachments, head) in frames {
            let whole = pipeline(&mut Decoder::default(), frame, attachments)
                .unwrap_or_else(|e| panic!("{frame}: {e}"))
                .unwrap_or_else(|| panic!("{frame}: incomplete"));
            let json_at = frame.find(['[', '{']).expect("JSON");
            for (cut, _) in frame.char_indices() {
                let prefix = &frame[..cut];
                let expected = match cut {
                    0 => Expect::Err("UnknownEioType"),
                    1 => Expect::Err("UnknownSioType"),
                    c if c <= json_at => head(prefix),
                    _ => Expect::Err("MalformedJson"),
                };
                let mut decoder = Decoder::default();
                let got = pipeline(&mut decoder, prefix, attachments);
                match (&expected, &got) {
                    (Expect::Packet(p), Ok(Some(g))) => assert_eq!(g, p, "{prefix:?}"),
                    (Expect::Err(kind), Err(e)) => {
                        assert_eq!(kind_of(e), *kind, "{prefix:?}: {e}")
                    }
                    _ => panic!("{prefix:?}: expected {expected:?}, got {got:?}"),
                }
                // A truncated frame leaves nothing behind: the whole frame
                // decodes the same after it.
                assert_eq!(decoder.awaiting_attachments(), 0, "{prefix:?}");
                let again = pipeline(&mut decoder, frame, attachments);
                assert_eq!(again, Ok(Some(whole.clone())), "{frame} after {prefix:?}");
                cuts += 1;
            }
        }
        // Engine.IO frames other than messages: the open packet needs all
        // of its JSON; every non-empty prefix of `2probe` is a ping.
        for (cut, _) in OPEN.char_indices() {
            let got = parse_eio_text(&OPEN[..cut]).map_err(|e| kind_of(&e));
            let expected = if cut == 0 {
                "UnknownEioType"
            } else {
                "MalformedOpen"
            };
            assert_eq!(got, Err(expected), "{:?}", &OPEN[..cut]);
            cuts += 1;
        }
        assert!(matches!(parse_eio_text(OPEN), Ok(EioPacket::Open(_))));
        let ping = "2probe";
        for cut in 1..=ping.len() {
            let got = parse_eio_text(&ping[..cut]);
            assert_eq!(got, Ok(EioPacket::Ping(&ping[1..cut])));
            cuts += 1;
        }
        // Every char boundary of every frame was checked.
        let chars: usize = frames.iter().map(|f| f.0.chars().count()).sum();
        assert_eq!(cuts, chars + OPEN.chars().count() + ping.len());
    }

    #[test]
    fn random_input_never_panics() {
        const TOKENS: &[&str] = &[
            "0",
            "1",
            "2",
            "3",
            "4",
            "5",
            "6",
            "7",
            "9",
            "-",
            "/",
            "/admin",
            ",",
            "[",
            "]",
            "{",
            "}",
            "\"",
            ":",
            "\"_placeholder\"",
            "true",
            "\"num\"",
            "12",
            "18446744073709551616",
            "é",
            "🚀",
            "\u{0}",
            " ",
            "probe",
            "null",
            "\\",
            "\\u",
            "1e999",
            "-0",
            "\"sid\"",
            "\"pingInterval\"",
        ];
        let seeds: Vec<String> = [
            OPEN,
            r#"452-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
            r#"42/admin,17["status",{"load":3}]"#,
            r#"43/admin,13["bar"]"#,
        ]
        .map(String::from)
        .to_vec();
        let mut rng = SmallRng::seed_from_u64(0x5eed);
        let mut decoder = Decoder::default();
        let mut packets = 0;
        for round in 0..30_000 {
            let text = match round % 3 {
                // Raw random bytes, made UTF-8.
                0 => {
                    let bytes: Vec<u8> = (0..rng.gen_range(0..48)).map(|_| rng.gen()).collect();
                    String::from_utf8_lossy(&bytes).into_owned()
                }
                // Protocol-shaped tokens.
                1 => {
                    let mut s = String::from(["4", "0", "2", ""][rng.gen_range(0..4)]);
                    for _ in 0..rng.gen_range(0..16) {
                        s.push_str(TOKENS[rng.gen_range(0..TOKENS.len())]);
                    }
                    s
                }
                // A valid frame with a few tokens spliced in.
                _ => {
                    let mut s = seeds[rng.gen_range(0..seeds.len())].clone();
                    for _ in 0..rng.gen_range(1..4) {
                        let mut at = rng.gen_range(0..=s.len());
                        while !s.is_char_boundary(at) {
                            at -= 1;
                        }
                        s.insert_str(at, TOKENS[rng.gen_range(0..TOKENS.len())]);
                    }
                    s
                }
            };
            if let Ok(Some(_)) = pipeline(&mut decoder, &text, &[]) {
                packets += 1;
            }
            if rng.gen_bool(0.2) {
                let len = rng.gen_range(0..8);
                let _ = decoder.feed_binary(Bytes::from(vec![0xAB; len]));
            }
            let _ = feed(&text);
        }
        // The generator does produce valid packets, not only garbage.
        assert!(packets > 100, "{packets}");
    }
}
