//! Personal access tokens: long-lived, read-only credentials a user makes for tools that
//! cannot sign in (a Grafana datasource, a script). The secret is shown once; MyMonit keeps
//! its SHA-256.

use serde::Serialize;

/// A personal access token as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PersonalToken {
    /// Public id, used to revoke it.
    pub token_id: String,
    /// The owner.
    pub user_id: String,
    /// What it is for, as its owner named it (`grafana-lab`).
    pub name: String,
    /// What it allows: `read` (measures and statistics of the owner's experiments).
    pub scope: String,
    /// Creation time, epoch seconds.
    pub created_at: i64,
    /// When it stops working, epoch seconds.
    pub expires_at: i64,
    /// Whether its owner revoked it.
    pub revoked: bool,
}

/// Prefix of personal access token secrets, so they are recognisable (and told apart from
/// ingest tokens, `mmi_`, and access tokens, which are JWTs).
pub const PERSONAL_TOKEN_PREFIX: &str = "mmp_";

/// The only scope there is: reading what the owner may read.
pub const READ_SCOPE: &str = "read";
