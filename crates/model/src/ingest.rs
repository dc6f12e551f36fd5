//! Ingest tokens: how sources (devices, adapters, services) authenticate to push measures.

use serde::Serialize;

/// An ingest token as admins see it; the secret itself is shown only once, at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct IngestToken {
    /// Public id, used to list and revoke it.
    pub token_id: String,
    /// What it is for (a device, a service).
    pub description: String,
    /// Experiments it may write to.
    pub experiment_ids: Vec<i64>,
    /// The admin who created it (absent when created from the shell).
    pub created_by: Option<String>,
    /// Creation time, epoch seconds.
    pub created_at: i64,
    /// Whether it was revoked.
    pub revoked: bool,
}

/// Prefix of ingest token secrets, so they are recognisable in configuration files and by
/// secret scanners.
pub const TOKEN_PREFIX: &str = "mmi_";
