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

/// Appends queued events in batches until every sender is gone and the queue is empty. A
/// failed append is retried (in order), never dropped.
pub async fn write_continuously(
    store: Arc<dyn AuditStore>,
    mut receiver: mpsc::Receiver<AuditEvent>,
) {
    let mut batch = Vec::with_capacity(512);
    loop {
        if receiver.recv_many(&mut batch, 512).await == 0 {
            return;
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

/// Keys whose values are personal data or secrets wherever they appear.
const SECRET_KEYS: [&str; 7] = [
    "password",
    "current_password",
    "new_password",
    "email",
    "username",
    "token",
    "secret",
];

/// The body of a change with personal data and secrets shown as `***`. On user routes `name`
/// is a person's name too.
fn redacted_change(route: &str, body: &[u8]) -> Value {
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
        return Value::Null;
    };
    let personal_names = route.contains("/users");
    let changed: Map<String, Value> = fields
        .into_iter()
        .map(|(key, value)| {
            let hidden = SECRET_KEYS.contains(&key.as_str()) || (personal_names && key == "name");
            (key, if hidden { json!("***") } else { value })
        })
        .collect();
    json!({ "changed": changed })
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
    let has_credentials = parts.headers.contains_key(header::AUTHORIZATION);
    let request_id = parts
        .headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let client = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| {
            crate::client::client_address(info.0.ip(), &parts.headers, &state.trusted_proxies)
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
        let detail = match (&actor, status) {
            (None, 401) => json!({"reason": "credentials refused"}),
            _ => detail,
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
        // An experiment's name is not a person's.
        assert_eq!(
            redacted_change("/api/v1/experiments", br#"{"name":"black-holes"}"#),
            json!({"changed": {"name": "black-holes"}})
        );
        assert_eq!(redacted_change("/api/v1/users", b"not json"), Value::Null);
    }
}
