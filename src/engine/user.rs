//! A VU walking a journey: for each step render the request from its
//! compiled templates, send it on the VU's own connection, read the
//! response, judge it (status, checks), extract values for later steps and
//! record the outcome — one shard lock per request, no message.
//!
//! A step with `until` polls: the same request again every `every` until
//! the condition holds (`http.wait`: first send → that answer, and
//! `http.wait.polls`) or `within` runs out (error `wait_timeout`, counted
//! on the last poll); every poll is a request recorded as usual. A wait
//! still open when the run ends (stopped at its end, or its poll cancelled
//! after the drain) records how long it had waited in `http.wait.open`:
//! `http.wait` has only the waits that ended, so an overloaded run would
//! otherwise look better than it was. A journey whose steps all succeeded
//! records `http.journey`.
//!
//! A failed step ends the journey: later steps usually depend on it (a
//! token, an id), and sending them anyway would count errors the target did
//! not cause.

use super::driver::{mix_seed, Arrival};
use super::Shared;
use crate::error::ErrorKind;
use crate::protocol::h1::is_redirect;
use crate::protocol::http::{Conn, HttpError, InResponse, OutRequest};
use crate::protocol::redirect;
use crate::scenario::check::{Check, ResponseView};
use crate::scenario::feeder::{FeedMode, Feeder};
use crate::scenario::template::RenderCtx;
use crate::scenario::{Body, Population, Step};
use crate::units::DurRange;
use http::header::LOCATION;
use http::HeaderValue;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;

/// One virtual user: its connections and reusable buffers.
pub struct Vu {
    pub id: u64,
    iteration: u64,
    /// One per endpoint (index as in `Shared::endpoints`).
    conns: Vec<Conn>,
    vars: Vec<Option<String>>,
    rows: Vec<usize>,
    /// Scratch for rendering query values and header values.
    text: String,
    /// The request being built, reused from one step to the next.
    request: OutRequest,
    /// The request sent after a redirect (a polling step resends
    /// `request` itself, so it is not rewritten).
    redirected: OutRequest,
}

/// The latency sample of one request. Built only from an intended start and
/// an actual send, so coordinated-omission correction cannot be forgotten:
/// `latency` counts from when the request was due, `service` from when it
/// was sent.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub intended: Instant,
    pub sent: Instant,
    pub done: Instant,
}

impl Timing {
    pub fn latency(&self) -> Duration {
        self.done.saturating_duration_since(self.intended)
    }
    pub fn service(&self) -> Duration {
        self.done.saturating_duration_since(self.sent)
    }
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u64::MAX as u128) as u64
}

/// Count an arrival that never started (queue full or waited too long).
pub fn record_dropped(shared: &Shared, arrival: &Arrival) {
    if let Some(first) = shared.ids.steps[arrival.population].first() {
        let errors = first.errors[ErrorKind::Dropped.index()];
        let requests = first.requests;
        shared.metrics.with(|s| {
            s.add(requests, arrival.phase, 1);
            s.add(errors, arrival.phase, 1);
        });
    }
}

/// Counts a request as `cancelled` if its future is dropped before it
/// finished (the run was interrupted and the grace period ran out).
struct InFlight<'a> {
    shared: &'a Shared,
    population: usize,
    step: usize,
    phase: usize,
    armed: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.armed {
            let ids = &self.shared.ids.steps[self.population][self.step];
            let (requests, errors) = (ids.requests, ids.errors[ErrorKind::Cancelled.index()]);
            self.shared.metrics.with(|s| {
                s.add(requests, self.phase, 1);
                s.add(errors, self.phase, 1);
            });
        }
    }
}

/// A wait that has not ended: dropped armed (the run ended meanwhile, or
/// its poll was cancelled), it records how long it had waited in
/// `http.wait.open`.
struct OpenWait<'a> {
    shared: &'a Shared,
    id: crate::metrics::HistId,
    phase: usize,
    first: Instant,
    armed: bool,
}

impl Drop for OpenWait<'_> {
    fn drop(&mut self) {
        if self.armed {
            let waited = micros(self.first.elapsed());
            self.shared
                .metrics
                .with(|s| s.record(self.id, self.phase, waited));
        }
    }
}

/// Decrements `in_flight` however the journey ends.
struct JourneyGuard<'a>(&'a super::Live);

impl Drop for JourneyGuard<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The feeder row a journey gets. `sequential` follows the whole run, so a
/// run split into segments hands out the rows a whole run would: an
/// open-model arrival takes row `seq mod len` (its global number), a
/// closed-model VU the segment's next row of its stripe (`c·n + i`, so
/// segments do not share rows). `random` draws from the arrival's rng and
/// `unique` follows the VU's global id: neither depends on the segment.
fn feeder_row(
    shared: &Shared,
    feeder: &Feeder,
    vu_id: u64,
    arrival: &Arrival,
    closed: bool,
    rng: &mut SmallRng,
) -> usize {
    let len = feeder.len() as u64;
    match feeder.mode() {
        FeedMode::Sequential if len > 0 && !closed => (arrival.seq % len) as usize,
        FeedMode::Sequential if len > 0 => {
            let cursor = feeder.pick(0, rng) as u64;
            (shared.plan.segment.global(cursor) % len) as usize
        }
        _ => feeder.pick(vu_id, rng),
    }
}

fn sample(range: DurRange, rng: &mut SmallRng) -> Duration {
    if range.max <= range.min {
        range.min
    } else {
        rng.gen_range(range.min..=range.max)
    }
}

/// Percent-encode a query component (RFC 3986 unreserved kept).
fn encode_component(text: &str, out: &mut String) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
}

impl Vu {
    pub fn new(id: u64, shared: &Shared) -> Vu {
        Vu {
            id,
            iteration: 0,
            conns: (0..shared.endpoints.len())
                .map(|_| Conn::default())
                .collect(),
            vars: Vec::new(),
            rows: vec![0; shared.scenario.feeders.len()],
            text: String::with_capacity(256),
            request: OutRequest::default(),
            redirected: OutRequest::default(),
        }
    }

    /// Walk one journey. `closed`: a closed-model VU's loop, paced with the
    /// think time after the last step too.
    pub async fn journey(&mut self, shared: &Shared, arrival: Arrival, closed: bool) {
        let live = &shared.live;
        live.in_flight.fetch_add(1, Ordering::Relaxed);
        let _guard = JourneyGuard(live);
        let population: &Population = &shared.scenario.populations[arrival.population];
        let mut rng = SmallRng::seed_from_u64(mix_seed(shared.scenario.seed, arrival.seq));
        self.vars.clear();
        self.vars.resize(population.vars, None);
        for &f in &population.feeders_used {
            let feeder = &shared.scenario.feeders[f];
            self.rows[f] = feeder_row(shared, feeder, self.id, &arrival, closed, &mut rng);
        }
        let mut intended = arrival.intended;
        let last = population.steps.len().saturating_sub(1);
        for (index, step) in population.steps.iter().enumerate() {
            let ok = self
                .step(shared, &arrival, index, step, intended, &mut rng)
                .await;
            if !ok {
                break;
            }
            if let Some(think) = step.think {
                if index < last || closed {
                    let pause = sample(think, &mut rng);
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = live.ended() => {}
                    }
                }
            }
            // The next step is due now: its latency counts from here.
            intended = Instant::now();
        }
        if !shared.scenario.http.keep_alive {
            for conn in &mut self.conns {
                conn.close();
            }
        }
        self.iteration += 1;
    }

    /// Render `step` into the VU's reusable request.
    fn render_request(
        &mut self,
        shared: &Shared,
        step: &Step,
        rng: &mut SmallRng,
    ) -> Result<(), String> {
        let feeders = &shared.scenario.feeders;
        let mut ctx = RenderCtx {
            vu_id: self.id,
            iteration: self.iteration,
            rng,
            vars: &self.vars,
            feeders,
            rows: &self.rows,
        };
        let request = &mut self.request;
        request.method.clone_from(&step.method);
        let path = &mut request.path;
        path.clear();
        step.path.render(&mut ctx, path);
        if !step.query.is_empty() {
            let text = &mut self.text;
            for (name, template) in &step.query {
                path.push(if path.contains('?') { '&' } else { '?' });
                encode_component(name, path);
                path.push('=');
                text.clear();
                template.render(&mut ctx, text);
                encode_component(text, path);
            }
        }
        if !path.starts_with('/') || path.bytes().any(|b| !(0x21..=0x7e).contains(&b)) {
            return Err(format!("URL path `{path}` is not a valid origin-form path"));
        }
        request.headers.clear();
        for (name, template) in &step.headers {
            let value = match template.as_static() {
                Some(s) => HeaderValue::from_str(s),
                None => {
                    self.text.clear();
                    template.render(&mut ctx, &mut self.text);
                    HeaderValue::from_str(&self.text)
                }
            }
            .map_err(|e| format!("header {name}: {e}"))?;
            request.headers.append(name.clone(), value);
        }
        request.body.clear();
        match &step.body {
            Body::None => {}
            Body::Text(t) => t.render(&mut ctx, &mut request.body),
            Body::Json(j) => j.render(&mut ctx, &mut request.body),
        }
        Ok(())
    }

    /// Send one step (polling it when it has `until`); true when it
    /// succeeded.
    async fn step(
        &mut self,
        shared: &Shared,
        arrival: &Arrival,
        index: usize,
        step: &Step,
        intended: Instant,
        rng: &mut SmallRng,
    ) -> bool {
        let ids = &shared.ids.steps[arrival.population][index];
        let phase = arrival.phase;
        match self.render_request(shared, step, rng) {
            Ok(()) => {}
            Err(detail) => {
                let detail = crate::redact::text(&detail);
                tracing::debug!(step = %step.name, %detail, "request could not be built");
                let (requests, errors) = (ids.requests, ids.errors[ErrorKind::Protocol.index()]);
                shared.metrics.with(|s| {
                    s.add(requests, phase, 1);
                    s.add(errors, phase, 1);
                });
                return false;
            }
        };
        // A journey whose last step succeeds is complete: `http.journey`
        // from its intended start to the end of that step's answer (the
        // think times between steps in), recorded under the step's lock.
        let last = (shared.scenario.populations[arrival.population].steps.len()).saturating_sub(1);
        let journey = |sent: &Sent| {
            let took = sent.timing.done.saturating_duration_since(arrival.intended);
            (index == last).then(|| (shared.ids.journeys[arrival.population], micros(took)))
        };
        let Some(wait) = &step.wait else {
            let sent = self
                .send(shared, arrival, index, step, intended, None)
                .await;
            let done = sent.error.is_none().then(|| journey(&sent)).flatten();
            record(shared, ids, phase, &sent, sent.error, done.as_slice());
            return sent.error.is_none();
        };
        // Polling: the same request again `every` after the previous send
        // (at once when its answer took longer), each poll due at its own
        // time (its latency counts from there), until `until` holds or the
        // next poll would be past `within` from the first send.
        let Some(wait_ids) = ids.wait else {
            unreachable!("a polling step has its wait series registered")
        };
        let mut due = intended;
        // Open from the first send until it ends either way; dropped open
        // (the run's end) it records `http.wait.open`.
        let mut open = OpenWait {
            shared,
            id: wait_ids.open,
            phase,
            first: Instant::now(),
            armed: true,
        };
        let mut polls = 0u64;
        loop {
            let sent = self
                .send(shared, arrival, index, step, due, Some(&wait.until))
                .await;
            polls += 1;
            if polls == 1 {
                open.first = sent.timing.sent;
            }
            let first = open.first;
            if sent.error.is_some() {
                open.armed = false;
                record(shared, ids, phase, &sent, sent.error, &[]);
                return false;
            }
            if sent.met {
                open.armed = false;
                let waited = micros(sent.timing.done.saturating_duration_since(first));
                let whole = journey(&sent);
                let done = [
                    (wait_ids.wait, waited),
                    (wait_ids.polls, polls),
                    whole.unwrap_or((wait_ids.wait, 0)),
                ];
                let n = if whole.is_some() { 3 } else { 2 };
                record(shared, ids, phase, &sent, None, &done[..n]);
                return true;
            }
            let next = sent.timing.sent + wait.every;
            if next > first + wait.within {
                open.armed = false;
                tracing::debug!(step = %step.name, polls, "condition not met within the limit");
                let polled = [(wait_ids.polls, polls)];
                record(
                    shared,
                    ids,
                    phase,
                    &sent,
                    Some(ErrorKind::WaitTimeout),
                    &polled,
                );
                return false;
            }
            record(shared, ids, phase, &sent, None, &[]);
            // The run's end (or Ctrl-C) stops a wait at once: still open.
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                _ = shared.live.ended() => return false,
            }
            due = next;
        }
    }

    /// Send the rendered request once and judge the answer: status and
    /// `check`, then `until` when polling (values are extracted from an
    /// answer that passes its checks and, when polling, meets `until`).
    /// Records nothing: the caller does, once it knows the outcome.
    async fn send(
        &mut self,
        shared: &Shared,
        arrival: &Arrival,
        index: usize,
        step: &Step,
        intended: Instant,
        until: Option<&Check>,
    ) -> Sent {
        let endpoint_index = shared.endpoint(step.origin);
        let mut guard = InFlight {
            shared,
            population: arrival.population,
            step: index,
            phase: arrival.phase,
            armed: true,
        };
        let sent = Instant::now();
        // The timeout covers the whole answer: every redirect and body.
        let exchange = Exchange {
            shared,
            conns: &mut self.conns,
            redirected: &mut self.redirected,
        };
        let result = tokio::time::timeout(
            step.timeout,
            exchange.run(&self.request, endpoint_index, step),
        )
        .await;
        let timing = Timing {
            intended,
            sent,
            done: Instant::now(),
        };
        guard.armed = false;

        let mut met = false;
        let (error, record_latency) = match result {
            Err(_) => {
                // The connection (one of them, after redirects) is in an
                // unknown state: start afresh.
                for conn in &mut self.conns {
                    conn.close();
                }
                (Some(ErrorKind::Timeout), true)
            }
            Ok(Err(e)) => {
                let kind = e.kind();
                tracing::trace!(
                    step = %step.name,
                    error = %crate::redact::text(&e.to_string()),
                    "request failed"
                );
                (Some(kind), !super::driver::is_connect_failure(kind))
            }
            Ok(Ok(response)) => {
                let status = response.status;
                let error = if !step.check.status_allowed(status) {
                    Some(match status {
                        400..=499 => ErrorKind::Http4xx,
                        500..=599 => ErrorKind::Http5xx,
                        _ => ErrorKind::Check,
                    })
                } else {
                    let view = ResponseView::new(status, &response.headers, &response.body);
                    match step.check.evaluate(&view, timing.latency()) {
                        Ok(()) => {
                            met = until.is_none_or(|until| {
                                until.status_allowed(status)
                                    && until.evaluate(&view, timing.latency()).is_ok()
                            });
                            if met {
                                for (slot, extractor) in &step.extract {
                                    self.vars[*slot] = extractor.extract(&view);
                                }
                            }
                            None
                        }
                        Err(detail) => {
                            tracing::debug!(step = %step.name, %detail, "check failed");
                            Some(ErrorKind::Check)
                        }
                    }
                };
                (error, true)
            }
        };
        Sent {
            timing,
            error,
            record_latency,
            met,
        }
    }
}

/// Why an exchange failed: below HTTP, or a redirect not followed.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("{0}")]
    Http(#[from] HttpError),
    /// To a host the scenario does not declare: nothing is sent there.
    #[error("redirect not followed: {0}")]
    Redirect(String),
    /// A redirect whose Location is not an http(s) URL: `protocol`.
    #[error("redirect not followed: {0}")]
    BadLocation(String),
}

impl Failure {
    fn kind(&self) -> ErrorKind {
        match self {
            Failure::Http(e) => e.kind(),
            Failure::Redirect(_) => ErrorKind::RedirectRefused,
            Failure::BadLocation(_) => ErrorKind::Protocol,
        }
    }
}

/// One request and the redirects it is sent on to, on the VU's
/// connections.
struct Exchange<'a> {
    shared: &'a Shared,
    conns: &'a mut [Conn],
    redirected: &'a mut OutRequest,
}

impl Exchange<'_> {
    /// Send `request` to endpoint `at`, then follow up to the step's
    /// `max_redirects` redirects among the declared origins. Past the limit
    /// the last 3xx is the answer (judged by the step's checks, as k6 does).
    async fn run(
        self,
        request: &OutRequest,
        mut at: usize,
        step: &Step,
    ) -> Result<InResponse, Failure> {
        let Exchange {
            shared,
            conns,
            redirected,
        } = self;
        let (client, endpoints) = (&shared.client, &shared.endpoints);
        let keep = step.needs_body;
        let mut response = conns[at]
            .send(client, &endpoints[at], request, keep)
            .await?;
        let mut hops = 0;
        while is_redirect(response.status) {
            let Some(location) = response.headers.get(LOCATION) else {
                break;
            };
            if hops == step.max_redirects {
                if hops > 0 {
                    tracing::debug!(step = %step.name, hops, "stopped after max_redirects");
                }
                break;
            }
            let current = if hops == 0 { request } else { &*redirected };
            let from = &endpoints[at].origin;
            let to = redirect::resolve(from, &current.path, location.as_bytes())
                .map_err(Failure::BadLocation)?;
            let Some(next) = endpoints
                .iter()
                .position(|e| redirect::same_origin(&e.origin, &to.origin))
            else {
                return Err(Failure::Redirect(format!(
                    "{to} is on a host the scenario does not declare \
                     (add its origin to [target] hosts to follow it)"
                )));
            };
            if hops == 0 {
                redirected.clone_from(request);
            }
            let cross = !redirect::same_origin(from, &to.origin);
            redirect::follow(redirected, response.status, &to, cross);
            hops += 1;
            at = next;
            response = conns[at]
                .send(client, &endpoints[at], redirected, keep)
                .await?;
        }
        Ok(response)
    }
}

/// One request sent and judged.
struct Sent {
    timing: Timing,
    error: Option<ErrorKind>,
    /// False for a connect failure (no request reached the target).
    record_latency: bool,
    /// The answer passed its checks and met `until` (always, without one).
    met: bool,
}

/// Record one request of step `ids`: latency, service time, count and the
/// error it is counted under (`error`, which a wait may set), and with them,
/// under the same lock, `also` (a wait's or a journey's histogram values).
fn record(
    shared: &Shared,
    ids: &super::ids::StepIds,
    phase: usize,
    sent: &Sent,
    error: Option<ErrorKind>,
    also: &[(crate::metrics::HistId, u64)],
) {
    let (latency_id, service_id, requests) = (ids.latency, ids.service, ids.requests);
    let error_id = error.map(|k| ids.errors[k.index()]);
    let timing = sent.timing;
    let record_latency = sent.record_latency;
    shared.metrics.with(|s| {
        if record_latency {
            s.record(latency_id, phase, micros(timing.latency()));
            s.record(service_id, phase, micros(timing.service()));
        }
        s.add(requests, phase, 1);
        if let Some(id) = error_id {
            s.add(id, phase, 1);
        }
        for &(id, value) in also {
            s.record(id, phase, value);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_components_are_percent_encoded() {
        let mut out = String::new();
        encode_component("a b&c=d/é~", &mut out);
        assert_eq!(out, "a%20b%26c%3Dd%2F%C3%A9~");
    }

    // That the engine sets `Timing::intended` (latency from the due time,
    // queue wait included; a later step from its own due time) is shown
    // through the engine under a paused clock in tests/it/engine.rs:
    // `latency_counts_from_the_intended_start_queue_wait_included` and
    // `later_journey_steps_count_from_their_own_intended_start`.
}
