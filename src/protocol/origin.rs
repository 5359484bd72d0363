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

impl Origin {
    /// Parse `http(s)://host[:port][/]` (a path other than `/` is refused:
    /// steps carry the paths).
    pub fn parse(text: &str) -> Result<Origin, String> {
        let uri: http::Uri = text
            .parse()
            .map_err(|e| format!("`{text}` is not a URL: {e}"))?;
        let scheme = uri
            .scheme_str()
            .ok_or_else(|| format!("`{text}`: a base URL needs a scheme (http:// or https://)"))?
            .to_ascii_lowercase();
        let port_default = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            other => return Err(format!("`{text}`: scheme `{other}` is not http or https")),
        };
        let host = uri
            .host()
            .ok_or_else(|| format!("`{text}`: no host"))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let path = uri.path();
        if !(path.is_empty() || path == "/") {
            return Err(format!(
                "`{text}`: a base URL has no path (got `{path}`); put paths in the steps"
            ));
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum HttpVersion {
    /// HTTP/1.1 over plain TCP; over TLS, whatever ALPN negotiates (h2 preferred).
    #[default]
    #[serde(rename = "auto")]
    Auto,
    #[serde(rename = "1.1")]
    Http1,
    /// HTTP/2: over TLS by ALPN, over plain TCP by prior knowledge (h2c).
    #[serde(rename = "2")]
    Http2,
}
