//! Sockets for tens of thousands of connections per process: source
//! addresses, descriptor budget, port arithmetic.
//!
//! # Why several source addresses
//! A TCP connection is the 4-tuple (source IP, source port, destination IP,
//! destination port). Towards one hub (one destination IP and port) a source
//! address has only the ephemeral port range to vary: 32768–60999 by default
//! on Linux, 28,232 ports (`/proc/sys/net/ipv4/ip_local_port_range`, see
//! [`ports_per_source`]). Past that, `connect` fails with `EADDRNOTAVAIL`.
//! On Linux every address of 127.0.0.0/8 is local without any set-up, so a
//! loopback run spreads its connections round-robin over 127.0.0.1,
//! 127.0.0.2, … ([`SourceAddrs`], [`sources_needed`]).
//!
//! # Why `IP_BIND_ADDRESS_NO_PORT`
//! Choosing the source address means `bind()` before `connect()`, and a plain
//! `bind((ip, 0))` makes the kernel pick the port at bind time, when it does
//! not know the destination yet: the port must then be free for *every*
//! destination, so one source address holds at most ~28k connections in
//! total, and the bind-time search gets slow as the range fills. With
//! `IP_BIND_ADDRESS_NO_PORT` set, `bind` only records the address and the
//! port is chosen at `connect` time, unique per 4-tuple: the same source
//! port is reused towards different destinations (several hub instances,
//! API and hub), exactly as without a bind. [`connect`] sets it on Linux.
//!
//! # TIME_WAIT
//! The side that closes first keeps the 4-tuple in TIME_WAIT for 60 s. An
//! agent that closes and reconnects at once needs a fresh port each time, so
//! a reconnect wave of N agents from one source address can hold up to 2N
//! ports for a minute; the 10% margin of [`sources_needed`] is for that and
//! for ports other programs hold. (`net.ipv4.tcp_tw_reuse = 2`, the default,
//! lets loopback connections reuse TIME_WAIT ports; drops done by reset,
//! `SO_LINGER` 0, leave no TIME_WAIT at all.)
//!
//! # The descriptor limit
//! Every connection is a file descriptor, and the process may hold at most
//! `RLIMIT_NOFILE` of them. The soft limit is often far below the hard one
//! (1024 vs. 524288 on many distributions); [`raise_nofile_limit`] lifts it
//! to the hard limit, which only root can raise. [`check_fd_budget`] refuses
//! a scenario up front rather than failing with `EMFILE` mid-run. Note that
//! against the in-process built-in target each loopback connection costs
//! two descriptors, the client's and the server's.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::net::{TcpSocket, TcpStream};

/// Descriptors the process needs besides its connections: standard streams,
/// the runtime's epoll and wakers, result and log files, listeners.
pub const FD_RESERVE: u64 = 64;

/// Linux's default `ip_local_port_range` (32768–60999), assumed when the
/// real one cannot be read.
pub const DEFAULT_PORTS_PER_SOURCE: u64 = 60999 - 32768 + 1;

/// The most addresses one range may expand to.
const MAX_RANGE: u128 = 1 << 16;

/// A round-robin set of local source addresses. Empty means no bind: the
/// kernel chooses the source address (and [`next`](SourceAddrs::next)
/// returns `None`).
#[derive(Default)]
pub struct SourceAddrs {
    addrs: Vec<IpAddr>,
    cursor: AtomicUsize,
}

/// A source address list that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid source addresses {input:?}: {reason}")]
pub struct SourceAddrsError {
    pub input: String,
    pub reason: String,
}

impl SourceAddrs {
    /// These addresses, in this order (duplicates kept: they weigh more).
    pub fn new(addrs: Vec<IpAddr>) -> SourceAddrs {
        SourceAddrs {
            addrs,
            cursor: AtomicUsize::new(0),
        }
    }

    /// 127.0.0.1 ..= 127.0.0.n (all of 127.0.0.0/8 is local on Linux); at
    /// most 127.255.255.254. `loopback(0)` is empty.
    pub fn loopback(n: u32) -> SourceAddrs {
        let n = n.min((1 << 24) - 2);
        let first = u32::from(Ipv4Addr::new(127, 0, 0, 1));
        SourceAddrs::new(
            (0..n)
                .map(|i| IpAddr::V4(Ipv4Addr::from(first + i)))
                .collect(),
        )
    }

    /// Parse a list separated by commas or whitespace, each item an address
    /// or an inclusive range of one family: `"127.0.0.1-127.0.0.8"`,
    /// `"127.0.0.1, 127.0.0.5-127.0.0.6, ::1"`. Empty input gives the empty
    /// set (the kernel chooses).
    pub fn parse(input: &str) -> Result<SourceAddrs, SourceAddrsError> {
        let err = |reason: String| SourceAddrsError {
            input: input.to_string(),
            reason,
        };
        let ip = |s: &str| {
            s.trim()
                .parse::<IpAddr>()
                .map_err(|_| err(format!("{:?} is not an IP address", s.trim())))
        };
        let mut addrs = Vec::new();
        for item in input
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|s| !s.is_empty())
        {
            let Some((from, to)) = item.split_once('-') else {
                addrs.push(ip(item)?);
                continue;
            };
            match (ip(from)?, ip(to)?) {
                (IpAddr::V4(a), IpAddr::V4(b)) => {
                    let (a, b) = (u32::from(a), u32::from(b));
                    check_range(u128::from(a), u128::from(b))
                        .map_err(|r| err(format!("{item}: {r}")))?;
                    addrs.extend((a..=b).map(|n| IpAddr::from(Ipv4Addr::from(n))));
                }
                (IpAddr::V6(a), IpAddr::V6(b)) => {
                    let (a, b) = (u128::from(a), u128::from(b));
                    check_range(a, b).map_err(|r| err(format!("{item}: {r}")))?;
                    addrs.extend((a..=b).map(|n| IpAddr::from(std::net::Ipv6Addr::from(n))));
                }
                _ => return Err(err(format!("{item}: a range must not mix IPv4 and IPv6"))),
            }
        }
        Ok(SourceAddrs::new(addrs))
    }

    /// The next address, round-robin (lock-free), or `None` when empty.
    pub fn next(&self) -> Option<IpAddr> {
        if self.addrs.is_empty() {
            return None;
        }
        let i = self.cursor.fetch_add(1, Ordering::Relaxed);
        Some(self.addrs[i % self.addrs.len()])
    }

    pub fn addrs(&self) -> &[IpAddr] {
        &self.addrs
    }

    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }
}

fn check_range(from: u128, to: u128) -> Result<(), String> {
    if from > to {
        Err("the range's start is after its end".into())
    } else if to - from >= MAX_RANGE {
        Err(format!("more than {MAX_RANGE} addresses"))
    } else {
        Ok(())
    }
}

impl FromStr for SourceAddrs {
    type Err = SourceAddrsError;

    fn from_str(s: &str) -> Result<SourceAddrs, SourceAddrsError> {
        SourceAddrs::parse(s)
    }
}

impl Clone for SourceAddrs {
    /// Same addresses; the copy's round-robin starts over.
    fn clone(&self) -> SourceAddrs {
        SourceAddrs::new(self.addrs.clone())
    }
}

impl fmt::Debug for SourceAddrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.addrs).finish()
    }
}

/// Connect to `remote`, from `source` when given (port chosen by the kernel
/// at connect time, see the module docs), else from whatever the kernel
/// picks. `TCP_NODELAY` is on. A source of the other IP family than
/// `remote` is refused (`InvalidInput`).
pub async fn connect(remote: SocketAddr, source: Option<IpAddr>) -> io::Result<TcpStream> {
    let stream = match source {
        None => TcpStream::connect(remote).await?,
        Some(source) => bound_socket(remote, source)?.connect(remote).await?,
    };
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A socket bound to `(source, 0)` with `IP_BIND_ADDRESS_NO_PORT` (Linux).
fn bound_socket(remote: SocketAddr, source: IpAddr) -> io::Result<TcpSocket> {
    let socket = match (remote, source) {
        (SocketAddr::V4(_), IpAddr::V4(_)) => TcpSocket::new_v4()?,
        (SocketAddr::V6(_), IpAddr::V6(_)) => TcpSocket::new_v6()?,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("source address {source} cannot reach {remote}: not the same IP family"),
            ))
        }
    };
    bind_address_no_port(&socket)?;
    socket.bind(SocketAddr::new(source, 0))?;
    Ok(socket)
}

/// Defer the port choice from `bind` to `connect` (Linux ≥ 4.2; the option
/// is read at `SOL_IP` level by IPv6 sockets too).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn bind_address_no_port(socket: &TcpSocket) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid descriptor owned by `socket`, and a pointer to a live
    // c_int with its exact size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn bind_address_no_port(_socket: &TcpSocket) -> io::Result<()> {
    Ok(())
}

/// The `RLIMIT_NOFILE` (soft, hard) of this process.
#[cfg(unix)]
pub fn nofile_limit() -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit to write into.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
    Ok((lim.rlim_cur as u64, lim.rlim_max as u64))
}

#[cfg(not(unix))]
pub fn nofile_limit() -> io::Result<(u64, u64)> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "no RLIMIT_NOFILE on this platform",
    ))
}

/// Raise the soft `RLIMIT_NOFILE` to the hard limit (only root may go
/// further) and return (soft, hard) as they are afterwards.
#[cfg(unix)]
pub fn raise_nofile_limit() -> io::Result<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit to read from and write into.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(io::Error::last_os_error());
        }
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    nofile_limit()
}

#[cfg(not(unix))]
pub fn raise_nofile_limit() -> io::Result<(u64, u64)> {
    nofile_limit()
}

/// What one process of a run needs in descriptors, for
/// [`check_fd_budget`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdNeed {
    /// This process's connections at the peak (two per connection to an
    /// in-process target).
    pub needed: u64,
    /// Of those, what every process needs however the fleet is split: its
    /// commanders' connections, its HTTP connections, a margin.
    pub per_process: u64,
    /// The whole fleet's agents (every segment's): what `--processes N`
    /// divides, one descriptor each in a child (the built-in target runs in
    /// a process of its own there).
    pub agents: u64,
}

/// Refuse, before the run, a process that needs more descriptors than it
/// may open: `need.needed` plus [`FD_RESERVE`] against the hard limit. The
/// soft limit is not the bound: [`raise_nofile_limit`] lifts it. The
/// message says what is needed, what is available and what to do: the
/// `--processes N` that fits ([`processes_to_fit`]), or raising the limit.
pub fn check_fd_budget(need: FdNeed) -> Result<(), String> {
    let Ok((_, hard)) = nofile_limit() else {
        return Ok(()); // no limit we can read: nothing to refuse
    };
    fd_budget(need, hard)
}

/// [`check_fd_budget`] against a given hard limit.
pub fn fd_budget(need: FdNeed, hard: u64) -> Result<(), String> {
    let FdNeed {
        needed,
        per_process,
        agents,
    } = need;
    if needed.saturating_add(FD_RESERVE) <= hard {
        return Ok(());
    }
    let raise = "raise the hard limit (`ulimit -Hn` as root, `LimitNOFILE=` for a systemd unit, \
         /etc/security/limits.conf, or the container runtime's nofile ulimit)";
    let split = match processes_to_fit(per_process, agents, hard) {
        Some(n) => format!(
            "Split the fleet over {n} or more processes (`--processes {n}`: about {} agents \
             each; or `--segment i/{n}` on {n} machines), or {raise}.",
            agents.div_ceil(n)
        ),
        None => format!(
            "No split fits: every process needs {per_process} descriptors besides its agents \
             (commanders, HTTP connections): {raise}, or lower `[http] max_in_flight`."
        ),
    };
    Err(format!(
        "this scenario needs {needed} file descriptors at its peak (+{FD_RESERVE} for the process \
         itself), but one process may open at most {hard} (hard RLIMIT_NOFILE). {split}"
    ))
}

/// The fewest processes (at least 2: one does not fit) that hold `agents`
/// agents between them when each may open `hard` descriptors and needs
/// `per_process` plus [`FD_RESERVE`] besides its share of the agents (the
/// first segments hold `ceil(agents / n)`). None when even one agent per
/// process does not fit.
pub fn processes_to_fit(per_process: u64, agents: u64, hard: u64) -> Option<u64> {
    let room = hard
        .checked_sub(FD_RESERVE)?
        .checked_sub(per_process)
        .filter(|&room| room > 0)?;
    Some(agents.div_ceil(room).max(2))
}

/// Ephemeral ports per source address towards one destination, from
/// `/proc/sys/net/ipv4/ip_local_port_range`; `None` where it cannot be read.
pub fn ports_per_source() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").ok()?;
    parse_port_range(&text)
}

fn parse_port_range(text: &str) -> Option<u64> {
    let mut it = text.split_whitespace().map(str::parse::<u64>);
    let (low, high) = (it.next()?.ok()?, it.next()?.ok()?);
    (low <= high).then(|| high - low + 1)
}

/// Source addresses needed to hold `connections` to one destination: the
/// count over [`ports_per_source`] (Linux's default range when unreadable),
/// with a 10% margin, rounded up. Zero connections need none.
pub fn sources_needed(connections: u64) -> u64 {
    sources_needed_for(
        connections,
        ports_per_source().unwrap_or(DEFAULT_PORTS_PER_SOURCE),
    )
}

/// [`sources_needed`] for a given number of ports per source.
pub fn sources_needed_for(connections: u64, ports: u64) -> u64 {
    let with_margin = u128::from(connections) * 11;
    let per_source = u128::from(ports.max(1)) * 10;
    u64::try_from(with_margin.div_ceil(per_source)).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::net::Ipv6Addr;
    use tokio::net::TcpListener;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_ranges_and_lists() {
        let s = SourceAddrs::parse("127.0.0.1-127.0.0.8").unwrap();
        assert_eq!(s.addrs(), SourceAddrs::loopback(8).addrs());
        assert_eq!(s.addrs()[7], v4("127.0.0.8"));

        let s: SourceAddrs = "127.0.0.1, 127.0.0.5-127.0.0.6 ::1 ,::2-::3"
            .parse()
            .unwrap();
        let want = ["127.0.0.1", "127.0.0.5", "127.0.0.6", "::1", "::2", "::3"].map(v4);
        assert_eq!(s.addrs(), want);

        // Ranges carry across octets.
        let s = SourceAddrs::parse("127.0.0.254-127.0.1.1").unwrap();
        assert_eq!(s.len(), 4);
        assert_eq!(s.addrs()[2], v4("127.0.1.0"));

        for empty in ["", "  ", ","] {
            let s = SourceAddrs::parse(empty).unwrap();
            assert!(s.is_empty());
            assert_eq!(s.next(), None);
        }
    }

    #[test]
    fn refuses_bad_lists() {
        for (input, reason) in [
            ("127.0.0.1,localhost", "\"localhost\" is not an IP address"),
            ("127.0.0.8-127.0.0.1", "start is after its end"),
            ("127.0.0.1-::1", "must not mix IPv4 and IPv6"),
            ("127.0.0.0-127.255.255.255", "more than 65536 addresses"),
            ("127.0.0.1-", "\"\" is not an IP address"),
        ] {
            let e = SourceAddrs::parse(input).err().unwrap();
            assert!(e.to_string().contains(reason), "{input}: {e}");
            assert_eq!(e.input, input);
        }
    }

    #[test]
    fn loopback_counts_from_one() {
        assert!(SourceAddrs::loopback(0).is_empty());
        let s = SourceAddrs::loopback(300);
        assert_eq!(s.addrs()[0], v4("127.0.0.1"));
        assert_eq!(s.addrs()[255], v4("127.0.1.0"));
        assert_eq!(s.addrs()[299], v4("127.0.1.44"));
        assert_eq!(
            SourceAddrs::loopback(u32::MAX).addrs().last(),
            Some(&v4("127.255.255.254"))
        );
    }

    #[test]
    fn next_is_round_robin_across_threads() {
        let s = SourceAddrs::loopback(3);
        let firsts: Vec<_> = (0..7).map(|_| s.next().unwrap()).collect();
        let want = [
            "127.0.0.1",
            "127.0.0.2",
            "127.0.0.3",
            "127.0.0.1",
            "127.0.0.2",
            "127.0.0.3",
            "127.0.0.1",
        ];
        assert_eq!(firsts, want.map(v4));

        let s = SourceAddrs::loopback(4);
        let counts = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| (0..1000).map(|_| s.next().unwrap()).collect::<Vec<_>>()))
                .collect();
            let mut counts = HashMap::new();
            for h in handles {
                for ip in h.join().unwrap() {
                    *counts.entry(ip).or_insert(0) += 1;
                }
            }
            counts
        });
        assert_eq!(counts.len(), 4);
        assert!(counts.values().all(|&n| n == 1000), "{counts:?}");
        // A clone has the same addresses and its own cursor.
        assert_eq!(s.clone().next(), Some(v4("127.0.0.1")));
    }

    #[tokio::test]
    async fn connects_from_the_given_source_address() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let remote = listener.local_addr().unwrap();
        for source in ["127.0.0.2", "127.0.0.3"].map(v4) {
            let stream = connect(remote, Some(source)).await.unwrap();
            let (_accepted, peer) = listener.accept().await.unwrap();
            assert_eq!(peer.ip(), source);
            assert_eq!(stream.local_addr().unwrap(), peer);
            assert!(stream.nodelay().unwrap());
        }
        // No source: the kernel picks (127.0.0.1 towards 127.0.0.1).
        let stream = connect(remote, None).await.unwrap();
        let (_accepted, peer) = listener.accept().await.unwrap();
        assert_eq!(peer.ip(), v4("127.0.0.1"));
        assert!(stream.nodelay().unwrap());
    }

    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn bind_leaves_the_port_to_connect() {
        let remote: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let socket = bound_socket(remote, v4("127.0.0.2")).unwrap();
        // With IP_BIND_ADDRESS_NO_PORT the bind takes no port yet.
        assert_eq!(socket.local_addr().unwrap(), "127.0.0.2:0".parse().unwrap());
        // IPv6 sockets honour the SOL_IP option too.
        ipv6_loopback().await;
        let remote: SocketAddr = "[::1]:9".parse().unwrap();
        let socket = bound_socket(remote, v4("::1")).unwrap();
        assert_eq!(socket.local_addr().unwrap(), "[::1]:0".parse().unwrap());
    }

    /// A listener on [::1]; panics, saying why, when there is none: the
    /// IPv6 half of these tests is not skipped silently (CI has [::1]).
    async fn ipv6_loopback() -> TcpListener {
        TcpListener::bind("[::1]:0").await.unwrap_or_else(|e| {
            panic!(
                "cannot bind [::1]:0 ({e}): these tests need the IPv6 loopback \
                 (enable IPv6 on lo, e.g. sysctl net.ipv6.conf.lo.disable_ipv6=0)"
            )
        })
    }

    #[tokio::test]
    async fn connects_over_ipv6() {
        let listener = ipv6_loopback().await;
        let remote = listener.local_addr().unwrap();
        let _stream = connect(remote, Some(IpAddr::V6(Ipv6Addr::LOCALHOST)))
            .await
            .unwrap();
        let (_accepted, peer) = listener.accept().await.unwrap();
        assert_eq!(peer.ip(), IpAddr::V6(Ipv6Addr::LOCALHOST));
    }

    #[tokio::test]
    async fn refuses_a_source_of_the_other_family() {
        let remote: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let e = connect(remote, Some(v4("::1"))).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("not the same IP family"), "{e}");
    }

    /// 2,000 connections to one listener over 4 source addresses: the
    /// round-robin gives each exactly a quarter. Each costs two descriptors
    /// (client and server), so the count shrinks where the limit is low.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn spreads_connections_evenly_over_sources() {
        let (soft, _) = raise_nofile_limit().unwrap();
        let per_source = 500.min(soft.saturating_sub(512) / 8) as usize;
        assert!(
            per_source >= 10,
            "RLIMIT_NOFILE {soft} is too low for this test"
        );
        let sources = SourceAddrs::parse("127.0.0.21-127.0.0.24").unwrap();
        let total = per_source * sources.len();

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let remote = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let mut accepted = Vec::with_capacity(total);
            let mut counts = HashMap::<IpAddr, usize>::new();
            while accepted.len() < total {
                let (stream, peer) = listener.accept().await.unwrap();
                *counts.entry(peer.ip()).or_default() += 1;
                accepted.push(stream);
            }
            (counts, accepted)
        });

        // Concurrent batches of 100 keep the accept queue short.
        let mut clients = Vec::with_capacity(total);
        while clients.len() < total {
            let mut batch = tokio::task::JoinSet::new();
            for _ in 0..100.min(total - clients.len()) {
                let source = sources.next();
                batch.spawn(async move { (source, connect(remote, source).await.unwrap()) });
            }
            while let Some(joined) = batch.join_next().await {
                let (source, stream) = joined.unwrap();
                assert_eq!(Some(stream.local_addr().unwrap().ip()), source);
                clients.push(stream);
            }
        }
        let (counts, accepted) = tokio::time::timeout(std::time::Duration::from_secs(30), server)
            .await
            .expect("server accepted every connection")
            .unwrap();

        assert_eq!(clients.len(), total);
        assert_eq!(accepted.len(), total);
        assert_eq!(counts.len(), 4, "{counts:?}");
        for ip in sources.addrs() {
            assert_eq!(counts.get(ip), Some(&per_source), "{counts:?}");
        }
        drop(accepted);
        drop(clients);
    }

    #[test]
    fn raising_the_limit_makes_soft_equal_hard() {
        let (soft, hard) = raise_nofile_limit().unwrap();
        assert_eq!(soft, hard);
        assert_eq!(nofile_limit().unwrap(), (soft, hard));
        // Idempotent.
        assert_eq!(raise_nofile_limit().unwrap(), (soft, hard));
    }

    fn need(needed: u64) -> FdNeed {
        FdNeed {
            needed,
            per_process: 16,
            agents: needed.saturating_sub(16),
        }
    }

    #[test]
    fn fd_budget_refuses_more_than_the_hard_limit() {
        let (_, hard) = nofile_limit().unwrap();
        assert_eq!(check_fd_budget(need(10)), Ok(()));
        let needed = hard.saturating_mul(10);
        let e = check_fd_budget(need(needed)).unwrap_err();
        assert!(
            e.contains(&format!("needs {needed} file descriptors")),
            "{e}"
        );
        assert!(e.contains(&format!("at most {hard}")), "{e}");
        assert!(e.contains("--processes"), "{e}");
        assert!(e.contains("raise the hard limit"), "{e}");
        // Right at the edge: the reserve counts.
        let edge = hard.saturating_sub(FD_RESERVE);
        assert_eq!(check_fd_budget(need(edge)), Ok(()));
        assert!(check_fd_budget(need(edge + 1)).is_err());
    }

    #[test]
    fn fd_budget_suggests_the_processes_that_fit() {
        // 50,000 agents, 1 commander + 16 of margin per process, a hard
        // limit of 20,000: 20,000 − 64 − 17 = 19,919 agents per process,
        // so 3 (16,667 each); 2 would need 25,000 each.
        assert_eq!(processes_to_fit(17, 50_000, 20_000), Some(3));
        let e = fd_budget(
            FdNeed {
                needed: 50_017,
                per_process: 17,
                agents: 50_000,
            },
            20_000,
        )
        .unwrap_err();
        assert!(e.contains("needs 50017 file descriptors"), "{e}");
        assert!(e.contains("at most 20000"), "{e}");
        assert!(
            e.contains("3 or more processes (`--processes 3`: about 16667 agents each"),
            "{e}"
        );
        // Exactly at the edge: 2 × 19,919 fit in 2, one more needs 3.
        assert_eq!(processes_to_fit(17, 2 * 19_919, 20_000), Some(2));
        assert_eq!(processes_to_fit(17, 2 * 19_919 + 1, 20_000), Some(3));
        // One process's worth (refused only for the in-process target's
        // second descriptor per agent): at least 2.
        assert_eq!(processes_to_fit(17, 15_000, 20_000), Some(2));
        // 100,000 agents with 1,000 HTTP connections per process: 18,919 each.
        assert_eq!(processes_to_fit(1_017, 100_000, 20_000), Some(6));
        // Nothing left for agents.
        assert_eq!(processes_to_fit(19_936, 10, 20_000), None);
        assert_eq!(processes_to_fit(0, 10, 10), None);
        let e = fd_budget(
            FdNeed {
                needed: 30_000,
                per_process: 25_000,
                agents: 5_000,
            },
            20_000,
        )
        .unwrap_err();
        assert!(
            e.contains("No split fits") && e.contains("max_in_flight"),
            "{e}"
        );
        // A segment's own share that fits passes.
        assert_eq!(
            fd_budget(
                FdNeed {
                    needed: 16_684,
                    per_process: 17,
                    agents: 50_000
                },
                20_000
            ),
            Ok(())
        );
    }

    #[test]
    fn port_range_arithmetic() {
        assert_eq!(parse_port_range("32768\t60999\n"), Some(28232));
        assert_eq!(parse_port_range("1024 65535"), Some(64512));
        assert_eq!(parse_port_range("60999 32768"), None);
        assert_eq!(parse_port_range("garbage"), None);
        assert_eq!(DEFAULT_PORTS_PER_SOURCE, 28232);
        #[cfg(target_os = "linux")]
        assert!(ports_per_source().is_some_and(|n| n > 0));

        assert_eq!(sources_needed_for(0, 28232), 0);
        assert_eq!(sources_needed_for(1, 28232), 1);
        // 25,665 · 1.1 = 28,231.5 → 1; one more tips it over.
        assert_eq!(sources_needed_for(25_665, 28232), 1);
        assert_eq!(sources_needed_for(25_666, 28232), 2);
        assert_eq!(sources_needed_for(100_000, 28232), 4);
        assert_eq!(sources_needed_for(100, 0), 110);
        assert_eq!(sources_needed_for(u64::MAX, 1), u64::MAX);
        assert!(sources_needed(50_000) >= 2);
    }
}
