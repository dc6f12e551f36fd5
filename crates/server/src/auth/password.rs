//! Argon2id password hashing, off the async runtime (hashing is deliberately slow).

use argon2::{Argon2, PasswordHasher, PasswordVerifier, password_hash::phc::PasswordHash};
use mymonit_model::Redacted;

/// Hashes a password into a PHC string (Argon2id, random salt, default cost).
pub async fn hash(password: Redacted<String>) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.expose().as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|err| anyhow::anyhow!("cannot hash password: {err}"))
    })
    .await?
}

/// Checks a password against a PHC string. With no hash (unknown user, or an account that
/// signs in elsewhere) it checks against `decoy` and answers `false`, so both cases take the
/// same time as a wrong password.
pub async fn verify(password: Redacted<String>, hash: Option<String>, decoy: &str) -> bool {
    let has_hash = hash.is_some();
    let hash = hash.unwrap_or_else(|| decoy.to_string());
    let matches = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(password.expose().as_bytes(), &parsed)
                .is_ok()
        })
    })
    .await
    .unwrap_or(false);
    has_hash && matches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_decoys_never_match() {
        let hashed = hash("correct horse battery".into()).await.unwrap();
        assert!(hashed.starts_with("$argon2id$"));
        assert!(
            verify(
                "correct horse battery".into(),
                Some(hashed.clone()),
                &hashed
            )
            .await
        );
        assert!(!verify("wrong".into(), Some(hashed.clone()), &hashed).await);
        // Even the decoy's own password does not sign in when there is no account hash.
        assert!(!verify("correct horse battery".into(), None, &hashed).await);
    }
}
