//! Encoders of outgoing Socket.IO frames. Each replaces the contents of
//! `out` with one complete text frame, Engine.IO prefix included (`42…` for
//! an event), and never allocates once `out` is large enough: agents reuse
//! one `String` per connection. Namespaces are checked once, by
//! [`validate_namespace`], when the scenario is loaded.

use super::{excerpt, CodecError, Result};

/// Checks a namespace for the encoders: `/` (or empty) for the main one,
/// else `/name` without `,` or control characters. Run it once, when the
/// scenario is loaded; the encoders only `debug_assert!` it.
pub fn validate_namespace(ns: &str) -> Result<()> {
    let ok = is_main(ns)
        || (ns.starts_with('/') && !ns.bytes().any(|b| b == b',' || b.is_ascii_control()));
    if ok {
        Ok(())
    } else {
        Err(CodecError::MalformedNamespace { seen: excerpt(ns) })
    }
}

fn is_main(ns: &str) -> bool {
    ns.is_empty() || ns == "/"
}

/// Clears `out` and writes `4<kind digit>` plus the namespace, if not main.
fn start(out: &mut String, kind: char, ns: &str) {
    debug_assert!(validate_namespace(ns).is_ok(), "bad namespace {ns:?}");
    out.clear();
    out.push('4');
    out.push(kind);
    if !is_main(ns) {
        out.push_str(ns);
        out.push(',');
    }
}

fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        out.push(char::from(d));
    }
}

/// Appends `s` as a JSON string literal (the escaping is `protocol::json`'s,
/// which the templates use too).
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    crate::protocol::json::push_json_escaped(out, s);
    out.push('"');
}

/// Appends `s` as a JSON string (quoted, escaped).
pub fn push_json_string(out: &mut String, s: &str) {
    push_json_str(out, s);
}

/// Writes a CONNECT to `ns`: `40`, `40/admin,`, `40{"token":"123"}`.
/// `auth_json` must be a JSON object (or `None`).
pub fn encode_connect(ns: &str, auth_json: Option<&str>, out: &mut String) {
    start(out, '0', ns);
    if let Some(auth) = auth_json {
        out.push_str(auth);
    }
}

/// Writes an EVENT: `42/admin,17["status",{"load":3}]` for
/// `("/admin", "status", r#"{"load":3}"#, Some(17))`. `event` is escaped;
/// `args_json` is the array's remaining items, comma-separated, written as
/// given (`""` for none).
pub fn encode_event(ns: &str, event: &str, args_json: &str, ack_id: Option<u64>, out: &mut String) {
    start(out, '2', ns);
    if let Some(id) = ack_id {
        push_u64(out, id);
    }
    out.push('[');
    push_json_str(out, event);
    if !args_json.is_empty() {
        out.push(',');
        out.push_str(args_json);
    }
    out.push(']');
}

/// Writes an ACK: `43/admin,13["bar"]` for `("/admin", 13, r#""bar""#)`.
/// `args_json` is the array's items, comma-separated (`""` for none).
pub fn encode_ack(ns: &str, ack_id: u64, args_json: &str, out: &mut String) {
    start(out, '3', ns);
    push_u64(out, ack_id);
    out.push('[');
    out.push_str(args_json);
    out.push(']');
}

/// Writes a DISCONNECT from `ns`: `41`, `41/admin,`.
pub fn encode_disconnect(ns: &str, out: &mut String) {
    start(out, '1', ns);
}

#[cfg(test)]
mod tests {
    use super::super::test_util::decode;
    use super::super::{parse_eio_text, pong, pong_with, EioPacket, SioKind};
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn encoders_write_the_documented_frames() {
        let mut out = String::new();
        encode_connect("/", None, &mut out);
        assert_eq!(out, "40");
        encode_connect("", None, &mut out);
        assert_eq!(out, "40");
        encode_connect("/admin", None, &mut out);
        assert_eq!(out, "40/admin,");
        encode_connect("/admin", Some(r#"{"token":"123"}"#), &mut out);
        assert_eq!(out, r#"40/admin,{"token":"123"}"#);
        encode_connect("/", Some(r#"{"token":"123"}"#), &mut out);
        assert_eq!(out, r#"40{"token":"123"}"#);

        encode_event("/admin", "status", r#"{"load":3}"#, Some(17), &mut out);
        assert_eq!(out, r#"42/admin,17["status",{"load":3}]"#);
        encode_event("/", "foo", "", None, &mut out);
        assert_eq!(out, r#"42["foo"]"#);
        encode_event("/", "foo", "", Some(12), &mut out);
        assert_eq!(out, r#"4212["foo"]"#);
        encode_event("/", "hey", r#""Jude""#, None, &mut out);
        assert_eq!(out, r#"42["hey","Jude"]"#);
        encode_event("/", "", "", Some(0), &mut out);
        assert_eq!(out, r#"420[""]"#);

        encode_ack("/", 12, "", &mut out);
        assert_eq!(out, "4312[]");
        encode_ack("/admin", 13, r#""bar""#, &mut out);
        assert_eq!(out, r#"43/admin,13["bar"]"#);
        encode_ack("/", u64::MAX, "1,2", &mut out);
        assert_eq!(out, "4318446744073709551615[1,2]");

        encode_disconnect("/", &mut out);
        assert_eq!(out, "41");
        encode_disconnect("/admin", &mut out);
        assert_eq!(out, "41/admin,");
    }

    #[test]
    fn encoders_round_trip_through_the_decoder() {
        let mut out = String::new();
        let names = [
            "status",
            "",
            "say \"hi\"",
            "back\\slash",
            "ctl\u{1}\n\r\t\u{8}\u{c}\u{1f}",
            "éß✓🚀",
            "/admin,",
        ];
        for ns in ["/", "/admin", "/a/b.c-d_é"] {
            for name in names {
                for ack_id in [None, Some(0), Some(17), Some(u64::MAX)] {
                    encode_event(ns, name, r#"{"load":3},[1,"x"],null"#, ack_id, &mut out);
                    let p = decode(&out);
                    assert_eq!(p.kind, SioKind::Event);
                    assert_eq!(p.namespace, ns);
                    assert_eq!(p.ack_id, ack_id);
                    assert_eq!(p.event_name(), Some(name), "{out}");
                    assert_eq!(
                        p.event_args(),
                        [json!({"load": 3}), json!([1, "x"]), Value::Null]
                    );
                    // The escaping agrees with serde_json's.
                    let expected =
                        serde_json::to_string(&json!([name, {"load": 3}, [1, "x"], null])).unwrap();
                    assert!(out.ends_with(&expected), "{out} vs {expected}");
                }
            }
            encode_connect(ns, Some(r#"{"token":"123"}"#), &mut out);
            let p = decode(&out);
            assert_eq!((p.kind, &*p.namespace), (SioKind::Connect, ns));
            assert_eq!(p.data, Some(json!({"token": "123"})));
            encode_connect(ns, None, &mut out);
            assert_eq!(decode(&out).data, None);

            encode_ack(ns, 42, r#""ok",{"n":1}"#, &mut out);
            let p = decode(&out);
            assert_eq!(
                (p.kind, &*p.namespace, p.ack_id),
                (SioKind::Ack, ns, Some(42))
            );
            assert_eq!(p.event_args(), [json!("ok"), json!({"n": 1})]);
            encode_ack(ns, 7, "", &mut out);
            assert!(decode(&out).event_args().is_empty());

            encode_disconnect(ns, &mut out);
            let p = decode(&out);
            assert_eq!((p.kind, &*p.namespace), (SioKind::Disconnect, ns));
        }
        pong(&mut out);
        assert_eq!(parse_eio_text(&out), Ok(EioPacket::Pong("")));
        pong_with("probe", &mut out);
        assert_eq!(parse_eio_text(&out), Ok(EioPacket::Pong("probe")));
    }

    #[test]
    fn encoding_into_a_reused_string_does_not_grow_it() {
        let mut out = String::new();
        // First use: the largest frame of the loop below.
        encode_event(
            "/admin",
            "status",
            r#"{"load":100}"#,
            Some(u64::MAX),
            &mut out,
        );
        let (capacity, ptr) = (out.capacity(), out.as_ptr());
        for i in 0..10_000u64 {
            let load = format!(r#"{{"load":{}}}"#, i % 101);
            encode_event("/admin", "status", &load, Some(i), &mut out);
            encode_ack("/admin", i, r#""ok""#, &mut out);
            encode_connect("/admin", Some(r#"{"id":"a1"}"#), &mut out);
            encode_disconnect("/admin", &mut out);
            pong(&mut out);
            pong_with("probe", &mut out);
            assert_eq!((out.capacity(), out.as_ptr()), (capacity, ptr));
        }
    }

    #[test]
    fn validate_namespace_for_the_encoders() {
        for ok in ["", "/", "/admin", "/a/b", "/é"] {
            assert_eq!(validate_namespace(ok), Ok(()), "{ok:?}");
        }
        for bad in ["admin", "/a,b", "/a\nb", "/a\u{0}"] {
            let err = validate_namespace(bad).unwrap_err();
            assert!(
                matches!(err, CodecError::MalformedNamespace { .. }),
                "{bad:?}"
            );
        }
    }
}
