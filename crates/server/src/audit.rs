//! The audit trail from the server's side: what gets recorded, and the writer that appends it.
//!
//! Handlers and extractors do not write records themselves. A middleware around every API
//! route records each call made with credentials: the actor the `AuthUser` or ingest token
//! extractor identified, the route template, the ids in the path, the status, the request id
//! and the client. For changes, it also records the body with personal data and secrets
//! replaced by `***`. Sign-ins and server start and stop are recorded where they happen.
//! Records go through a channel to one writer task, which appends them in batches; the chain
//! is computed in the store.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

use axum::{
    body::Body,
    extract::{ConnectInfo, FromRequestParts, MatchedPath, RawPathParams, Request, State},
    http::{Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use mymonit_model::audit::{AuditEvent, ChainBreak, Outcome};
use mymonit_store::AuditStore;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;

use crate::{error::ApiError, state::AppState};

/// Who made a call, as an extractor established it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// A user id, or `ingest-token:ID`.
    pub id: String,
    /// The role (`INGEST` for ingest tokens).
    pub role: String,
}

/// Where the extractors of a request put its actor for the audit middleware to read.
#[derive(Debug, Clone, Default)]
pub struct ActorSlot(Arc<Mutex<Option<Actor>>>);

impl ActorSlot {
    /// Records the actor.
    pub fn set(&self, actor: Actor) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(actor);
    }

    /// The actor, if one was identified.
    pub fn get(&self) -> Option<Actor> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Sends events to the writer task.
#[derive(Debug, Clone)]
pub struct AuditLog {
    sender: mpsc::Sender<AuditEvent>,
}

/// Events waiting for the writer; a full queue makes callers wait rather than lose records.
const QUEUE: usize = 10_000;

impl AuditLog {
    /// A log and the receiving end for [`write_continuously`].
    pub fn new() -> (Self, mpsc::Receiver<AuditEvent>) {
        let (sender, receiver) = mpsc::channel(QUEUE);
        (Self { sender }, receiver)
    }

    /// Queues an event for the trail.
    pub async fn record(&self, event: AuditEvent) {
        if self.sender.send(event).await.is_err() {
            tracing::error!("the audit writer has stopped: an audit record was not written");
        }
    }
}

/// An event of the server itself or of an identified actor, now.
pub fn event(action: &str, actor: Option<&Actor>, outcome: Outcome) -> AuditEvent {
    AuditEvent {
        at_ns: mymonit_model::time::now_ns(),
        actor_id: actor.map(|a| a.id.clone()),
        actor_role: actor.map(|a| a.role.clone()),
        action: action.to_owned(),
        target: json!({}),
        status: None,
        outcome,
        request_id: None,
        client: None,
        detail: Value::Null,
    }
}

/// What an admin may do that weakens the separation of duties: an admin cannot read measures
/// and an auditor's trail is not theirs, but an admin can create accounts, choose their
/// passwords, grant roles and associate scientists. These are flagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DutyEvent {
    /// An account was created with a password an admin chose.
    PasswordSetByAdmin,
    /// The ADMIN or AUDITOR role was given (at creation or by a change).
    RoleGranted,
    /// An admin associated an account whose password that same admin chose: through it the
    /// admin could read the experiment's measures.
    AssociatedOwnProvisionedAccount,
}

impl DutyEvent {
    /// The name in the trail and the metric's `kind` label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PasswordSetByAdmin => "password_set_by_admin",
            Self::RoleGranted => "role_granted",
            Self::AssociatedOwnProvisionedAccount => "associated_own_provisioned_account",
        }
    }
}

/// Records a flagged event in the trail (action `separation_of_duties`, the kind and the
/// account in its detail) and counts it in `mymonit_separation_of_duties_events_total`.
pub async fn flag_duty_event(state: &AppState, admin_id: &str, kind: DutyEvent, detail: Value) {
    state.metrics.duty_event(kind.as_str());
    let actor = Actor {
        id: admin_id.to_owned(),
        role: "ADMIN".into(),
    };
    let mut record = event("separation_of_duties", Some(&actor), Outcome::Success);
    record.detail = json!({"kind": kind.as_str(), "about": bounded(detail)});
    state.audit.record(record).await;
}

/// Most records appended in one transaction.
const MAX_BATCH: usize = 512;
/// How long the first record of a batch waits for others: under load, the records of the
/// next few milliseconds share one commit (each commit is a WAL write, and makes every read
/// connection drop its page cache), instead of one commit per request.
const GROUP_COMMIT_WAIT: Duration = Duration::from_millis(10);

/// Appends queued events in batches until every sender is gone and the queue is empty. A
/// failed append is retried (in order), never dropped.
pub async fn write_continuously(
    store: Arc<dyn AuditStore>,
    mut receiver: mpsc::Receiver<AuditEvent>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    loop {
        if receiver.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        let deadline = tokio::time::Instant::now() + GROUP_COMMIT_WAIT;
        while batch.len() < MAX_BATCH {
            let room = MAX_BATCH - batch.len();
            let more = receiver.recv_many(&mut batch, room);
            match tokio::time::timeout_at(deadline, more).await {
                // Every sender gone (the queue is empty), or the wait is over.
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let mut pause = Duration::from_millis(100);
        while let Err(err) = store.append_audit(&batch).await {
            tracing::error!(error = %err, records = batch.len(), "cannot append to the audit trail; retrying");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(10));
        }
        batch.clear();
    }
}

/// The result of walking the whole trail.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Verification {
    /// Whether every record fits the chain.
    pub intact: bool,
    /// Records checked (up to the first bad one).
    pub records: i64,
    /// The hash of the last good record; anchor it elsewhere to detect a truncated tail.
    pub head: String,
    /// The first record that does not fit, and why.
    pub first_bad: Option<BadRecord>,
}

/// A record that breaks the chain.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct BadRecord {
    /// Its position.
    pub seq: i64,
    /// Why it does not fit.
    pub reason: String,
}

/// Walks the whole trail in order, a page at a time.
pub async fn verify(store: &dyn AuditStore) -> Result<Verification, mymonit_store::StoreError> {
    let mut verifier = mymonit_model::audit::ChainVerifier::default();
    let mut after = 0;
    loop {
        let page = store
            .audit_records(&mymonit_store::AuditFilter {
                after_seq: Some(after),
                limit: 10_000,
                ..Default::default()
            })
            .await?;
        let Some(last) = page.last() else {
            return Ok(Verification {
                intact: true,
                records: verifier.checked(),
                head: verifier.head().to_owned(),
                first_bad: None,
            });
        };
        after = last.seq;
        for record in &page {
            if let Err(ChainBreak { seq, reason }) = verifier.check(record) {
                return Ok(Verification {
                    intact: false,
                    records: verifier.checked(),
                    head: verifier.head().to_owned(),
                    first_bad: Some(BadRecord { seq, reason }),
                });
            }
        }
    }
}

/// Route templates that share a request type.
type Routes = &'static [&'static str];
/// A request type's fields, each with whether its value may be shown.
type Fields = &'static [(&'static str, bool)];

/// What may be recorded of a change's body, per route template: the request type's fields,
/// each either shown or replaced by `***` (personal data and secrets). A key the route does
/// not know is dropped (only their count is kept): a client cannot put text of its choosing,
/// or a secret under a name the table does not expect ("Password"), into the trail.
const CHANGE_FIELDS: &[(Routes, Fields)] = &[
    (
        &["/api/v1/users", "/users/"],
        &[
            ("user_id", true),
            ("role", true),
            ("name", false),
            ("username", false),
            ("email", false),
            ("password", false),
        ],
    ),
    (
        &["/api/v1/users/{user_id}", "/users/{user_id}"],
        &[
            ("user_id", true),
            ("role", true),
            ("name", false),
            ("username", false),
            ("email", false),
        ],
    ),
    (
        &[
            "/api/v1/experiments",
            "/api/v1/experiments/{experiment_id}",
            "/experiments/",
            "/experiments/{experiment_id}",
        ],
        &[("name", true), ("experiment_id", true)],
    ),
    (
        &["/api/v1/experiments/{experiment_id}/retention"],
        &[("days", true)],
    ),
    (
        &["/api/v1/measure-types"],
        &[("name", true), ("symbol", true), ("quantity", true)],
    ),
    (
        &["/api/v1/associations"],
        &[("experiment_id", true), ("user_id", true)],
    ),
    (
        &["/api/v1/ingest-tokens"],
        &[("experiments", true), ("description", true)],
    ),
    (
        &[
            "/api/v1/experiments/{experiment_id}/alert-rules",
            "/api/v1/experiments/{experiment_id}/alert-rules/{rule_id}",
        ],
        &[
            ("name", true),
            ("measure", true),
            ("tags", true),
            ("statistic", true),
            ("window", true),
            ("op", true),
            ("threshold", true),
            ("absent_for", true),
            ("for", true),
            ("interval", true),
            ("group_by", true),
            ("labels", true),
            ("description", true),
        ],
    ),
    (
        &["/api/v1/sources", "/api/v1/sources/{source_id}"],
        &[
            ("experiment_id", true),
            ("kind", true),
            ("url", true),
            ("interval_secs", true),
            ("enabled", true),
            ("include", true),
            ("secret", false),
        ],
    ),
];

/// Longest string kept in a record; longer ones are cut and marked with `…`.
const MAX_RECORDED_CHARS: usize = 256;
/// Most entries of a list kept in a record.
const MAX_RECORDED_ITEMS: usize = 32;

/// A value cut down to the trail's bounds.
fn bounded(value: Value) -> Value {
    match value {
        Value::String(text) => json!(bounded_text(&text, MAX_RECORDED_CHARS)),
        Value::Array(items) => {
            let total = items.len();
            let mut kept: Vec<Value> = items
                .into_iter()
                .take(MAX_RECORDED_ITEMS)
                .map(bounded)
                .collect();
            if total > MAX_RECORDED_ITEMS {
                kept.push(json!(format!("… {} more", total - MAX_RECORDED_ITEMS)));
            }
            Value::Array(kept)
        }
        Value::Object(fields) => Value::Object(
            fields
                .into_iter()
                .take(MAX_RECORDED_ITEMS)
                .map(|(key, value)| (bounded_text(&key, 64), bounded(value)))
                .collect(),
        ),
        other => other,
    }
}

/// At most `max` characters of `text`, marked with `…` when cut.
fn bounded_text(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// The body of a change as the trail keeps it: the route's known fields, personal data and
/// secrets as `***`, unknown keys dropped and counted, every string bounded.
fn redacted_change(route: &str, body: &[u8]) -> Value {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return Value::Null;
    };
    let known = CHANGE_FIELDS
        .iter()
        .find(|(routes, _)| routes.contains(&route))
        .map(|(_, known)| *known)
        .unwrap_or(&[]);
    let mut changed = Map::new();
    let mut unknown = 0;
    for (key, value) in fields {
        match known.iter().find(|(name, _)| *name == key) {
            Some((_, true)) => {
                changed.insert(key, bounded(value));
            }
            Some((_, false)) => {
                changed.insert(key, json!("***"));
            }
            None => unknown += 1,
        }
    }
    let mut detail = json!({ "changed": changed });
    if unknown > 0 {
        detail["unknown_fields_dropped"] = json!(unknown);
    }
    detail
}

/// A client's own request id, kept beside ours when it is short and plain (letters, digits,
/// `-_.:`, at most 128 characters); anything else is not recorded.
#[derive(Debug, Clone)]
pub struct ClientRequestId(pub String);

/// Takes the client's `x-request-id` out of the request (so that the server always makes its
/// own) and keeps it, if acceptable, for the audit trail.
pub async fn take_client_request_id(mut request: Request, next: Next) -> Response {
    if let Some(value) = request.headers_mut().remove("x-request-id") {
        let acceptable = value.to_str().ok().filter(|text| {
            !text.is_empty()
                && text.len() <= 128
                && text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        });
        if let Some(text) = acceptable {
            let id = ClientRequestId(text.to_owned());
            request.extensions_mut().insert(id);
        }
    }
    next.run(request).await
}

/// Records every API call made with credentials (see the module documentation).
pub async fn audit_calls(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let slot = ActorSlot::default();
    let (mut parts, body) = request.into_parts();
    parts.extensions.insert(slot.clone());
    let route = parts
        .extensions
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_default();
    let target: Map<String, Value> = RawPathParams::from_request_parts(&mut parts, &state)
        .await
        .map(|params| {
            params
                .iter()
                .map(|(k, v)| (k.to_owned(), json!(v)))
                .collect()
        })
        .unwrap_or_default();
    let method = parts.method.clone();
    // A session cookie is a credential like a bearer token.
    let has_credentials = parts.headers.contains_key(header::AUTHORIZATION)
        || crate::auth::session_cookie(&parts.headers).is_some();
    let client_request_id = parts
        .extensions
        .get::<ClientRequestId>()
        .map(|id| id.0.clone());
    let request_id = parts
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let client = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| {
            crate::client::client_address_from(
                info.0.ip(),
                &parts.headers,
                &state.trusted_proxies,
                state.settings.forwarded_header,
            )
            .to_string()
        });
    let records_body = has_credentials
        && !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS)
        && !route.starts_with("/api/v1/auth/")
        && route != "/api/v1/ingest";
    let (body, detail) = if records_body {
        match axum::body::to_bytes(body, state.settings.max_body_bytes).await {
            Ok(bytes) => {
                let detail = redacted_change(&route, &bytes);
                (Body::from(bytes), detail)
            }
            Err(_) => return ApiError::PayloadTooLarge.into_response(),
        }
    } else {
        (body, Value::Null)
    };
    let response = next.run(Request::from_parts(parts, body)).await;
    let actor = slot.get();
    if actor.is_some() || has_credentials {
        let status = response.status().as_u16();
        let mut detail = match (&actor, status) {
            (None, 401) => json!({"reason": "credentials refused"}),
            _ => detail,
        };
        if let Some(id) = client_request_id {
            if !detail.is_object() {
                detail = json!({});
            }
            detail["client_request_id"] = json!(id);
        }
        let target = match bounded(Value::Object(target)) {
            Value::Object(target) => target,
            _ => Map::new(),
        };
        state
            .audit
            .record(AuditEvent {
                at_ns: mymonit_model::time::now_ns(),
                actor_id: actor.as_ref().map(|a| a.id.clone()),
                actor_role: actor.as_ref().map(|a| a.role.clone()),
                action: format!("{method} {route}"),
                target: Value::Object(target),
                status: Some(status),
                outcome: Outcome::of_status(status),
                request_id,
                client,
                detail,
            })
            .await;
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_hide_personal_data_and_secrets() {
        let body = br#"{"user_id":"S009","name":"Ada","email":"ada@x.org","username":"ada","role":"SCIENTIST","password":"hunter2hunter2"}"#;
        assert_eq!(
            redacted_change("/api/v1/users", body),
            json!({"changed": {"user_id": "S009", "name": "***", "email": "***", "username": "***", "role": "SCIENTIST", "password": "***"}})
        );
        // A key the route does not know is dropped, whatever its case or content.
        assert_eq!(
            redacted_change(
                "/api/v1/users/{user_id}",
                br#"{"Password":"hunter2hunter2","note":"x","role":"ADMIN"}"#
            ),
            json!({"changed": {"role": "ADMIN"}, "unknown_fields_dropped": 2})
        );
        // Strings are bounded.
        let long = format!(r#"{{"name":"{}"}}"#, "x".repeat(10_000));
        let detail = redacted_change("/api/v1/experiments", long.as_bytes());
        assert_eq!(
            detail["changed"]["name"].as_str().unwrap().chars().count(),
            MAX_RECORDED_CHARS + 1
        );
        // An experiment's name is not a person's.
        assert_eq!(
            redacted_change("/api/v1/experiments", br#"{"name":"black-holes"}"#),
            json!({"changed": {"name": "black-holes"}})
        );
        assert_eq!(redacted_change("/api/v1/users", b"not json"), Value::Null);
    }
}
