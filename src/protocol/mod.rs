//! Protocols the engine speaks. Each VU owns its connection(s): no pool
//! shared between tasks, so keep-alive is per VU (as k6 does) and a fresh
//! connection per journey is just dropping it.

pub mod h1;
pub mod http;
pub mod socketio;
