//! JSON string escaping, shared by the Socket.IO codec (event payloads) and
//! the scenario templates (`{{ x | json }}`). Hand-written: it appends into
//! the caller's buffer with no allocation, which serde_json's string
//! serializer does not offer.

use std::fmt::Write as _;

/// Append `s` escaped for the inside of a JSON string.
pub fn push_json_escaped(out: &mut String, s: &str) {
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
}
