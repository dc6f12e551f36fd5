//! External identity providers (Firebase, Keycloak, any OIDC issuer): their public keys are
//! fetched from the configured JWKS URL, cached, and fetched again when a token names a `kid`
//! the cache does not know (key rotation), at most once per [`REFRESH_INTERVAL`].

use std::{
    collections::HashMap,
    str::FromStr,
    time::{Duration, Instant},
};

use jsonwebtoken::{
    Algorithm, DecodingKey, Header, Validation,
    jwk::{Jwk, JwkSet},
};
use tokio::sync::Mutex;

use super::tokens::{Subject, TokenError, VerifiedToken};
use crate::settings::OidcSettings;

/// Least time between two fetches of one issuer's keys (a flood of tokens with made-up
/// `kid`s must not turn into a flood of requests to the provider).
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(10);
/// Keys older than this are fetched again on the next use.
pub const MAX_KEY_AGE: Duration = Duration::from_secs(3600);

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, Jwk>,
    fetched_at: Option<Instant>,
}

/// One trusted external issuer.
pub struct OidcProvider {
    settings: OidcSettings,
    algorithms: Vec<Algorithm>,
    client: reqwest::Client,
    cache: Mutex<KeyCache>,
}

impl OidcProvider {
    /// Checks the configuration (algorithms must be asymmetric and known).
    pub fn new(settings: &OidcSettings) -> anyhow::Result<Self> {
        let algorithms = settings
            .algorithms
            .iter()
            .map(|name| {
                let algorithm = Algorithm::from_str(name).map_err(|_| {
                    anyhow::anyhow!("oidc {}: unknown algorithm {name:?}", settings.issuer)
                })?;
                // A shared-secret algorithm with a public key set would let anyone sign.
                if matches!(
                    algorithm,
                    Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
                ) {
                    anyhow::bail!(
                        "oidc {}: algorithm {name} is not allowed, use an asymmetric one",
                        settings.issuer
                    );
                }
                Ok(algorithm)
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        if algorithms.is_empty() {
            anyhow::bail!("oidc {}: no algorithm allowed", settings.issuer);
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            settings: settings.clone(),
            algorithms,
            client,
            cache: Mutex::new(KeyCache::default()),
        })
    }

    /// The `iss` this provider's tokens carry.
    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    async fn fetch(&self) -> Result<HashMap<String, Jwk>, TokenError> {
        let unavailable = |err: reqwest::Error| {
            tracing::warn!(issuer = %self.settings.issuer, error = %err, "cannot fetch JWKS");
            TokenError::KeysUnavailable(self.settings.issuer.clone())
        };
        let set: JwkSet = self
            .client
            .get(&self.settings.jwks_url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(unavailable)?
            .json()
            .await
            .map_err(unavailable)?;
        Ok(set
            .keys
            .into_iter()
            .filter_map(|jwk| jwk.common.key_id.clone().map(|kid| (kid, jwk)))
            .collect())
    }

    async fn key(&self, kid: &str) -> Result<Jwk, TokenError> {
        let mut cache = self.cache.lock().await;
        let stale = cache
            .fetched_at
            .is_none_or(|at| at.elapsed() >= MAX_KEY_AGE);
        if !stale && let Some(jwk) = cache.keys.get(kid) {
            return Ok(jwk.clone());
        }
        let may_fetch = cache
            .fetched_at
            .is_none_or(|at| at.elapsed() >= REFRESH_INTERVAL);
        if may_fetch {
            cache.keys = self.fetch().await?;
            cache.fetched_at = Some(Instant::now());
        }
        cache
            .keys
            .get(kid)
            .cloned()
            .ok_or_else(|| TokenError::Invalid(format!("unknown key id {kid:?}")))
    }

    /// Checks a token of this issuer.
    pub async fn verify(
        &self,
        token: &str,
        header: &Header,
        leeway_secs: u64,
    ) -> Result<VerifiedToken, TokenError> {
        if !self.algorithms.contains(&header.alg) {
            return Err(TokenError::Invalid(format!(
                "algorithm {:?} is not allowed for this issuer",
                header.alg
            )));
        }
        let kid = header
            .kid
            .as_deref()
            .ok_or_else(|| TokenError::Invalid("token has no key id".into()))?;
        let jwk = self.key(kid).await?;
        let key =
            DecodingKey::from_jwk(&jwk).map_err(|err| TokenError::Invalid(err.to_string()))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.validate_nbf = true;
        validation.leeway = leeway_secs;
        let data = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &key,
            &validation,
        )
        .map_err(|err| TokenError::Invalid(err.to_string()))?;
        let claim = &self.settings.username_claim;
        let username = data
            .claims
            .get(claim)
            .and_then(serde_json::Value::as_str)
            .filter(|username| !username.is_empty())
            .ok_or_else(|| TokenError::MissingClaim(claim.clone()))?;
        let seconds = |name: &str| data.claims.get(name).and_then(serde_json::Value::as_i64);
        Ok(VerifiedToken {
            subject: Subject::Username(username.to_string()),
            issued_at: seconds("iat").unwrap_or_default(),
            expires_at: seconds("exp").unwrap_or_default(),
        })
    }
}
