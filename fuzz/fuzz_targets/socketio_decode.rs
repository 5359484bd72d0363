//! The Engine.IO / Socket.IO decoder, fed the frames of one connection as
//! an agent feeds them: text frames through `parse_eio_text` (the open
//! packet sets the decoder's `maxPayload`), messages and binary frames
//! through one `Decoder`. A decoded event is encoded again and must decode
//! to the same event.
//!
//! Input: frames separated by `\n`; a frame starting with `b` is a binary
//! frame of the bytes after the `b`, any other a text frame.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use stampede::protocol::socketio::{
    encode_event, parse_eio_binary, parse_eio_text, pong_with, validate_namespace, Decoder,
    EioPacket, SioPacket,
};

fn check(packet: &SioPacket) {
    let _ = packet.connect_sid();
    let _ = packet.connect_error_message();
    for arg in packet.event_args() {
        let _ = packet.attachment(arg);
    }
    let Some(name) = packet.event_name() else {
        return;
    };
    if packet.kind.is_binary() {
        return;
    }
    validate_namespace(&packet.namespace).expect("a decoded namespace is valid");
    let args: Vec<String> = packet.event_args().iter().map(|a| a.to_string()).collect();
    let mut out = String::new();
    encode_event(
        &packet.namespace,
        name,
        &args.join(","),
        packet.ack_id,
        &mut out,
    );
    let Ok(EioPacket::Message(payload)) = parse_eio_text(&out) else {
        panic!("an encoded event is not an Engine.IO message: {out:?}");
    };
    let again = Decoder::default()
        .feed_text(payload)
        .unwrap_or_else(|e| panic!("re-encoded event {out:?} does not decode: {e}"))
        .expect("not a binary packet");
    assert_eq!(again.kind, packet.kind);
    assert_eq!(again.namespace, packet.namespace);
    assert_eq!(again.ack_id, packet.ack_id);
    assert_eq!(again.event_name(), Some(name));
    assert_eq!(again.event_args().len(), packet.event_args().len());
}

fuzz_target!(|data: &[u8]| {
    let mut decoder = Decoder::default();
    let mut out = String::new();
    for frame in data.split(|&b| b == b'\n') {
        let packet = if let Some(binary) = frame.strip_prefix(b"b") {
            let EioPacket::Binary(bytes) = parse_eio_binary(binary) else {
                unreachable!("a binary frame is Binary");
            };
            decoder.feed_binary(Bytes::copy_from_slice(bytes))
        } else {
            let Ok(text) = std::str::from_utf8(frame) else {
                continue;
            };
            match parse_eio_text(text) {
                Ok(EioPacket::Open(info)) => {
                    let _ = info.ping_deadline();
                    decoder.set_max_payload(info.max_payload);
                    continue;
                }
                Ok(EioPacket::Ping(data)) => {
                    pong_with(data, &mut out);
                    continue;
                }
                Ok(EioPacket::Message(payload)) => decoder.feed_text(payload),
                Ok(_) | Err(_) => continue,
            }
        };
        match packet {
            Ok(Some(packet)) => {
                assert_eq!(decoder.awaiting_attachments(), 0);
                check(&packet);
            }
            Ok(None) => assert!(decoder.awaiting_attachments() > 0),
            Err(e) => {
                let _ = e.to_string();
                assert_eq!(decoder.awaiting_attachments(), 0, "idle after an error");
            }
        }
    }
});
