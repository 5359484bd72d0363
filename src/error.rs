//! Errors that end a command (mapped to the documented exit codes) and the
//! kinds under which failed requests are counted.

use std::fmt;

/// Exit codes are part of the interface (README: "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: every SLO held.
    Passed = 0,
    /// 1: an SLO failed.
    SloFailed = 1,
    /// 2: bad input (scenario, flags).
    BadInput = 2,
    /// 3: the run could not be carried out (target unreachable at start, interrupted).
    NotCarriedOut = 3,
}

impl ExitStatus {
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// A command that could not complete, with its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// Bad input: the message is complete (diagnostics included).
    #[error("{0}")]
    BadInput(String),
    /// A target could not be reached when the run started.
    #[error("target {target} is unreachable: {detail}")]
    Unreachable { target: String, detail: String },
    /// Anything else that stopped the run from being carried out.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl CommandError {
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            CommandError::BadInput(_) => ExitStatus::BadInput,
            CommandError::Unreachable { .. } | CommandError::Failed(_) => ExitStatus::NotCarriedOut,
        }
    }
}

/// Why a request (or an arrival) failed. Counted per step in
/// `http.errors{kind=…}`; reports show "1,203 × connect_refused", not one
/// line per failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// TCP connect refused (nothing listening).
    ConnectRefused,
    /// Other connect failures (unreachable, address in use, DNS).
    Connect,
    /// Connection reset or closed mid-request.
    Reset,
    /// The request (or connect) exceeded its timeout.
    Timeout,
    /// TLS handshake or certificate failure.
    Tls,
    /// A 4xx status the step did not expect.
    Http4xx,
    /// A 5xx status the step did not expect.
    Http5xx,
    /// A check failed (unexpected 2xx/3xx status, body, JSON, max latency).
    Check,
    /// The arrival never started: max_in_flight reached and the queue full,
    /// or it waited longer than queue_timeout.
    Dropped,
    /// A malformed response or other protocol error.
    Protocol,
    /// In flight when the run was interrupted and the grace period ran out.
    Cancelled,
    /// A step polling `until` a condition held did not see it within
    /// `within` (counted on its last poll).
    WaitTimeout,
    /// A response body longer than `[http] max_body`: the rest is not read
    /// and the connection is closed.
    BodyTooLarge,
    /// A redirect to a host the scenario does not declare: not followed,
    /// nothing sent there.
    RedirectRefused,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 14] = [
        ErrorKind::ConnectRefused,
        ErrorKind::Connect,
        ErrorKind::Reset,
        ErrorKind::Timeout,
        ErrorKind::Tls,
        ErrorKind::Http4xx,
        ErrorKind::Http5xx,
        ErrorKind::Check,
        ErrorKind::Dropped,
        ErrorKind::Protocol,
        ErrorKind::Cancelled,
        ErrorKind::WaitTimeout,
        ErrorKind::BodyTooLarge,
        ErrorKind::RedirectRefused,
    ];

    /// The name used in metrics, SLO tags and reports.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::ConnectRefused => "connect_refused",
            ErrorKind::Connect => "connect",
            ErrorKind::Reset => "reset",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Tls => "tls",
            ErrorKind::Http4xx => "http_4xx",
            ErrorKind::Http5xx => "http_5xx",
            ErrorKind::Check => "check",
            ErrorKind::Dropped => "dropped",
            ErrorKind::Protocol => "protocol",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::WaitTimeout => "wait_timeout",
            ErrorKind::BodyTooLarge => "body_too_large",
            ErrorKind::RedirectRefused => "redirect_refused",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
