//! Account rules shared by the API, the `mymonit user` commands and the demo: validation,
//! the password policy, hashing.

use mymonit_model::{Redacted, User, ValidationError, password::PasswordPolicyError};
use mymonit_store::{MetaStore, StoreError};

use crate::{auth::password, error::ApiError};

/// Why an account could not be created or changed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// A field is invalid.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// The password breaks the policy.
    #[error(transparent)]
    Policy(#[from] PasswordPolicyError),
    /// The store refused (for example a taken username).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Hashing failed.
    #[error(transparent)]
    Hash(#[from] anyhow::Error),
}

impl From<AccountError> for ApiError {
    fn from(err: AccountError) -> Self {
        match err {
            AccountError::Validation(err) => err.into(),
            AccountError::Policy(err) => err.into(),
            AccountError::Store(err) => err.into(),
            AccountError::Hash(err) => ApiError::Internal(err),
        }
    }
}

fn check_policy(user: &User, password: &Redacted<String>) -> Result<(), PasswordPolicyError> {
    mymonit_model::password::check(
        password.expose(),
        &[
            user.name.expose(),
            user.username.expose(),
            user.email.expose(),
            &user.user_id,
        ],
    )
}

/// Creates an account after validating it; with a password, it can sign in with MyMonit's
/// built-in identity, without one only through an external identity provider.
pub async fn create(
    meta: &dyn MetaStore,
    user: &User,
    password: Option<Redacted<String>>,
) -> Result<(), AccountError> {
    user.validate()?;
    let hash = match password {
        Some(password) => {
            check_policy(user, &password)?;
            Some(password::hash(password).await?)
        }
        None => None,
    };
    meta.create_user(user, hash.as_deref()).await?;
    Ok(())
}

/// Sets a new password (policy enforced); every token issued before is refused.
pub async fn set_password(
    meta: &dyn MetaStore,
    user: &User,
    new_password: Redacted<String>,
) -> Result<(), AccountError> {
    check_policy(user, &new_password)?;
    let hash = password::hash(new_password).await?;
    meta.set_password(&user.user_id, &hash).await?;
    Ok(())
}
