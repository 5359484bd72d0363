//! The hub's registry: every live connection (plain WebSocket or
//! Socket.IO socket, in connection order), the agent id it registered as,
//! the Socket.IO WebSocket transports (so kicks and restarts reach them),
//! and who sent each recent command (so results find their way back,
//! bounded by [`MAX_PENDING_COMMANDS`]). It lives behind the core's one
//! lock; everything that sends or ends something is resolved under the
//! lock and done after it ([`Sink`], [`Ender`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use socketioxide::socket::Sid;
use tokio::sync::mpsc;

use super::kill::KillSwitch;
use super::{MAX_PENDING_COMMANDS, NAMESPACES};

/// A Socket.IO namespace served ([`NAMESPACES`]); the index of its count
/// in [`Registry::sio_agents`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Ns {
    Root,
    Agents,
}

impl Ns {
    pub(super) fn of(path: &str) -> Ns {
        if path == "/agents" {
            Ns::Agents
        } else {
            Ns::Root
        }
    }

    pub(super) fn path(self) -> &'static str {
        match self {
            Ns::Root => NAMESPACES[0],
            Ns::Agents => NAMESPACES[1],
        }
    }
}

/// How a connection is reached: a plain WebSocket by its task's queue, a
/// Socket.IO socket through socketioxide.
pub(super) enum Link {
    Ws(mpsc::Sender<Utf8Bytes>),
    Sio(Ns, Sid),
}

/// One live connection.
pub(super) struct Conn {
    pub(super) link: Link,
    /// `None` for a Socket.IO socket on long-polling.
    pub(super) kill: Option<Arc<KillSwitch>>,
    /// The agent id it registered as, if it did.
    pub(super) agent: Option<Box<str>>,
    /// Kicked or restarted: no longer counted as connected, not yet gone.
    pub(super) closing: bool,
}

/// Who sent a command, to route its results back.
#[derive(Debug, Clone, Copy)]
pub(super) enum Origin {
    Http,
    Ws(u64),
    Sio(Ns, Sid),
}

/// Where to send something, resolved under the lock and used after it.
pub(super) enum Sink {
    Ws(mpsc::Sender<Utf8Bytes>),
    Sio(Ns, Sid),
}

/// How to end a connection, resolved under the lock.
pub(super) enum Ender {
    Kill(Arc<KillSwitch>),
    Disconnect(Ns, Sid),
}

/// Every connection and agent of the hub, behind the core's lock.
#[derive(Default)]
pub(super) struct Registry {
    /// The key of the next connection (keys grow: `conns` is in connection order).
    pub(super) next_seq: u64,
    /// Live connections by key.
    pub(super) conns: BTreeMap<u64, Conn>,
    /// The key of each Socket.IO socket.
    pub(super) sio: HashMap<(Ns, Sid), u64>,
    /// The connection each registered agent id is on.
    pub(super) agents: HashMap<Box<str>, u64>,
    /// Registered Socket.IO agents per namespace (root, agents).
    pub(super) sio_agents: [u64; 2],
    /// How many of `conns` are closing.
    pub(super) closing: u64,
    /// The sender of each remembered command, by command id.
    pub(super) pending: HashMap<Box<str>, Origin>,
    /// The ids of `pending`, oldest first, to forget beyond [`MAX_PENDING_COMMANDS`].
    pub(super) pending_order: VecDeque<Box<str>>,
    /// Live Socket.IO WebSocket transports, in a namespace or not.
    pub(super) transports: HashMap<u64, Arc<KillSwitch>>,
    /// The key of the next transport.
    pub(super) next_transport: u64,
    /// Transports of sessions upgraded from long-polling, by session id
    /// (which socketioxide also gives the session's sockets).
    pub(super) upgraded: HashMap<Sid, Arc<KillSwitch>>,
}

impl Registry {
    pub(super) fn insert(&mut self, link: Link, kill: Option<Arc<KillSwitch>>) -> u64 {
        self.next_seq += 1;
        let seq = self.next_seq;
        if let Link::Sio(ns, sid) = link {
            self.sio.insert((ns, sid), seq);
        }
        self.conns.insert(
            seq,
            Conn {
                link,
                kill,
                agent: None,
                closing: false,
            },
        );
        seq
    }

    fn unregister(&mut self, seq: u64) {
        let Some(conn) = self.conns.get_mut(&seq) else {
            return;
        };
        if let Some(id) = conn.agent.take() {
            self.agents.remove(&id);
            if let Link::Sio(ns, _) = conn.link {
                self.sio_agents[ns as usize] -= 1;
            }
        }
    }

    pub(super) fn remove(&mut self, seq: u64) {
        self.unregister(seq);
        if let Some(conn) = self.conns.remove(&seq) {
            if conn.closing {
                self.closing -= 1;
            }
            if let Link::Sio(ns, sid) = conn.link {
                self.sio.remove(&(ns, sid));
            }
        }
    }

    /// Registers `seq` as agent `id`; returns the Socket.IO socket that
    /// held that id before (so it can leave the room), if any.
    pub(super) fn register(&mut self, seq: u64, id: &str) -> Result<Option<(Ns, Sid)>, String> {
        match self.conns.get(&seq) {
            None => return Err("connection closed".into()),
            Some(c) if c.closing => return Err("connection closing".into()),
            Some(c) if c.agent.as_deref() == Some(id) => return Ok(None),
            Some(_) => {}
        }
        self.unregister(seq);
        let mut superseded = None;
        if let Some(old) = self.agents.get(id).copied() {
            if let Some(Link::Sio(ns, sid)) = self.conns.get(&old).map(|c| &c.link) {
                superseded = Some((*ns, *sid));
            }
            self.unregister(old);
        }
        let id: Box<str> = id.into();
        self.agents.insert(id.clone(), seq);
        let conn = self.conns.get_mut(&seq).expect("checked above");
        if let Link::Sio(ns, _) = conn.link {
            self.sio_agents[ns as usize] += 1;
        }
        conn.agent = Some(id);
        Ok(superseded)
    }

    /// The kill switch of a connection's WebSocket transport, if it has one.
    pub(super) fn kill_switch(&self, conn: &Conn) -> Option<Arc<KillSwitch>> {
        match (&conn.kill, &conn.link) {
            (Some(k), _) => Some(k.clone()),
            (None, Link::Sio(_, sid)) => self.upgraded.get(sid).cloned(),
            (None, Link::Ws(_)) => None,
        }
    }

    pub(super) fn mark_closing(&mut self, seq: u64) -> Option<Ender> {
        self.unregister(seq);
        let conn = self.conns.get(&seq)?;
        let ender = match (self.kill_switch(conn), &conn.link) {
            (Some(k), _) => Some(Ender::Kill(k)),
            (None, Link::Sio(ns, sid)) => Some(Ender::Disconnect(*ns, *sid)),
            (None, Link::Ws(_)) => None,
        };
        let conn = self.conns.get_mut(&seq)?;
        if !conn.closing {
            conn.closing = true;
            self.closing += 1;
        }
        ender
    }

    pub(super) fn sink(&self, seq: u64) -> Option<Sink> {
        let conn = self.conns.get(&seq)?;
        Some(match &conn.link {
            Link::Ws(tx) => Sink::Ws(tx.clone()),
            Link::Sio(ns, sid) => Sink::Sio(*ns, *sid),
        })
    }

    pub(super) fn remember(&mut self, id: &str, origin: Origin) {
        if self.pending.insert(id.into(), origin).is_none() {
            self.pending_order.push_back(id.into());
            while self.pending_order.len() > MAX_PENDING_COMMANDS {
                if let Some(old) = self.pending_order.pop_front() {
                    self.pending.remove(&old);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_commands_are_bounded() {
        let mut reg = Registry::default();
        for i in 0..MAX_PENDING_COMMANDS + 10 {
            reg.remember(&format!("c{i}"), Origin::Http);
        }
        assert_eq!(reg.pending.len(), MAX_PENDING_COMMANDS);
        assert_eq!(reg.pending_order.len(), MAX_PENDING_COMMANDS);
        assert!(!reg.pending.contains_key("c0"));
        assert!(reg.pending.contains_key("c10"));
    }

    #[test]
    fn registering_an_id_again_moves_it() {
        let mut reg = Registry::default();
        let (tx, _rx) = mpsc::channel(1);
        let a = reg.insert(Link::Ws(tx.clone()), Some(Arc::default()));
        let b = reg.insert(Link::Ws(tx), Some(Arc::default()));
        reg.register(a, "x").unwrap();
        reg.register(b, "x").unwrap();
        assert_eq!(reg.agents.len(), 1);
        assert_eq!(reg.agents["x"], b);
        assert!(reg.conns[&a].agent.is_none());
        reg.register(a, "y").unwrap();
        assert!(reg.mark_closing(a).is_some());
        assert_eq!(reg.agents.len(), 1);
        assert_eq!(reg.closing, 1);
        reg.remove(a);
        reg.remove(b);
        assert!(reg.conns.is_empty() && reg.agents.is_empty());
        assert_eq!(reg.closing, 0);
    }
}
