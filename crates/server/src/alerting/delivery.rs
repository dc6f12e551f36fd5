//! Sending notifications from the outbox: to Alertmanager's API (`POST /api/v2/alerts`) and
//! to webhooks (a JSON body signed with HMAC-SHA256 in `X-MyMonit-Signature`). A failed
//! attempt is retried after 1 s, 2 s, 4 s … up to 10 minutes; a notification older than
//! `alerting.give_up_after_secs` is given up. Each instance sends what it claims, so a
//! notification goes out once per attempt whichever instance made it.

use std::time::Duration;

use mymonit_model::source::backoff_ms;
use mymonit_store::alerts::{Attempt, Notification};

use crate::{
    background::claim_and_work, settings::AlertingSettings, sources::now_ms, state::AppState,
};

/// Receiver prefix of Alertmanager notifications (followed by its base URL).
pub const ALERTMANAGER: &str = "alertmanager:";
/// Receiver prefix of webhook notifications (followed by the webhook's URL).
pub const WEBHOOK: &str = "webhook:";

/// Header carrying a webhook body's signature: `sha256=` and the hex HMAC-SHA256 of the body
/// under the webhook's secret.
pub const SIGNATURE_HEADER: &str = "x-mymonit-signature";

const POLL: Duration = Duration::from_millis(250);
/// Most sends at once per instance.
const MAX_SENDS: usize = 8;

/// The HTTP client of the receivers, with the configured CA and client certificate.
pub fn client(settings: &AlertingSettings) -> anyhow::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .timeout(Duration::from_secs(settings.timeout_secs.max(1)))
        .user_agent(concat!("MyMonit/", env!("CARGO_PKG_VERSION")));
    if let Some(ca) = &settings.tls_ca_file {
        let pem = std::fs::read(ca).map_err(|err| {
            anyhow::anyhow!("cannot read alerting.tls_ca_file {}: {err}", ca.display())
        })?;
        for certificate in reqwest::Certificate::from_pem_bundle(&pem)? {
            builder = builder.add_root_certificate(certificate);
        }
    }
    if let (Some(cert), Some(key)) = (&settings.tls_cert_file, &settings.tls_key_file) {
        let mut pem = std::fs::read(cert).map_err(|err| {
            anyhow::anyhow!(
                "cannot read alerting.tls_cert_file {}: {err}",
                cert.display()
            )
        })?;
        pem.extend(std::fs::read(key).map_err(|err| {
            anyhow::anyhow!("cannot read alerting.tls_key_file {}: {err}", key.display())
        })?);
        builder = builder.identity(reqwest::Identity::from_pem(&pem)?);
    }
    Ok(builder.build()?)
}

/// The signature header's value for `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret.as_bytes());
    format!("sha256={}", hex::encode(aws_lc_rs::hmac::sign(&key, body)))
}

/// Sends due notifications until the task is dropped. A receiver's notifications are claimed
/// one at a time, oldest first (a firing before its resolution), so a receiver that is down
/// holds its own queue and no other.
pub async fn run(state: AppState) {
    let owner = format!("mymonit-{}", uuid::Uuid::new_v4());
    // A send may take the whole timeout: the lease outlasts it.
    let lease_ms = (state.settings.alerting.timeout_secs.max(1) as i64 + 30) * 1_000;
    let claimer = (state.clone(), owner.clone());
    claim_and_work(
        "alert notifications",
        POLL,
        state.notifications_queued.clone(),
        MAX_SENDS,
        |free| {
            let (state, owner) = claimer.clone();
            async move {
                let claimed = state
                    .alerts
                    .claim_notifications(&owner, now_ms(), lease_ms, free)
                    .await?;
                let mut by_receiver: std::collections::BTreeMap<String, Vec<Notification>> =
                    std::collections::BTreeMap::new();
                for notification in claimed {
                    by_receiver
                        .entry(notification.receiver.clone())
                        .or_default()
                        .push(notification);
                }
                Ok(by_receiver.into_values().collect::<Vec<_>>())
            }
        },
        |notifications| {
            let (state, owner) = (state.clone(), owner.clone());
            async move {
                for notification in notifications {
                    send_one(&state, &notification, &owner).await;
                }
            }
        },
    )
    .await;
}

async fn send_one(state: &AppState, notification: &Notification, owner: &str) {
    let settings = &state.settings.alerting;
    let result = send(state, settings, notification).await;
    let now = now_ms();
    let kind = if notification.receiver.starts_with(ALERTMANAGER) {
        "alertmanager"
    } else {
        "webhook"
    };
    let attempt = match result {
        Ok(()) => Attempt::Delivered,
        Err(Failure::Refused(error)) => Attempt::GiveUp { error },
        Err(Failure::Retry(error)) => {
            if now - notification.created_at_ms > settings.give_up_after_secs as i64 * 1_000 {
                Attempt::GiveUp {
                    error: format!("{error} (given up after {} s)", settings.give_up_after_secs),
                }
            } else {
                Attempt::Retry {
                    error,
                    next_attempt_ms: now + backoff_ms(notification.attempts.saturating_add(1)),
                }
            }
        }
    };
    let outcome = match &attempt {
        Attempt::Delivered => "delivered",
        Attempt::Retry { error, .. } => {
            tracing::warn!(notification_id = notification.notification_id, receiver = kind, %error, "an alert notification failed; retrying");
            "retry"
        }
        Attempt::GiveUp { error } => {
            tracing::error!(notification_id = notification.notification_id, receiver = kind, %error, "an alert notification was given up");
            "failed"
        }
    };
    state.metrics.alert_delivery(kind, outcome);
    if let Err(err) = state
        .alerts
        .finish_notification(notification.notification_id, owner, &attempt, now)
        .await
    {
        tracing::warn!(error = %err, "cannot record an alert notification's delivery");
    }
}

/// Why a send failed.
enum Failure {
    /// Worth trying again (no answer, 5xx, 429).
    Retry(String),
    /// The receiver refused it as it is (4xx), or it is no longer configured.
    Refused(String),
}

async fn send(
    state: &AppState,
    settings: &AlertingSettings,
    notification: &Notification,
) -> Result<(), Failure> {
    let body = notification.body.clone().into_bytes();
    let request = if let Some(base) = notification.receiver.strip_prefix(ALERTMANAGER) {
        let url = format!("{}/api/v2/alerts", base.trim_end_matches('/'));
        state
            .alert_client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
    } else if let Some(url) = notification.receiver.strip_prefix(WEBHOOK) {
        let hook = settings
            .webhooks
            .iter()
            .find(|hook| hook.url == url)
            .ok_or_else(|| Failure::Refused("the webhook is no longer configured".into()))?;
        let mut request = state
            .alert_client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(secret) = hook.secret.as_deref().filter(|s| !s.is_empty()) {
            request = request.header(SIGNATURE_HEADER, signature(secret, &body));
        }
        request.body(body)
    } else {
        return Err(Failure::Refused(format!(
            "unknown receiver {:?}",
            notification.receiver
        )));
    };
    let response = request
        .send()
        .await
        .map_err(|err| Failure::Retry(crate::sources::describe_error(&err)))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    // Only the start of an error answer is kept: a receiver's page may be large.
    let mut head = Vec::new();
    let mut response = response;
    while head.len() < 1_024 {
        match response.chunk().await {
            Ok(Some(chunk)) => head.extend_from_slice(&chunk),
            _ => break,
        }
    }
    let text: String = String::from_utf8_lossy(&head).chars().take(200).collect();
    let error = format!("HTTP {}: {}", status.as_u16(), text.trim());
    if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
        Err(Failure::Retry(error))
    } else {
        Err(Failure::Refused(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hex_hmac_sha256() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
