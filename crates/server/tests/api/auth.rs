//! Sign-in, throttling, sign-out, password change and token attacks.

use std::time::Instant;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, spawn_app, spawn_app_with, world};

#[tokio::test]
async fn login_returns_a_bearer_token() {
    let world = world().await;
    let reply = world.app.login("phigg", PASSWORD).await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 3);
    let me = world.app.get("/api/v1/auth/me", token).await.json();
    assert_eq!(me["user_id"], "S001");
    assert_eq!(me["role"], "SCIENTIST");
}

#[tokio::test]
async fn unknown_user_and_wrong_password_look_the_same() {
    let world = world().await;
    let app = &world.app;
    let time = |username: &'static str, password: &'static str| async move {
        let start = Instant::now();
        let reply = app.login(username, password).await;
        (reply, start.elapsed())
    };
    let mut unknown_total = std::time::Duration::ZERO;
    let mut wrong_total = std::time::Duration::ZERO;
    for _ in 0..3 {
        let (unknown, unknown_time) = time("nobody-here", "whatever password 1").await;
        let (wrong, wrong_time) = time("phigg", "whatever password 1").await;
        assert_eq!(unknown.problem(401), wrong.problem(401));
        assert_eq!(unknown.json(), wrong.json());
        unknown_total += unknown_time;
        wrong_total += wrong_time;
    }
    // Both pay for one Argon2 verification: neither is several times faster than the other.
    let ratio = unknown_total.as_secs_f64() / wrong_total.as_secs_f64();
    assert!(
        (0.33..3.0).contains(&ratio),
        "unknown/wrong timing ratio {ratio:.2}"
    );
}

#[tokio::test]
async fn repeated_failures_are_throttled() {
    let world = world_with_limit().await;
    let app = &world;
    for _ in 0..3 {
        app.login("phigg", "not the password at all")
            .await
            .problem(401);
    }
    let blocked = app.login("phigg", "not the password at all").await;
    let detail = blocked.problem(429);
    assert!(detail.contains("try again"), "{detail}");
    let retry_after: u64 = blocked.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    // Even the right password is refused while throttled: no oracle.
    app.login("phigg", PASSWORD).await.problem(429);
    // Another account from the same client is not locked out.
    assert_eq!(app.login("kbouman", PASSWORD).await.status, StatusCode::OK);

    async fn world_with_limit() -> crate::helpers::TestApp {
        let app = spawn_app_with(|s| s.auth.max_failed_logins = 3).await;
        app.add_user("S001", "phigg", mymonit_model::Role::Scientist)
            .await;
        app.add_user("S002", "kbouman", mymonit_model::Role::Scientist)
            .await;
        app
    }
}

#[tokio::test]
async fn logout_revokes_the_token() {
    let world = world().await;
    let app = &world.app;
    let token = app.token("phigg").await;
    assert_eq!(
        app.get("/api/v1/auth/me", &token).await.status,
        StatusCode::OK
    );
    let reply = app
        .call(Method::POST, "/api/v1/auth/logout", Some(&token), None)
        .await;
    assert_eq!(reply.status, StatusCode::NO_CONTENT);
    let detail = app.get("/api/v1/auth/me", &token).await.problem(401);
    assert!(detail.contains("revoked"), "{detail}");
    // Other sessions of the same user are untouched.
    assert_eq!(
        app.get("/api/v1/auth/me", &world.scientist).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn password_change_enforces_policy_and_invalidates_old_tokens() {
    let world = world().await;
    let app = &world.app;
    let change =
        |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    let weak = app
        .call(
            Method::POST,
            "/api/v1/auth/password",
            Some(&world.scientist),
            Some(&change(PASSWORD, "password1234")),
        )
        .await;
    assert!(weak.problem(422).contains("too easy to guess"));
    assert_eq!(weak.json()["field"], "password");
    let wrong = app
        .call(
            Method::POST,
            "/api/v1/auth/password",
            Some(&world.scientist),
            Some(&change("nope nope nope", "Tr0ub4dor&3-horse-staple")),
        )
        .await;
    wrong.problem(403);
    let done = app
        .call(
            Method::POST,
            "/api/v1/auth/password",
            Some(&world.scientist),
            Some(&change(PASSWORD, "Tr0ub4dor&3-horse-staple")),
        )
        .await;
    assert_eq!(done.status, StatusCode::NO_CONTENT, "{}", done.text);
    app.get("/api/v1/auth/me", &world.scientist)
        .await
        .problem(401);
    app.login("phigg", PASSWORD).await.problem(401);
    let fresh = app.login("phigg", "Tr0ub4dor&3-horse-staple").await;
    assert_eq!(fresh.status, StatusCode::OK);
}

#[tokio::test]
async fn jwks_publishes_the_signing_key() {
    let app = spawn_app().await;
    let jwks = app
        .call(Method::GET, "/.well-known/jwks.json", None, None)
        .await
        .json();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert_eq!(key["alg"], "EdDSA");
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(key["x"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );
}

/// Signs claims with the server's own key, read from its data directory.
fn sign_with_server_key(app: &crate::helpers::TestApp, claims: &Value) -> String {
    let pkcs8 = std::fs::read(app.data_dir.join("jwt-signing-key.ed25519.pk8")).unwrap();
    jsonwebtoken::encode(
        &Header::new(Algorithm::EdDSA),
        claims,
        &EncodingKey::from_ed_der(&pkcs8),
    )
    .unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn token_attacks_are_refused() {
    let world = world().await;
    let app = &world.app;
    let valid = |overrides: Value| {
        let mut claims = json!({"iss": "mymonit", "sub": "A001", "aud": "mymonit",
            "exp": now() + 600, "nbf": now() - 5, "iat": now() - 5, "jti": "x", "generation": 0});
        for (key, value) in overrides.as_object().unwrap() {
            claims[key] = value.clone();
        }
        claims
    };
    // The control: a well-formed token signed by the server's key works.
    let good = sign_with_server_key(app, &valid(json!({})));
    assert_eq!(
        app.get("/api/v1/auth/me", &good).await.status,
        StatusCode::OK
    );

    let parts: Vec<&str> = world.admin.split('.').collect();
    let mut attacks: Vec<(&str, String)> = Vec::new();
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    attacks.push(("alg=none", format!("{none_header}.{}.", parts[1])));
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    let mut escalated = claims.clone();
    escalated["sub"] = json!("S001");
    attacks.push((
        "forged signature",
        format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(escalated.to_string()),
            parts[2]
        ),
    ));
    attacks.push((
        "expired",
        sign_with_server_key(
            app,
            &valid(json!({"exp": now() - 3600, "iat": now() - 7200, "nbf": now() - 7200})),
        ),
    ));
    attacks.push((
        "not yet valid",
        sign_with_server_key(app, &valid(json!({"nbf": now() + 3600}))),
    ));
    attacks.push((
        "wrong audience",
        sign_with_server_key(app, &valid(json!({"aud": "another-service"}))),
    ));
    attacks.push((
        "untrusted issuer",
        sign_with_server_key(app, &valid(json!({"iss": "https://evil.example"}))),
    ));
    // HS256 keyed with the public key (algorithm confusion).
    let jwks = app
        .call(Method::GET, "/.well-known/jwks.json", None, None)
        .await
        .json();
    let public = URL_SAFE_NO_PAD
        .decode(jwks["keys"][0]["x"].as_str().unwrap())
        .unwrap();
    attacks.push((
        "HS256 with the public key",
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &valid(json!({})),
            &EncodingKey::from_secret(&public),
        )
        .unwrap(),
    ));
    // A key pair that is not the server's.
    let other = spawn_app().await;
    attacks.push((
        "another server's key",
        sign_with_server_key(&other, &valid(json!({}))),
    ));
    attacks.push(("garbage", "not-a-token".into()));
    attacks.push((
        "user unknown to MyMonit",
        sign_with_server_key(app, &valid(json!({"sub": "Z999"}))),
    ));

    for (name, token) in attacks {
        let reply = app.get("/api/v1/users", &token).await;
        assert_eq!(
            reply.status,
            StatusCode::UNAUTHORIZED,
            "{name}: {}",
            reply.text
        );
        reply.problem(401);
    }
    // Other schemes and missing headers.
    let basic = app
        .raw(Method::GET, "/api/v1/users", None, None, Vec::new())
        .await;
    basic.problem(401);
    let reply = app
        .client
        .get(app.url("/api/v1/users"))
        .header("Authorization", format!("Basic {}", world.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::UNAUTHORIZED);
}

/// Signs in as `username` with `password`, the request forwarded for `forwarded_for`.
async fn sign_in_forwarded(
    app: &crate::helpers::TestApp,
    username: &str,
    password: &str,
    forwarded_for: &str,
) -> StatusCode {
    app.client
        .post(app.url("/api/v1/auth/login"))
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_has_its_own_brake() {
    let app = spawn_app_with(|s| {
        s.trusted_proxies = vec!["127.0.0.1".into()];
        s.auth.max_failed_logins_per_client = 5;
    })
    .await;
    app.add_user("S001", "phigg", mymonit_model::Role::Scientist)
        .await;
    // One client behind the proxy sweeps usernames until it is braked...
    for attempt in 0..5 {
        let status =
            sign_in_forwarded(&app, &format!("guess-{attempt}"), "nope", "198.51.100.1").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let braked = sign_in_forwarded(&app, "guess-5", "nope", "198.51.100.1").await;
    assert_eq!(braked, StatusCode::TOO_MANY_REQUESTS);
    // ... while another client behind the same proxy signs in.
    let other = sign_in_forwarded(&app, "phigg", PASSWORD, "198.51.100.2").await;
    assert_eq!(other, StatusCode::OK);
    // The audit trail names the client, not the proxy.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let records = app
        .state
        .audit_trail
        .audit_records(&mymonit_store::AuditFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .unwrap();
    let clients: Vec<String> = records
        .iter()
        .filter_map(|r| r.event.client.clone())
        .collect();
    assert!(clients.contains(&"198.51.100.2".to_string()), "{clients:?}");
    assert!(!clients.contains(&"127.0.0.1".to_string()), "{clients:?}");
}

#[tokio::test]
async fn forwarding_headers_from_untrusted_peers_are_ignored() {
    let app = spawn_app_with(|s| s.auth.max_failed_logins_per_client = 5).await;
    // A client changing its claimed address at each try is still one client.
    for attempt in 0..5 {
        let status = sign_in_forwarded(
            &app,
            &format!("guess-{attempt}"),
            "nope",
            &format!("198.51.100.{attempt}"),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let braked = sign_in_forwarded(&app, "guess-5", "nope", "198.51.100.99").await;
    assert_eq!(braked, StatusCode::TOO_MANY_REQUESTS);
}
