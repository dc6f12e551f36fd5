//! Creating ingest tokens: a random secret shown once, stored as a SHA-256 (the secret has
//! 256 bits of entropy, so a fast hash is enough and keeps every ingest request cheap).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use mymonit_model::{
    Redacted,
    ingest::{IngestToken, TOKEN_PREFIX},
};
use mymonit_store::MetaStore;
use rand::RngCore;

use crate::{auth::tokens::token_hash, error::ApiError};

/// Creates a token for the named experiments; returns it with its secret (show it once).
pub async fn create(
    meta: &dyn MetaStore,
    experiment_names: &[String],
    description: &str,
    created_by: Option<&str>,
) -> Result<(IngestToken, Redacted<String>), ApiError> {
    if experiment_names.is_empty() {
        return Err(ApiError::Invalid(
            "name at least one experiment".into(),
            Some("experiments"),
        ));
    }
    let description = description.trim();
    if description.chars().count() > 200 {
        return Err(ApiError::Invalid(
            "must be at most 200 characters".into(),
            Some("description"),
        ));
    }
    let mut experiment_ids = Vec::with_capacity(experiment_names.len());
    for name in experiment_names {
        let experiment = meta
            .experiment_by_name(name)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("experiment {name:?}")))?;
        experiment_ids.push(experiment.experiment_id);
    }
    let mut secret_bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut secret_bytes);
    let secret = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(secret_bytes));
    let token_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
    let token = meta
        .create_ingest_token(
            &token_id,
            &token_hash(&secret),
            description,
            &experiment_ids,
            created_by,
        )
        .await?;
    Ok((token, Redacted::new(secret)))
}
