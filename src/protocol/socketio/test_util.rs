//! Test helpers shared by the codec's unit tests: sample frames and a
//! one-call decode through both layers.

use super::{parse_eio_text, Decoder, EioPacket, SioPacket};

pub(super) const OPEN: &str = r#"0{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#;
pub(super) const BIN: &[u8] = &[1, 2, 3, 4];

/// Decodes one whole text frame that must be a complete Socket.IO packet.
pub(super) fn decode(frame: &str) -> SioPacket {
    let Ok(EioPacket::Message(payload)) = parse_eio_text(frame) else {
        panic!("not a message: {frame:?}");
    };
    Decoder::default()
        .feed_text(payload)
        .unwrap_or_else(|e| panic!("{frame:?}: {e}"))
        .unwrap_or_else(|| panic!("{frame:?}: awaits attachments"))
}
