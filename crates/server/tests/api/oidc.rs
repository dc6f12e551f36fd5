//! An external identity provider: a second key pair served as JWKS by a local HTTP server on
//! loopback. Its tokens are accepted for a mapped user and refused when the issuer or the
//! audience is wrong.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use aws_lc_rs::{
    rand::SystemRandom,
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair},
};
use axum::{Json, Router, routing::get};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use mymonit_model::Role;
use mymonit_server::settings::OidcSettings;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::RwLock;

use crate::helpers::{TestApp, spawn_app_with};

const ISSUER: &str = "https://securetoken.google.com/mymonit-test";
const AUDIENCE: &str = "mymonit-test";
const FIREBASE_UID: &str = "uJayGH994iVa2TY5auSNYZoUpwk1";

/// An ES256 key of the fake provider.
struct ProviderKey {
    kid: String,
    pkcs8: Vec<u8>,
    jwk: Value,
}

impl ProviderKey {
    fn generate(kid: &str) -> Self {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref().to_vec(); // 0x04 ‖ x ‖ y
        let jwk = json!({"kty": "EC", "crv": "P-256", "kid": kid, "alg": "ES256", "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]), "y": URL_SAFE_NO_PAD.encode(&point[33..65])});
        Self {
            kid: kid.into(),
            pkcs8: pkcs8.as_ref().to_vec(),
            jwk,
        }
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ec_der(&self.pkcs8)).unwrap()
    }
}

/// The provider's JWKS endpoint on loopback, counting fetches.
async fn serve_jwks(keys: Arc<RwLock<Vec<Value>>>, fetches: Arc<AtomicUsize>) -> String {
    let app = Router::new().route(
        "/jwks",
        get(move || {
            let keys = keys.clone();
            let fetches = fetches.clone();
            async move {
                fetches.fetch_add(1, Ordering::SeqCst);
                Json(json!({"keys": *keys.read().await}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/jwks")
}

fn claims(overrides: Value) -> Value {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let mut claims = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": FIREBASE_UID,
        "iat": now - 5, "exp": now + 600});
    for (key, value) in overrides.as_object().unwrap() {
        claims[key] = value.clone();
    }
    claims
}

/// A server trusting the fake provider for one algorithm, with the Firebase user S001.
async fn app_trusting(jwks_url: String, algorithm: &str) -> TestApp {
    let app = spawn_app_with(|settings| {
        settings.oidc = vec![OidcSettings {
            issuer: ISSUER.into(),
            jwks_url,
            audience: AUDIENCE.into(),
            username_claim: "sub".into(),
            algorithms: vec![algorithm.into()],
        }];
    })
    .await;
    app.add_user("S001", FIREBASE_UID, Role::Scientist).await;
    app
}

#[tokio::test]
async fn external_tokens_map_to_users_by_username() {
    let first = ProviderKey::generate("key-1");
    let keys = Arc::new(RwLock::new(vec![first.jwk.clone()]));
    let fetches = Arc::new(AtomicUsize::new(0));
    let jwks_url = serve_jwks(keys.clone(), fetches.clone()).await;
    let app = app_trusting(jwks_url, "ES256").await;

    let token = first.sign(&claims(json!({})));
    let me = app.get("/api/v1/auth/me", &token).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert_eq!(me.json()["user_id"], "S001");
    // The role comes from MyMonit, whatever the token claims.
    let claims_admin = first.sign(&claims(json!({"role": "ADMIN", "admin": true})));
    app.get("/api/v1/associations", &claims_admin)
        .await
        .problem(403);
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "keys are cached");

    let refused = [
        (
            "wrong issuer",
            first.sign(&claims(
                json!({"iss": "https://securetoken.google.com/other"}),
            )),
        ),
        (
            "wrong audience",
            first.sign(&claims(json!({"aud": "other-project"}))),
        ),
        (
            "expired",
            first.sign(&claims(json!({"exp": 1_000_000_000, "iat": 999_999_000}))),
        ),
        (
            "unknown user",
            first.sign(&claims(json!({"sub": "someone-else"}))),
        ),
        (
            "key not published",
            ProviderKey::generate("key-1").sign(&claims(json!({}))),
        ),
    ];
    for (name, token) in refused {
        let reply = app.get("/api/v1/auth/me", &token).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{name}: {}",
            reply.text
        );
    }

    // Key rotation: a token with a new kid makes MyMonit fetch the keys again.
    tokio::time::sleep(mymonit_server::auth::oidc::REFRESH_INTERVAL).await;
    let second = ProviderKey::generate("key-2");
    keys.write().await.push(second.jwk.clone());
    let before = fetches.load(Ordering::SeqCst);
    let rotated = app
        .get("/api/v1/auth/me", &second.sign(&claims(json!({}))))
        .await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.text);
    assert_eq!(fetches.load(Ordering::SeqCst), before + 1);
}

#[tokio::test]
async fn disallowed_algorithms_are_refused() {
    let key = ProviderKey::generate("key-1");
    let keys = Arc::new(RwLock::new(vec![key.jwk.clone()]));
    let jwks_url = serve_jwks(keys, Arc::new(AtomicUsize::new(0))).await;
    // The provider is trusted for RS256 only: an ES256 token is refused before any key lookup.
    let app = app_trusting(jwks_url, "RS256").await;
    let detail = app
        .get("/api/v1/auth/me", &key.sign(&claims(json!({}))))
        .await
        .problem(401);
    assert!(detail.contains("not allowed"), "{detail}");
}
