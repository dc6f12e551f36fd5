//! Tokens: MyMonit signs its own short-lived JWTs with an Ed25519 key, either given as a file
//! (`auth.signing_key_file`, the same for every instance) or generated on first start and kept
//! in the data directory (mode 0600). It publishes the public keys as JWKS, the current one
//! and the previous ones (`auth.previous_signing_key_files`, kept for rotation: tokens they
//! signed still verify), and also accepts tokens of configured external issuers (see
//! [`super::oidc`]).
//!
//! Verification routes a token by its (unverified) `iss` to exactly one key set, then checks
//! the signature with an allow-listed algorithm, and `exp`, `nbf`, `iss` and `aud`.

use std::{
    io::Write,
    path::Path,
    time::{SystemTime, UNIX_EPOCH},
};

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use super::oidc::OidcProvider;
use crate::settings::{AuthSettings, OidcSettings};

/// File holding the signing key (PKCS#8 DER) inside the data directory.
pub const SIGNING_KEY_FILE: &str = "jwt-signing-key.ed25519.pk8";

/// Why a token was refused. The text goes to the client: it says what is wrong without
/// helping an attacker more than the token itself would.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT, or an algorithm MyMonit does not accept (including `none`).
    #[error("malformed token or unsupported algorithm")]
    Malformed,
    /// No issuer we trust.
    #[error("token issuer {0:?} is not trusted")]
    UntrustedIssuer(String),
    /// Signature, expiry, audience or another claim is wrong.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The token lacks the claim that names the user.
    #[error("token has no {0:?} claim")]
    MissingClaim(String),
    /// The external issuer's keys could not be fetched.
    #[error("cannot check the token: keys of issuer {0:?} are unavailable")]
    KeysUnavailable(String),
}

/// Who a verified token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A MyMonit token names the user id and the account's token generation.
    UserId {
        /// The user.
        user_id: String,
        /// The generation it was issued under.
        generation: i64,
    },
    /// An external token names the username (the provider's subject, a Firebase uid).
    Username(String),
}

/// A token whose signature and claims checked out.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    /// Whom it speaks for.
    pub subject: Subject,
    /// `iat`, epoch seconds (0 when absent).
    pub issued_at: i64,
    /// `exp`, epoch seconds.
    pub expires_at: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct LocalClaims {
    iss: String,
    sub: String,
    aud: String,
    exp: i64,
    nbf: i64,
    iat: i64,
    jti: String,
    /// The account's token generation when issued.
    generation: i64,
}

#[derive(Deserialize)]
struct IssuerOnly {
    iss: Option<String>,
}

/// A freshly signed token.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// The JWT.
    pub token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

/// One Ed25519 key: what signs with it and what checks its signatures.
struct SigningKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Key id: the first 12 bytes of the SHA-256 of the public key, base64url.
    kid: String,
    public_x: String,
    /// Seals secrets MyMonit keeps for itself (pull sources' tokens): AES-256-GCM under a key
    /// derived from this one, so that every instance that can sign can also open them, and
    /// a copy of the database alone cannot.
    sealing: aws_lc_rs::aead::LessSafeKey,
}

impl SigningKey {
    /// Reads a PKCS#8 key (v2 as MyMonit writes it, or v1 as `openssl genpkey` does);
    /// `origin` names it in errors.
    fn from_pkcs8(pkcs8: &[u8], origin: &str) -> anyhow::Result<Self> {
        let pair = Ed25519KeyPair::from_pkcs8(pkcs8)
            .or_else(|_| Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8))
            .map_err(|err| {
                anyhow::anyhow!(
                    "the token signing key {origin} is not an Ed25519 key in PKCS#8 DER: {err}"
                )
            })?;
        let public_x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
        let digest =
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, pair.public_key().as_ref());
        let sealing = {
            use aws_lc_rs::{aead, hkdf};
            let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"mymonit").extract(pkcs8);
            let okm = prk
                .expand(&[SEALING_INFO], &aead::AES_256_GCM)
                .map_err(|_| anyhow::anyhow!("cannot derive the sealing key"))?;
            aead::LessSafeKey::new(aead::UnboundKey::from(okm))
        };
        Ok(Self {
            encoding: EncodingKey::from_ed_der(pkcs8),
            decoding: DecodingKey::from_ed_components(&public_x)?,
            kid: URL_SAFE_NO_PAD.encode(&digest.as_ref()[..12]),
            public_x,
            sealing,
        })
    }

    fn read(path: &Path) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path).map_err(|err| {
            anyhow::anyhow!(
                "cannot read the token signing key {}: {err}",
                path.display()
            )
        })?;
        Self::from_pkcs8(&bytes, &path.display().to_string())
    }
}

/// What the sealing key is derived for (HKDF's info).
const SEALING_INFO: &[u8] = b"mymonit sealed secrets v1";

/// A sealed secret that cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// Not in the `v1.KID.DATA` form.
    #[error("the sealed secret is malformed")]
    Malformed,
    /// Sealed under a key this instance does not have (rotated out of
    /// `auth.previous_signing_key_files`, or another deployment's).
    #[error("the secret was sealed with a signing key this server does not have (kid {0})")]
    UnknownKey(String),
    /// Altered, or sealed under another key with the same id.
    #[error("the sealed secret does not open: it was altered")]
    Altered,
    /// The random source failed.
    #[error("cannot seal: {0}")]
    Random(String),
}

/// Signs and checks tokens.
pub struct TokenService {
    settings: AuthSettings,
    /// Signs; verifies.
    current: SigningKey,
    /// Verify only.
    previous: Vec<SigningKey>,
    external: Vec<OidcProvider>,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("issuer", &self.settings.issuer)
            .field("kid", &self.current.kid)
            .field("previous", &self.previous.len())
            .finish_non_exhaustive()
    }
}

/// Epoch seconds now.
pub fn epoch_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// Reads the signing key from `data_dir`, creating it (mode 0600) on first start.
fn load_or_create_key(data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    let path = data_dir.join(SIGNING_KEY_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => return Ok(bytes),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(anyhow::anyhow!("cannot read {}: {err}", path.display())),
    }
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new())
        .map_err(|_| anyhow::anyhow!("cannot generate the token signing key"))?;
    std::fs::create_dir_all(data_dir)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut file) => {
            file.write_all(pkcs8.as_ref())?;
            file.sync_all()?;
            Ok(pkcs8.as_ref().to_vec())
        }
        // Another process (a second server, a CLI command) created it first: use theirs.
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(std::fs::read(&path)?),
        Err(err) => Err(anyhow::anyhow!("cannot write {}: {err}", path.display())),
    }
}

impl TokenService {
    /// Loads the signing keys (`auth.signing_key_file`, or the data directory's, created on
    /// first start; and the previous ones) and sets up the external issuers.
    pub fn new(
        data_dir: &Path,
        settings: &AuthSettings,
        external: &[OidcSettings],
    ) -> anyhow::Result<Self> {
        let current = match &settings.signing_key_file {
            Some(path) => SigningKey::read(path)?,
            None => SigningKey::from_pkcs8(&load_or_create_key(data_dir)?, SIGNING_KEY_FILE)?,
        };
        let previous = settings
            .previous_signing_key_files
            .iter()
            .map(|path| SigningKey::read(path))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let external = external
            .iter()
            .map(OidcProvider::new)
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self {
            settings: settings.clone(),
            current,
            previous,
            external,
        })
    }

    /// Seals a secret for the database: `v1.KID.BASE64URL(nonce ‖ ciphertext ‖ tag)`, under
    /// the current signing key's sealing key.
    pub fn seal(&self, secret: &str) -> Result<String, SealError> {
        use aws_lc_rs::aead::{Aad, NONCE_LEN, Nonce};
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|err| SealError::Random(err.to_string()))?;
        let mut data = secret.as_bytes().to_vec();
        self.current
            .sealing
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(self.current.kid.as_bytes()),
                &mut data,
            )
            .map_err(|err| SealError::Random(err.to_string()))?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&data);
        Ok(format!(
            "v1.{}.{}",
            self.current.kid,
            URL_SAFE_NO_PAD.encode(sealed)
        ))
    }

    /// Opens what [`TokenService::seal`] sealed, with the current or a previous key.
    pub fn open(&self, sealed: &str) -> Result<String, SealError> {
        use aws_lc_rs::aead::{Aad, NONCE_LEN, Nonce};
        let mut parts = sealed.splitn(3, '.');
        let (Some("v1"), Some(kid), Some(data)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(SealError::Malformed);
        };
        let key = self
            .key_of(Some(kid))
            .ok_or_else(|| SealError::UnknownKey(kid.to_owned()))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(data)
            .map_err(|_| SealError::Malformed)?;
        if bytes.len() < NONCE_LEN {
            return Err(SealError::Malformed);
        }
        let (nonce, rest) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| SealError::Malformed)?;
        let mut rest = rest.to_vec();
        let plain = key
            .sealing
            .open_in_place(nonce, Aad::from(kid.as_bytes()), &mut rest)
            .map_err(|_| SealError::Altered)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SealError::Altered)
    }

    /// The key of a token's `kid` (the current key when there is none).
    fn key_of(&self, kid: Option<&str>) -> Option<&SigningKey> {
        match kid {
            None => Some(&self.current),
            Some(kid) => std::iter::once(&self.current)
                .chain(&self.previous)
                .find(|key| key.kid == kid),
        }
    }

    /// Signs a token for `user_id` under the account's current token `generation`.
    pub fn issue(&self, user_id: &str, generation: i64) -> anyhow::Result<IssuedToken> {
        self.issue_for(user_id, generation, self.settings.token_ttl_secs)
    }

    /// Signs a token for `user_id` that lives `ttl` seconds.
    pub fn issue_for(
        &self,
        user_id: &str,
        generation: i64,
        ttl: u64,
    ) -> anyhow::Result<IssuedToken> {
        let now = epoch_seconds();
        let claims = LocalClaims {
            iss: self.settings.issuer.clone(),
            sub: user_id.to_string(),
            aud: self.settings.audience.clone(),
            exp: now + ttl as i64,
            nbf: now,
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            generation,
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.current.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.current.encoding)?;
        Ok(IssuedToken {
            token,
            expires_in: ttl,
        })
    }

    /// The public keys as a JWKS document.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = std::iter::once(&self.current)
            .chain(&self.previous)
            .map(|key| {
                serde_json::json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": key.public_x,
                    "kid": key.kid,
                    "alg": "EdDSA",
                    "use": "sig",
                })
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// Checks a token and says whom it speaks for.
    pub async fn verify(&self, token: &str) -> Result<VerifiedToken, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        let issuer = jsonwebtoken::dangerous::insecure_decode_claims::<IssuerOnly>(token)
            .map_err(|_| TokenError::Malformed)?
            .iss
            .ok_or_else(|| TokenError::MissingClaim("iss".into()))?;
        if issuer == self.settings.issuer {
            return self.verify_local(token, &header);
        }
        let provider = self
            .external
            .iter()
            .find(|provider| provider.issuer() == issuer)
            .ok_or(TokenError::UntrustedIssuer(issuer))?;
        provider
            .verify(token, &header, self.settings.leeway_secs)
            .await
    }

    fn verify_local(&self, token: &str, header: &Header) -> Result<VerifiedToken, TokenError> {
        let Some(key) = self.key_of(header.kid.as_deref()) else {
            return Err(TokenError::Invalid("unknown signing key".into()));
        };
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = self.settings.leeway_secs;
        let data = jsonwebtoken::decode::<LocalClaims>(token, &key.decoding, &validation)
            .map_err(|err| TokenError::Invalid(err.to_string()))?;
        Ok(VerifiedToken {
            subject: Subject::UserId {
                user_id: data.claims.sub,
                generation: data.claims.generation,
            },
            issued_at: data.claims.iat,
            expires_at: data.claims.exp,
        })
    }
}

/// SHA-256 of a token, hex: how revoked tokens are remembered without storing them.
pub fn token_hash(token: &str) -> String {
    hex::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        token.as_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(dir: &Path) -> TokenService {
        TokenService::new(dir, &AuthSettings::default(), &[]).unwrap()
    }

    #[tokio::test]
    async fn issues_and_verifies_its_own_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = service(dir.path());
        let issued = tokens.issue("S001", 0).unwrap();
        let verified = tokens.verify(&issued.token).await.unwrap();
        assert_eq!(
            verified.subject,
            Subject::UserId {
                user_id: "S001".into(),
                generation: 0
            }
        );
        assert!(verified.expires_at > verified.issued_at);
    }

    #[test]
    fn sealed_secrets_open_with_the_same_key_only_and_detect_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = service(dir.path());
        let sealed = tokens.seal("test-token").unwrap();
        assert!(!sealed.contains("test-token"));
        assert_ne!(
            sealed,
            tokens.seal("test-token").unwrap(),
            "a fresh nonce each time"
        );
        // Another instance with the same key opens it (the data directory's key persists).
        assert_eq!(service(dir.path()).open(&sealed).unwrap(), "test-token");
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 2;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        assert!(matches!(tokens.open(&altered), Err(SealError::Altered)));
        let elsewhere = tempfile::tempdir().unwrap();
        assert!(matches!(
            service(elsewhere.path()).open(&sealed),
            Err(SealError::UnknownKey(_))
        ));
        assert!(matches!(tokens.open("plain"), Err(SealError::Malformed)));
    }

    #[tokio::test]
    async fn the_key_persists_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let token = service(dir.path()).issue("S001", 0).unwrap().token;
        // A restart reads the same key: old tokens stay valid.
        service(dir.path()).verify(&token).await.unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SIGNING_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[tokio::test]
    async fn refuses_alg_none_forgeries_and_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = service(dir.path());
        let issued = tokens.issue("A001", 0).unwrap().token;
        let parts: Vec<&str> = issued.split('.').collect();

        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let unsigned = format!("{none_header}.{}.", parts[1]);
        assert!(matches!(
            tokens.verify(&unsigned).await,
            Err(TokenError::Malformed)
        ));

        let tampered_claims = URL_SAFE_NO_PAD.encode(
            String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).unwrap())
                .unwrap()
                .replace("A001", "S001"),
        );
        let forged = format!("{}.{tampered_claims}.{}", parts[0], parts[2]);
        assert!(matches!(
            tokens.verify(&forged).await,
            Err(TokenError::Invalid(_))
        ));

        let other_dir = tempfile::tempdir().unwrap();
        let other = service(other_dir.path()).issue("A001", 0).unwrap().token;
        assert!(tokens.verify(&other).await.is_err());

        assert!(matches!(
            tokens.verify("not.a.jwt").await,
            Err(TokenError::Malformed)
        ));
    }

    #[tokio::test]
    async fn refuses_expired_and_wrong_audience() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = service(dir.path());
        let now = epoch_seconds();
        let sign = |exp: i64, aud: &str, iss: &str| {
            let claims = LocalClaims {
                iss: iss.into(),
                sub: "S001".into(),
                aud: aud.into(),
                exp,
                nbf: now - 10,
                iat: now - 10,
                jti: "j".into(),
                generation: 0,
            };
            let mut header = Header::new(Algorithm::EdDSA);
            header.kid = Some(tokens.current.kid.clone());
            jsonwebtoken::encode(&header, &claims, &tokens.current.encoding).unwrap()
        };
        tokens
            .verify(&sign(now + 60, "mymonit", "mymonit"))
            .await
            .unwrap();
        let expired = tokens.verify(&sign(now - 3600, "mymonit", "mymonit")).await;
        assert!(
            matches!(expired, Err(TokenError::Invalid(ref e)) if e.contains("xpired")),
            "{expired:?}"
        );
        let wrong_aud = tokens
            .verify(&sign(now + 60, "someone-else", "mymonit"))
            .await;
        assert!(matches!(wrong_aud, Err(TokenError::Invalid(_))));
        let untrusted = tokens
            .verify(&sign(now + 60, "mymonit", "https://evil.example"))
            .await;
        assert!(matches!(untrusted, Err(TokenError::UntrustedIssuer(_))));
    }

    #[tokio::test]
    async fn rotated_keys_keep_verifying_and_are_published() {
        let dir = tempfile::tempdir().unwrap();
        let old_file = dir.path().join("old.pk8");
        let new_file = dir.path().join("new.pk8");
        for file in [&old_file, &new_file] {
            let pkcs8 =
                Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
            std::fs::write(file, pkcs8.as_ref()).unwrap();
        }
        let before = TokenService::new(
            dir.path(),
            &AuthSettings {
                signing_key_file: Some(old_file.clone()),
                ..AuthSettings::default()
            },
            &[],
        )
        .unwrap();
        let old_token = before.issue("S001", 0).unwrap().token;
        // Another instance given the same file accepts it: nothing in the data directory.
        let elsewhere = tempfile::tempdir().unwrap();
        let peer = TokenService::new(
            elsewhere.path(),
            &AuthSettings {
                signing_key_file: Some(old_file.clone()),
                ..AuthSettings::default()
            },
            &[],
        )
        .unwrap();
        peer.verify(&old_token).await.unwrap();
        assert!(!elsewhere.path().join(SIGNING_KEY_FILE).exists());

        let after = TokenService::new(
            dir.path(),
            &AuthSettings {
                signing_key_file: Some(new_file.clone()),
                previous_signing_key_files: vec![old_file.clone()],
                ..AuthSettings::default()
            },
            &[],
        )
        .unwrap();
        after.verify(&old_token).await.unwrap();
        let new_token = after.issue("S001", 0).unwrap().token;
        after.verify(&new_token).await.unwrap();
        let kids: Vec<String> = after.jwks()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|key| key["kid"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            kids,
            vec![after.current.kid.clone(), before.current.kid.clone()]
        );
        // Retired for good: its tokens are refused.
        let retired = TokenService::new(
            dir.path(),
            &AuthSettings {
                signing_key_file: Some(new_file),
                ..AuthSettings::default()
            },
            &[],
        )
        .unwrap();
        assert!(retired.verify(&old_token).await.is_err());
        // A file that is not a key is named in the error.
        std::fs::write(&old_file, b"not a key").unwrap();
        let err = TokenService::new(
            dir.path(),
            &AuthSettings {
                signing_key_file: Some(old_file),
                ..AuthSettings::default()
            },
            &[],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("old.pk8") && err.contains("PKCS#8"), "{err}");
    }

    #[test]
    fn token_hash_is_stable_hex() {
        assert_eq!(token_hash("abc").len(), 64);
        assert_eq!(token_hash("abc"), token_hash("abc"));
        assert_ne!(token_hash("abc"), token_hash("abd"));
    }
}
