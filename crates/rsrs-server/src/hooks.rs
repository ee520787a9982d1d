//! SRS's HTTP callbacks (`http_hooks`): a JSON `POST` per configured URL, in order.
//!
//! Deciding hooks (`on_connect`, `on_publish`, `on_play`) run before any media flows and fail
//! closed: a refusal, an error status, an unreadable answer, a timeout or an unreachable
//! service all keep the client out, and the first failure stops the list. Success is SRS's
//! rule: HTTP 200 or 201 with a body that is exactly `0` or a JSON object whose `code` is the
//! integer 0.
//!
//! Notifications (`on_close`, `on_unpublish`, `on_stop`, `on_dvr`, `on_hls`, `on_hls_notify`)
//! never hold media up: they run in the background, a bounded number at a time, each URL tried
//! up to [`NOTIFY_ATTEMPTS`] times; beyond [`MAX_PENDING_NOTICES`] waiting, new ones are dropped
//! and counted in the log.

use crate::hub::StreamKey;
use rsrs_config::HookEvent;
use serde_json::Value;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tracing::{info, warn};

/// How long a hook service may take to accept a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a whole hook call may take (SRS: 30 s).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// `on_hls_notify` GETs wait less (SRS: 10 s).
const NOTIFY_GET_TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per URL for a notification.
pub const NOTIFY_ATTEMPTS: u32 = 3;
/// Notifications in flight at once.
const NOTIFY_CONCURRENCY: usize = 64;
/// Notifications waiting beyond which new ones are dropped (a dead hook service must not grow
/// memory without bound).
pub const MAX_PENDING_NOTICES: usize = 4096;
/// Most of a hook's answer read and logged.
const MAX_ANSWER: usize = 64 * 1024;

/// Why a deciding hook kept a client out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HookRefusal {
    #[error("{event} hook {url} refused (request {request}): HTTP {status}, body `{body}`", event = event.name())]
    Refused { event: HookEvent, url: String, request: u64, status: u16, body: String },
    #[error("{event} hook {url} could not be asked (request {request}), so the client is refused: {error}", event = event.name())]
    Unreachable { event: HookEvent, url: String, request: u64, error: String },
}

/// What became of a hook call (the `outcome` label of `rsrs_hook_calls_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookOutcome {
    /// Answered with SRS's success.
    Accepted,
    /// A deciding hook said no (status or body).
    Refused,
    /// Could not be asked, or a notification failed every attempt.
    Failed,
    /// A notification dropped: too many were waiting.
    Dropped,
}

impl HookOutcome {
    pub const ALL: [HookOutcome; 4] =
        [HookOutcome::Accepted, HookOutcome::Refused, HookOutcome::Failed, HookOutcome::Dropped];

    pub fn as_str(self) -> &'static str {
        match self {
            HookOutcome::Accepted => "accepted",
            HookOutcome::Refused => "refused",
            HookOutcome::Failed => "failed",
            HookOutcome::Dropped => "dropped",
        }
    }
}

/// Hook calls by event and outcome, for the exporter.
#[derive(Debug, Default)]
pub struct HookCalls([[AtomicU64; 4]; HookEvent::ALL.len()]);

impl HookCalls {
    fn count(&self, event: HookEvent, outcome: HookOutcome) {
        if let Some(i) = HookEvent::ALL.iter().position(|e| *e == event) {
            self.0[i][outcome as usize].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// (event, outcome, calls) for every pair.
    pub fn all(&self) -> impl Iterator<Item = (HookEvent, HookOutcome, u64)> + '_ {
        HookEvent::ALL.into_iter().enumerate().flat_map(move |(i, e)| {
            HookOutcome::ALL.into_iter().map(move |o| (e, o, self.0[i][o as usize].load(Ordering::Relaxed)))
        })
    }
}

/// The hook caller of one server: an HTTP client (rustls for `https`) with its connection pool.
/// Clones share everything (a pending notice keeps one).
#[derive(Clone)]
pub struct Hooks {
    client: reqwest::Client,
    notices: Arc<Semaphore>,
    pending: Arc<AtomicUsize>,
    dropped: Arc<AtomicU64>,
    next_request: Arc<AtomicU64>,
    pub calls: Arc<HookCalls>,
    /// Woken when the last pending notification finishes (a quit waits for them).
    idle: Arc<tokio::sync::Notify>,
}

impl Default for Hooks {
    fn default() -> Self {
        Hooks::new()
    }
}

impl Hooks {
    pub fn new() -> Hooks {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(crate::version::signature())
            // A hook's answer is its own: following a redirect elsewhere could turn a refusal
            // into someone else's acceptance.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            // Only a broken build (no TLS backend) fails here, at start-up. Falling back to a
            // default client would follow redirects and wait for ever: fail loudly instead.
            .expect("the hooks' HTTP client must build (rustls with its bundled roots)");
        Hooks {
            client,
            notices: Arc::new(Semaphore::new(NOTIFY_CONCURRENCY)),
            pending: Arc::new(AtomicUsize::new(0)),
            dropped: Arc::new(AtomicU64::new(0)),
            next_request: Arc::new(AtomicU64::new(1)),
            calls: Arc::default(),
            idle: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Calls a deciding hook's URLs in order; every one must accept.
    pub async fn decide(&self, event: HookEvent, urls: &[String], body: &Value) -> Result<(), HookRefusal> {
        for url in urls {
            let request = self.next_request.fetch_add(1, Ordering::Relaxed);
            match call(&self.client, url, body, request).await {
                Ok(answer) => {
                    self.calls.count(event, HookOutcome::Accepted);
                    info!(hook = event.name(), url, request, "hook accepted: {answer}")
                }
                Err(CallError::Refused { status, body }) => {
                    self.calls.count(event, HookOutcome::Refused);
                    return Err(HookRefusal::Refused { event, url: url.clone(), request, status, body });
                }
                Err(CallError::Transport(error)) => {
                    self.calls.count(event, HookOutcome::Failed);
                    return Err(HookRefusal::Unreachable { event, url: url.clone(), request, error });
                }
            }
        }
        Ok(())
    }

    /// Sends a notification in the background (see the module docs).
    pub fn notify(&self, event: HookEvent, urls: Vec<String>, body: Value) {
        if urls.is_empty() {
            return;
        }
        if self.pending.fetch_add(1, Ordering::AcqRel) >= MAX_PENDING_NOTICES {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            self.calls.count(event, HookOutcome::Dropped);
            warn!(hook = event.name(), dropped = n, "hook notification dropped: {MAX_PENDING_NOTICES} already waiting");
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            return;
        };
        let (client, notices, pending, idle, calls) =
            (self.client.clone(), self.notices.clone(), self.pending.clone(), self.idle.clone(), self.calls.clone());
        let first = self.next_request.fetch_add(urls.len() as u64 * NOTIFY_ATTEMPTS as u64, Ordering::Relaxed);
        rt.spawn(async move {
            let _permit = notices.acquire().await;
            for (i, url) in urls.iter().enumerate() {
                for attempt in 0..NOTIFY_ATTEMPTS {
                    let request = first + (i as u64) * NOTIFY_ATTEMPTS as u64 + attempt as u64;
                    let outcome = if event == HookEvent::HlsNotify {
                        get(&client, url, request).await
                    } else {
                        call(&client, url, &body, request).await
                    };
                    match outcome {
                        Ok(_) => {
                            calls.count(event, HookOutcome::Accepted);
                            break;
                        }
                        Err(e) if attempt + 1 == NOTIFY_ATTEMPTS => {
                            calls.count(event, HookOutcome::Failed);
                            warn!(
                                hook = event.name(),
                                url, request, "hook notification failed {NOTIFY_ATTEMPTS} times, given up: {e}"
                            )
                        }
                        Err(e) => {
                            warn!(hook = event.name(), url, request, "hook notification failed, retrying: {e}");
                            tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
                        }
                    }
                }
            }
            if pending.fetch_sub(1, Ordering::AcqRel) == 1 {
                idle.notify_waiters();
            }
        });
    }

    /// Waits until no notification is pending, for at most `limit`; whether they all went out.
    /// A quit calls it so the last `on_stop`, `on_unpublish` and `on_dvr` are not lost.
    pub async fn drained(&self, limit: Duration) -> bool {
        let wait = async {
            loop {
                let woken = self.idle.notified();
                tokio::pin!(woken);
                // Registered before looking, so a finish in between is not missed.
                woken.as_mut().enable();
                if self.pending() == 0 {
                    return;
                }
                woken.await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }

    /// The HTTP client (connection pool, rustls) for other calls to HTTP services: the origin
    /// cluster's peers.
    pub fn http(&self) -> &reqwest::Client {
        &self.client
    }

    /// Notifications sent or waiting that have not finished.
    pub fn pending(&self) -> usize {
        self.pending.load(Ordering::Acquire)
    }
}

/// A notification to send when the protocol drops it (the publish or play ended, or the
/// connection closed). Dropping is enough, so no early return can forget it. Boxed: a player
/// holds its notices for as long as it plays, and an empty one costs a pointer.
#[must_use = "dropping a notice sends it"]
pub struct Notice(Option<Box<PendingNotice>>);

type PendingNotice = (Hooks, HookEvent, Vec<String>, Box<dyn FnOnce() -> Value + Send>);

impl Notice {
    pub fn none() -> Notice {
        Notice(None)
    }

    /// A notice of `event` to `urls`, its body made when it is sent (byte counts are final then).
    pub fn new(
        hooks: &Hooks,
        urls: &[String],
        event: HookEvent,
        body: impl FnOnce() -> Value + Send + 'static,
    ) -> Notice {
        if urls.is_empty() {
            return Notice::none();
        }
        Notice(Some(Box::new((hooks.clone(), event, urls.to_vec(), Box::new(body)))))
    }

    /// Sets a field of the body (known only after the notice was made, such as the stream id).
    pub fn set(&mut self, field: &'static str, value: Value) {
        if let Some(pending) = self.0.as_mut() {
            let old = std::mem::replace(&mut pending.3, Box::new(|| Value::Null));
            pending.3 = Box::new(move || {
                let mut body = old();
                body[field] = value;
                body
            });
        }
    }

    /// Never sends it (what it would report did not happen).
    pub fn cancel(&mut self) {
        self.0 = None;
    }
}

impl Drop for Notice {
    fn drop(&mut self) {
        if let Some(pending) = self.0.take() {
            let (hooks, event, urls, body) = *pending;
            hooks.notify(event, urls, body());
        }
    }
}

/// What an admitted client holds: the notices of its end. `end` (on_unpublish or on_stop) is
/// sent before `close` (on_close), as in SRS.
pub struct Admitted {
    pub end: Notice,
    pub close: Notice,
}

/// Who published a stream, for the hooks its writers call (`on_dvr`, `on_hls`).
#[derive(Debug, Clone, Default)]
pub struct Publisher {
    pub client_id: String,
    pub ip: String,
    pub tc_url: String,
    pub param: String,
}

impl Publisher {
    /// SRS's body for a writer's hook, before its own fields (`file`, `cwd`, ...).
    pub fn hook_body(&self, ids: (&str, &str), event: HookEvent, key: &StreamKey, stream_id: &str) -> Value {
        let (server_id, service_id) = ids;
        serde_json::json!({
            "server_id": server_id,
            "service_id": service_id,
            "action": event.name(),
            "client_id": self.client_id,
            "ip": self.ip,
            "vhost": key.vhost,
            "app": key.app,
            "stream": key.stream,
            "param": self.param,
            "tcUrl": self.tc_url,
            "stream_url": key.url(),
            "stream_id": stream_id,
        })
    }
}

#[derive(Debug, thiserror::Error)]
enum CallError {
    #[error("HTTP {status}, body `{body}`")]
    Refused { status: u16, body: String },
    #[error("{0}")]
    Transport(String),
}

/// One POST; `Ok` with the answer's body when it says yes by SRS's rule.
async fn call(client: &reqwest::Client, url: &str, body: &Value, request: u64) -> Result<String, CallError> {
    let resp = client
        .post(url)
        .header("Content-Type", "application/json")
        .header("X-Request-Id", request.to_string())
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| CallError::Transport(describe(&e)))?;
    let status = resp.status().as_u16();
    let answer = read_answer(resp).await?;
    if accepts(status, &answer) {
        Ok(answer)
    } else {
        Err(CallError::Refused { status, body: rsrs_core::names::Escaped(&answer).to_string() })
    }
}

/// `on_hls_notify`: a GET whose answer is not looked at.
async fn get(client: &reqwest::Client, url: &str, request: u64) -> Result<String, CallError> {
    let resp = client
        .get(url)
        .header("X-Request-Id", request.to_string())
        .timeout(NOTIFY_GET_TIMEOUT)
        .send()
        .await
        .map_err(|e| CallError::Transport(describe(&e)))?;
    read_answer(resp).await
}

async fn read_answer(resp: reqwest::Response) -> Result<String, CallError> {
    let (answer, _cut) = read_body(resp, MAX_ANSWER).await.map_err(|e| CallError::Transport(describe(&e)))?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// A response's body, read no further than `max` bytes; whether it was longer (and cut there).
/// Every HTTP service rsrs asks (hooks, cluster peers, key sets) is read through this bound.
pub async fn read_body(mut resp: reqwest::Response, max: usize) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        body.extend_from_slice(&chunk);
        if body.len() > max {
            body.truncate(max);
            return Ok((body, true));
        }
    }
    Ok((body, false))
}

/// reqwest's errors name their kind only at the top; say the cause too (refused, timed out...).
pub fn describe(e: &reqwest::Error) -> String {
    let mut s = if e.is_timeout() { "timed out".to_string() } else { e.to_string() };
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

/// SRS's success rule: status 200 or 201, and a body that is exactly `0` or a JSON object with
/// an integer `code` of 0.
pub fn accepts(status: u16, body: &str) -> bool {
    if status != 200 && status != 201 {
        return false;
    }
    if body == "0" {
        return true;
    }
    match serde_json::from_str::<Value>(body) {
        // An integer: `0.0` and `"0"` are not SRS's success.
        Ok(Value::Object(o)) => o.get("code").is_some_and(|c| c.is_i64() && c.as_i64() == Some(0)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_quit_waits_for_notifications_then_gives_up() {
        let hooks = Hooks::new();
        assert!(hooks.drained(Duration::from_millis(1)).await, "nothing pending");
        // Nothing listens on port 1: every attempt is refused at once, retried after 1 s and 2 s.
        hooks.notify(HookEvent::Stop, vec!["http://127.0.0.1:1/x".into()], serde_json::json!({}));
        assert_eq!(hooks.pending(), 1);
        assert!(!hooks.drained(Duration::from_millis(500)).await, "still retrying");
        assert!(hooks.drained(Duration::from_secs(10)).await, "given up after its attempts");
        assert_eq!(hooks.pending(), 0);
    }

    #[test]
    fn srs_success_rule() {
        assert!(accepts(200, "0"));
        assert!(accepts(201, r#"{"code":0}"#));
        assert!(accepts(200, r#"{"code":0,"data":{"x":1}}"#));
        assert!(!accepts(200, "0\n"), "SRS compares the text exactly");
        assert!(!accepts(200, r#"{"code":"0"}"#), "a string code is not an integer");
        assert!(!accepts(200, r#"{"code":0.0}"#));
        assert!(!accepts(200, r#"{"code":1}"#));
        assert!(!accepts(200, ""));
        assert!(!accepts(200, "1"));
        assert!(!accepts(200, "ok"));
        assert!(!accepts(403, "0"));
        assert!(!accepts(302, "0"));
    }
}
