//! Following a redirect (RFC 9110 §15.4): where its `Location` points,
//! resolved against the request's URL, and the request sent there — the
//! method and body a client keeps or drops for each status, and the
//! credentials it does not carry to another origin. The engine decides
//! whether the target is one the scenario declares; nothing here sends.

use super::http::OutRequest;
use super::Origin;
use http::header::{
    AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST, PROXY_AUTHORIZATION,
    TRANSFER_ENCODING,
};
use http::Method;

/// Where a redirect points: an origin and an origin-form path (`/a?b`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub origin: Origin,
    pub path: String,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}{}", self.origin, self.path)
    }
}

/// Resolve `location` (absolute, scheme-relative, absolute-path or
/// relative, RFC 3986 §5) against the request `origin` + `path`. The
/// fragment is dropped; a scheme other than http(s) is an error.
pub fn resolve(origin: &Origin, path: &str, location: &[u8]) -> Result<Location, String> {
    let text = std::str::from_utf8(location)
        .map_err(|_| "the Location header is not UTF-8".to_string())?
        .trim();
    if text.is_empty() {
        return Err("the Location header is empty".into());
    }
    let base = url::Url::parse(&format!("{origin}{path}"))
        .map_err(|e| format!("the request URL {origin}{path} is not a URL: {e}"))?;
    let to = base
        .join(text)
        .map_err(|e| format!("Location `{text}` is not a URL: {e}"))?;
    let scheme = to.scheme();
    if scheme != "http" && scheme != "https" {
        return Err(format!("Location `{text}` is not http or https"));
    }
    let host = to
        .host_str()
        .ok_or_else(|| format!("Location `{text}` has no host"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = to
        .port_or_known_default()
        .ok_or_else(|| format!("Location `{text}` has no port"))?;
    let mut path = to.path().to_string();
    if let Some(query) = to.query() {
        path.push('?');
        path.push_str(query);
    }
    Ok(Location {
        origin: Origin {
            scheme: scheme.to_string(),
            host: host.to_string(),
            port,
        },
        path,
    })
}

/// Whether two origins are the same (scheme, host without case, port).
pub fn same_origin(a: &Origin, b: &Origin) -> bool {
    a.scheme == b.scheme && a.port == b.port && a.host.eq_ignore_ascii_case(&b.host)
}

/// Turn `request` into the one a client sends after `status` to `to`:
/// - 303, and 301/302 after a POST: GET (HEAD stays HEAD) without the body
///   and its headers, as browsers, curl's `-L` for 303, Go and reqwest do;
/// - 307 and 308: the same method and body;
/// - to another origin: no `Authorization`, `Cookie`,
///   `Proxy-Authorization` or caller-set `Host` (credentials stay with the
///   origin they were meant for).
pub fn follow(request: &mut OutRequest, status: u16, to: &Location, cross_origin: bool) {
    let to_get = match status {
        303 => request.method != Method::HEAD,
        301 | 302 => request.method == Method::POST,
        _ => false,
    };
    if to_get {
        request.method = Method::GET;
        request.body.clear();
        for name in [CONTENT_TYPE, CONTENT_LENGTH, TRANSFER_ENCODING] {
            request.headers.remove(name);
        }
    }
    if cross_origin {
        for name in [AUTHORIZATION, COOKIE, PROXY_AUTHORIZATION, HOST] {
            request.headers.remove(name);
        }
    }
    request.path.clone_from(&to.path);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(text: &str) -> Origin {
        Origin::parse(text).unwrap()
    }

    #[test]
    fn locations_resolve_against_the_request_url() {
        let base = origin("http://api.test:8080");
        let cases = [
            ("/b", "http://api.test:8080/b"),
            ("c?x=1#frag", "http://api.test:8080/a/c?x=1"),
            ("../d", "http://api.test:8080/d"),
            ("?y=2", "http://api.test:8080/a/b?y=2"),
            ("//other.test/e", "http://other.test:80/e"),
            ("https://Other.Test/f", "https://other.test:443/f"),
            ("http://[::1]:9000/g", "http://[::1]:9000/g"),
            ("/sp ace", "http://api.test:8080/sp%20ace"),
        ];
        for (location, expected) in cases {
            let to = resolve(&base, "/a/b?q=0", location.as_bytes()).unwrap();
            assert_eq!(to.to_string(), expected, "{location}");
        }
        for bad in [
            "",
            "ftp://x.test/",
            "http://",
            "mailto:a@b.test",
            "http://a b/",
        ] {
            let got = resolve(&base, "/", bad.as_bytes());
            assert!(got.is_err(), "{bad:?}: {got:?}");
        }
        assert!(resolve(&base, "/", b"\xff").is_err());
        let v6 = resolve(&base, "/", b"http://[::1]:9000/").unwrap();
        assert!(same_origin(&v6.origin, &origin("http://[::1]:9000")));
        assert!(same_origin(&origin("http://API.test:8080"), &base));
        assert!(!same_origin(&origin("https://api.test:8080"), &base));
    }

    #[test]
    fn methods_bodies_and_credentials_follow_the_status() {
        let post = || {
            let mut r = OutRequest {
                method: Method::POST,
                path: "/login".into(),
                body: "{}".into(),
                ..OutRequest::default()
            };
            for (k, v) in [
                ("content-type", "application/json"),
                ("authorization", "Bearer t"),
                ("cookie", "s=1"),
                ("x-trace", "1"),
            ] {
                r.headers.insert(k, v.parse().unwrap());
            }
            r
        };
        let to = resolve(&origin("http://a.test"), "/", b"/next").unwrap();
        let shape = |r: &OutRequest| {
            let mut names: Vec<&str> = r.headers.keys().map(|k| k.as_str()).collect();
            names.sort();
            format!("{} {} [{}] {}", r.method, r.path, r.body, names.join(","))
        };
        let all = "authorization,content-type,cookie,x-trace";
        #[rustfmt::skip]
        let cases = [
            (303, false, "GET /next [] authorization,cookie,x-trace".to_string()),
            (302, false, "GET /next [] authorization,cookie,x-trace".to_string()),
            (301, false, "GET /next [] authorization,cookie,x-trace".to_string()),
            (307, false, format!("POST /next [{{}}] {all}")),
            (308, false, format!("POST /next [{{}}] {all}")),
            (307, true, "POST /next [{}] content-type,x-trace".to_string()),
            (303, true, "GET /next [] x-trace".to_string()),
        ];
        for (status, cross, expected) in cases {
            let mut r = post();
            follow(&mut r, status, &to, cross);
            assert_eq!(shape(&r), expected, "{status} cross={cross}");
        }
        let mut put = post();
        put.method = Method::PUT;
        follow(&mut put, 302, &to, false);
        assert_eq!(put.method, Method::PUT);
        let mut head = OutRequest {
            method: Method::HEAD,
            ..OutRequest::default()
        };
        follow(&mut head, 303, &to, false);
        assert_eq!(head.method, Method::HEAD);
    }
}
