//! Fault actions: a phase's `actions = [...]`, each run once at an offset
//! into its phase — a command (`exec`, argv list, only with
//! `stampede run --allow-exec`) or one HTTP request to an admin endpoint
//! of a host the scenario declares (`get` / `post` / `put` / `delete`).
//!
//! This module holds the model as written ([`ActionSpec`]) and the runtime
//! form ([`Action`]); `compile::actions` turns one into the other with
//! located diagnostics, and the engine (`engine::actions`) plays them.
//!
//! Templates in an action may use `env.NAME` only (resolved when the
//! scenario loads): an action runs once, outside any VU or agent.

use crate::protocol::Origin;
use crate::units::{Dur, PositiveDur};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;
use toml::Spanned;

/// An action's default timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// What a failed action does to the run.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum OnFail {
    /// Counted (`actions.errors`, error kind `action`); the run goes on.
    #[default]
    Continue,
    /// The run stops (exit 3, naming the action).
    Abort,
}

/// One action as written: exactly one of `exec`, `get`, `post`, `put`,
/// `delete`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = super::schema::one_action_kind)]
pub struct ActionSpec {
    /// Offset into the phase.
    pub at: Dur,
    /// Default `action-N` (N its number in the scenario, from 1).
    #[schemars(with = "Option<String>")]
    pub name: Option<Spanned<String>>,
    /// A command and its arguments (no shell).
    #[schemars(with = "Option<Vec<String>>")]
    pub exec: Option<Spanned<Vec<Spanned<String>>>>,
    /// GET this URL: a path (on the api, or the hub when the scenario has no
    /// api) or an absolute URL of a declared host.
    #[schemars(with = "Option<String>")]
    pub get: Option<Spanned<String>>,
    /// POST this URL (see `get`).
    #[schemars(with = "Option<String>")]
    pub post: Option<Spanned<String>>,
    /// PUT this URL (see `get`).
    #[schemars(with = "Option<String>")]
    pub put: Option<Spanned<String>>,
    /// DELETE this URL (see `get`).
    #[schemars(with = "Option<String>")]
    pub delete: Option<Spanned<String>>,
    /// Request headers.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub headers: BTreeMap<String, Spanned<String>>,
    /// A text body.
    #[schemars(with = "Option<String>")]
    pub body: Option<Spanned<String>>,
    /// A JSON body, written as TOML.
    #[schemars(with = "Option<serde_json::Value>")]
    pub json: Option<Spanned<toml::Value>>,
    /// Default 30 s; a command still running then is killed.
    #[schemars(extend("default" = Dur(DEFAULT_TIMEOUT).to_string()))]
    pub timeout: Option<PositiveDur>,
    /// What a failed action does: `continue` (counted) or `abort` (the run
    /// stops).
    #[serde(default)]
    pub fail: OnFail,
    /// The exit status (exec, default 0) or HTTP status (default any 2xx)
    /// that means success.
    #[schemars(with = "Option<i64>")]
    pub expect: Option<Spanned<i64>>,
}

/// Where an HTTP action goes.
#[derive(Debug, Clone, PartialEq)]
pub enum ActionOrigin {
    /// `[target] api` (a relative URL; also the built-in target).
    Api,
    /// The hub (a relative URL when the scenario has no api).
    Hub,
    /// A declared origin (`[target] api`, `hub`, `hub_admin` or `hosts`).
    Url(Origin),
}

/// What an action does.
#[derive(Debug, Clone)]
pub enum ActionKind {
    /// Run this argv (env templates resolved).
    Exec(Vec<String>),
    /// Send one request.
    Http {
        method: http::Method,
        origin: ActionOrigin,
        /// Origin-form path and query.
        path: String,
        headers: Vec<(http::HeaderName, http::HeaderValue)>,
        body: String,
    },
}

/// One compiled action.
#[derive(Debug, Clone)]
pub struct Action {
    pub name: String,
    /// Index of its phase.
    pub phase: usize,
    /// Offset into its phase.
    pub at: Duration,
    pub kind: ActionKind,
    pub timeout: Duration,
    pub fail: OnFail,
    /// The exit or HTTP status that means success (None: 0 for exec, any
    /// 2xx for HTTP).
    pub expect: Option<i64>,
    /// `file:line:col` of the action in the scenario (for messages).
    pub location: String,
}

impl Action {
    pub fn is_exec(&self) -> bool {
        matches!(self.kind, ActionKind::Exec(_))
    }

    /// Does an exit status (exec) or HTTP status mean success?
    pub fn succeeded(&self, status: i64) -> bool {
        match (self.expect, &self.kind) {
            (Some(want), _) => status == want,
            (None, ActionKind::Exec(_)) => status == 0,
            (None, ActionKind::Http { .. }) => (200..300).contains(&status),
        }
    }

    /// `kill-hub (exec, scenario.toml:12:5)`, for messages.
    pub fn describe(&self) -> String {
        let what = match self.kind {
            ActionKind::Exec(_) => "exec",
            ActionKind::Http { .. } => "http",
        };
        format!("`{}` ({what}, {})", self.name, self.location)
    }
}

/// The exec actions of a scenario that `--allow-exec` must allow: None
/// when there is none, else the message for the user (every action named
/// with its place in the file).
pub fn exec_refusal(actions: &[Action]) -> Option<String> {
    let exec: Vec<String> = actions
        .iter()
        .filter(|a| a.is_exec())
        .map(Action::describe)
        .collect();
    (!exec.is_empty()).then(|| {
        format!(
            "the scenario runs commands on this machine: action {}; pass --allow-exec to let {}",
            exec.join(", "),
            if exec.len() == 1 {
                "it run"
            } else {
                "them run"
            }
        )
    })
}
