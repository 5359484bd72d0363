//! Protocols the engine speaks. Each VU owns its connection(s): no pool
//! shared between tasks, so keep-alive is per VU (as k6 does) and a fresh
//! connection per journey is just dropping it.
//!
//! - [`http`]: HTTP/1.1 (own codec, [`h1`]) and HTTP/2 (hyper) connections.
//! - [`socketio`]: Engine.IO v4 / Socket.IO v5 packet codec for hub agents.
//! - [`ws`]: WebSocket client connections for hub agents (tokio-tungstenite,
//!   small buffers, source addresses, TLS).
//! - [`net`]: source-address spreading and the file-descriptor budget.
//! - [`origin`]: where load may go ([`Origin`]) and the HTTP version policy.
//! - [`json`]: JSON string escaping for payloads and templates.
//! - [`redirect`]: where a redirect points and the request sent there.

pub mod h1;
pub mod http;
pub mod json;
pub mod net;
pub mod origin;
pub mod redirect;
pub mod socketio;
pub mod ws;

pub use origin::{HttpVersion, Origin, OriginError};
