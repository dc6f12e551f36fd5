//! The audit trail's records and their hash chain, without I/O.
//!
//! Each record carries the SHA-256 of its own content together with the previous record's
//! hash, so altering, removing or reordering any record breaks the chain from that record on.
//! [`ChainVerifier`] walks records in order and names the first one that does not fit.
//! Records name users by id only; details never hold personal data in clear.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The hash before the first record.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// How an audited action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It was done.
    Success,
    /// It failed (bad credentials, bad input, an error).
    Failure,
    /// The caller was not allowed.
    Denied,
}

impl Outcome {
    /// The outcome of an HTTP status.
    pub fn of_status(status: u16) -> Self {
        match status {
            403 => Self::Denied,
            s if s < 400 => Self::Success,
            _ => Self::Failure,
        }
    }

    /// The lowercase name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Denied => "denied",
        }
    }
}

impl std::str::FromStr for Outcome {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "success" => Ok(Self::Success),
            "failure" => Ok(Self::Failure),
            "denied" => Ok(Self::Denied),
            other => Err(format!(
                "unknown outcome {other:?}: use success, failure or denied"
            )),
        }
    }
}

/// What happened, before it takes its place in the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEvent {
    /// When, in nanoseconds since the Unix epoch.
    pub at_ns: i64,
    /// Who: a user id, `ingest-token:ID`, or none (anonymous, the server itself).
    pub actor_id: Option<String>,
    /// The actor's role at the time.
    pub actor_role: Option<String>,
    /// What: `METHOD /route/{template}` for API calls, or `auth.login`, `server.start`…
    pub action: String,
    /// The ids acted on (path parameters), as a JSON object.
    #[schema(value_type = Object)]
    pub target: serde_json::Value,
    /// The HTTP status, for API calls.
    pub status: Option<u16>,
    /// How it ended.
    pub outcome: Outcome,
    /// The request id (`x-request-id`).
    pub request_id: Option<String>,
    /// The client address.
    pub client: Option<String>,
    /// What changed, personal data and secrets shown as `***`.
    #[schema(value_type = Object)]
    pub detail: serde_json::Value,
}

/// A record of the trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditRecord {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// The event.
    #[serde(flatten)]
    pub event: AuditEvent,
    /// The previous record's hash ([`GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// SHA-256 (hex) of `seq`, the event and `prev_hash`.
    pub hash: String,
}

/// The hash of a record: SHA-256 over its canonical JSON (fields in declaration order, JSON
/// objects with sorted keys) and the previous hash.
pub fn chain_hash(seq: i64, event: &AuditEvent, prev_hash: &str) -> String {
    let mut hasher = Sha256::new();
    // Serialising these types cannot fail: no map has non-string keys.
    let content = serde_json::to_vec(&(seq, event, prev_hash)).unwrap_or_default();
    hasher.update(&content);
    hex::encode(hasher.finalize())
}

impl AuditRecord {
    /// Chains an event after the record whose hash is `prev_hash`.
    pub fn chain(seq: i64, event: AuditEvent, prev_hash: &str) -> Self {
        let hash = chain_hash(seq, &event, prev_hash);
        Self {
            seq,
            event,
            prev_hash: prev_hash.to_owned(),
            hash,
        }
    }
}

/// The first record that does not fit the chain, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit record {seq}: {reason}")]
pub struct ChainBreak {
    /// The record (or the missing position).
    pub seq: i64,
    /// Why it does not fit.
    pub reason: String,
}

/// Walks the records in order.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    next_seq: i64,
    prev_hash: String,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self {
            next_seq: 1,
            prev_hash: GENESIS_HASH.to_owned(),
        }
    }
}

impl ChainVerifier {
    /// Checks the next record.
    pub fn check(&mut self, record: &AuditRecord) -> Result<(), ChainBreak> {
        let fail = |seq, reason: &str| {
            Err(ChainBreak {
                seq,
                reason: reason.to_owned(),
            })
        };
        if record.seq > self.next_seq {
            return fail(self.next_seq, "missing (removed)");
        }
        if record.seq < self.next_seq {
            return fail(record.seq, "out of order (a position appears twice)");
        }
        if record.hash != chain_hash(record.seq, &record.event, &record.prev_hash) {
            return fail(record.seq, "its content does not match its hash (altered)");
        }
        if record.prev_hash != self.prev_hash {
            return fail(
                record.seq,
                "it does not follow the record before it (removed, inserted or reordered)",
            );
        }
        self.next_seq += 1;
        self.prev_hash.clone_from(&record.hash);
        Ok(())
    }

    /// How many records were checked.
    pub fn checked(&self) -> i64 {
        self.next_seq - 1
    }

    /// The hash of the last record checked.
    pub fn head(&self) -> &str {
        &self.prev_hash
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn event(action: &str) -> AuditEvent {
        AuditEvent {
            at_ns: 1_700_000_000_000_000_000,
            actor_id: Some("A001".into()),
            actor_role: Some("ADMIN".into()),
            action: action.into(),
            target: json!({"user_id": "S001"}),
            status: Some(200),
            outcome: Outcome::Success,
            request_id: Some("r1".into()),
            client: Some("127.0.0.1".into()),
            detail: json!({"changed": {"role": "SCIENTIST", "email": "***"}}),
        }
    }

    fn chain(actions: &[&str]) -> Vec<AuditRecord> {
        let mut previous = GENESIS_HASH.to_owned();
        actions
            .iter()
            .enumerate()
            .map(|(i, action)| {
                let record = AuditRecord::chain(i as i64 + 1, event(action), &previous);
                previous.clone_from(&record.hash);
                record
            })
            .collect()
    }

    fn verify(records: &[AuditRecord]) -> Result<i64, ChainBreak> {
        let mut verifier = ChainVerifier::default();
        for record in records {
            verifier.check(record)?;
        }
        Ok(verifier.checked())
    }

    #[test]
    fn an_intact_chain_verifies() {
        assert_eq!(verify(&chain(&["a", "b", "c"])), Ok(3));
        assert_eq!(verify(&[]), Ok(0));
    }

    #[test]
    fn altered_removed_and_reordered_records_are_named() {
        let records = chain(&["a", "b", "c", "d"]);
        let mut altered = records.clone();
        altered[1].event.outcome = Outcome::Denied;
        assert_eq!(verify(&altered).unwrap_err().seq, 2);

        let mut removed = records.clone();
        removed.remove(2);
        assert_eq!(verify(&removed).unwrap_err().seq, 3);

        // Swapping two records' contents, positions kept: the first moved one breaks.
        let mut reordered = records.clone();
        let (first, second) = (reordered[1].clone(), reordered[2].clone());
        reordered[1] = AuditRecord { seq: 2, ..second };
        reordered[2] = AuditRecord { seq: 3, ..first };
        assert_eq!(verify(&reordered).unwrap_err().seq, 2);

        // Rewriting a record with a fresh hash still breaks the link to the next one.
        let mut rehashed = records.clone();
        rehashed[1].event.action = "forged".into();
        rehashed[1].hash = chain_hash(2, &rehashed[1].event, &rehashed[1].prev_hash);
        assert_eq!(verify(&rehashed).unwrap_err().seq, 3);
    }

    #[test]
    fn outcomes_follow_statuses() {
        assert_eq!(Outcome::of_status(200), Outcome::Success);
        assert_eq!(Outcome::of_status(403), Outcome::Denied);
        assert_eq!(Outcome::of_status(401), Outcome::Failure);
        assert_eq!(Outcome::of_status(500), Outcome::Failure);
        assert_eq!("denied".parse::<Outcome>(), Ok(Outcome::Denied));
        assert!("maybe".parse::<Outcome>().is_err());
    }
}
