//! Where load may go: an [`Origin`] (scheme, host, port) as a scenario
//! declares it, and the [`HttpVersion`] policy for talking to it. They live
//! in the protocol layer because the connections use them; the scenario
//! parses them from its file.

use serde::Deserialize;

/// A base URL load may go to: scheme, host and port, as declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `http` or `https`.
    pub scheme: String,
    /// Host as written (name or address), without brackets.
    pub host: String,
    pub port: u16,
}

/// Why a base URL was refused: the URL as the user wrote it, and what is
/// wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OriginError {
    #[error("`{url}` is not a URL: {detail}")]
    NotAUrl { url: String, detail: String },
    #[error("`{url}`: a base URL needs a scheme (http:// or https://)")]
    NoScheme { url: String },
    #[error("`{url}`: scheme `{scheme}` is not {allowed}")]
    Scheme {
        url: String,
        scheme: String,
        /// The schemes the caller accepts, as a phrase: `http or https`.
        allowed: &'static str,
    },
    #[error("`{url}`: no host")]
    NoHost { url: String },
    #[error("`{url}`: a base URL has no path (got `{path}`); put paths in the steps")]
    Path { url: String, path: String },
}

impl OriginError {
    /// The same error about `url` (the text the user wrote, when the
    /// caller parsed a rewritten form of it, as `ws://` → `http://`).
    pub fn about(mut self, text: &str) -> OriginError {
        match &mut self {
            OriginError::NotAUrl { url, .. }
            | OriginError::NoScheme { url }
            | OriginError::Scheme { url, .. }
            | OriginError::NoHost { url }
            | OriginError::Path { url, .. } => *url = text.to_string(),
        }
        self
    }
}

impl Origin {
    /// Parse `http(s)://host[:port][/]` (a path other than `/` is refused:
    /// steps carry the paths).
    pub fn parse(text: &str) -> Result<Origin, OriginError> {
        let url = || text.to_string();
        let uri: http::Uri =
            text.parse()
                .map_err(|e: http::uri::InvalidUri| OriginError::NotAUrl {
                    url: url(),
                    detail: e.to_string(),
                })?;
        let scheme = uri
            .scheme_str()
            .ok_or_else(|| OriginError::NoScheme { url: url() })?
            .to_ascii_lowercase();
        let port_default = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => {
                return Err(OriginError::Scheme {
                    url: url(),
                    scheme,
                    allowed: "http or https",
                })
            }
        };
        let host = uri
            .host()
            .ok_or_else(|| OriginError::NoHost { url: url() })?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let path = uri.path();
        if !(path.is_empty() || path == "/") {
            return Err(OriginError::Path {
                url: url(),
                path: path.to_string(),
            });
        }
        Ok(Origin {
            scheme,
            host,
            port: uri.port_u16().unwrap_or(port_default),
        })
    }

    /// `host:port` as it goes into a Host header or a socket lookup.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    pub fn is_tls(&self) -> bool {
        self.scheme == "https"
    }
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}://{}", self.scheme, self.authority())
    }
}

/// HTTP protocol version policy.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
pub enum HttpVersion {
    /// HTTP/1.1 over plain TCP; over TLS, whatever ALPN negotiates (h2 preferred).
    #[default]
    #[serde(rename = "auto")]
    Auto,
    /// HTTP/1.1 only, also over TLS.
    #[serde(rename = "1.1")]
    Http1,
    /// HTTP/2: over TLS by ALPN, over plain TCP by prior knowledge (h2c).
    #[serde(rename = "2")]
    Http2,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_carry_the_url_and_read_as_before() {
        let e = Origin::parse("ftp://h:21").unwrap_err();
        assert_eq!(
            e,
            OriginError::Scheme {
                url: "ftp://h:21".into(),
                scheme: "ftp".into(),
                allowed: "http or https"
            }
        );
        assert_eq!(
            e.to_string(),
            "`ftp://h:21`: scheme `ftp` is not http or https"
        );
        let e = Origin::parse("http://h:1/api").unwrap_err();
        assert_eq!(
            e.to_string(),
            "`http://h:1/api`: a base URL has no path (got `/api`); put paths in the steps"
        );
        assert_eq!(
            Origin::parse("localhost:8080").unwrap_err().to_string(),
            "`localhost:8080`: a base URL needs a scheme (http:// or https://)"
        );
        assert!(matches!(
            Origin::parse("http://a b").unwrap_err(),
            OriginError::NotAUrl { url, .. } if url == "http://a b"
        ));
        // A caller that parsed a rewritten form names what the user wrote.
        let e = Origin::parse("https://hub:1/x")
            .unwrap_err()
            .about("wss://hub:1/x");
        assert_eq!(
            e.to_string(),
            "`wss://hub:1/x`: a base URL has no path (got `/x`); put paths in the steps"
        );
        let ok = Origin::parse("https://[::1]:8443/").unwrap();
        assert_eq!(
            (ok.host.as_str(), ok.port, ok.is_tls()),
            ("::1", 8443, true)
        );
        assert_eq!(ok.to_string(), "https://[::1]:8443");
    }
}
