//! The web UI's side of the server: the cookie session with its CSRF token, the embedded
//! pages with their security headers, and the SPA fallback next to the API's own paths.

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use crate::helpers::{PASSWORD, Reply, TestApp, spawn_app_with, world};

/// One request with an optional session cookie, CSRF token, extra headers and JSON body.
async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    cookie: Option<&str>,
    csrf: Option<&str>,
    body: Option<&Value>,
) -> Reply {
    let mut request = app.client.request(method, app.url(path));
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, format!("mymonit_session={cookie}"));
    }
    if let Some(csrf) = csrf {
        request = request.header("x-csrf-token", csrf);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    Reply::read(request.send().await.unwrap()).await
}

/// A GET with the session cookie only, as a page's reads are.
async fn get_with_cookie(app: &TestApp, path: &str, cookie: &str) -> Reply {
    send(app, Method::GET, path, Some(cookie), None, None).await
}

/// Signs in through the UI's route: (cookie value, Set-Cookie header, body).
async fn open_session(app: &TestApp, username: &str) -> (String, String, Value) {
    let body = json!({"username": username, "password": PASSWORD});
    let reply = send(
        app,
        Method::POST,
        "/api/v1/auth/session",
        None,
        None,
        Some(&body),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let set_cookie = reply.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    let value = set_cookie
        .split(';')
        .next()
        .and_then(|pair| pair.strip_prefix("mymonit_session="))
        .unwrap()
        .to_string();
    (value, set_cookie, reply.json())
}

#[tokio::test]
async fn the_session_cookie_is_httponly_strict_and_needs_the_csrf_token_to_change_anything() {
    let world = world().await;
    let app = &world.app;
    let (cookie, set_cookie, body) = open_session(app, "aalcorn").await;
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain HTTP: {set_cookie}");
    assert_eq!(body["user"]["user_id"], "A001");
    assert_eq!(body["user"]["role"], "ADMIN");
    assert!(
        body.get("access_token").is_none(),
        "the page never sees the token"
    );
    let csrf = body["csrf_token"].as_str().unwrap().to_string();
    assert_eq!(csrf.len(), 64);

    // After a reload the page asks who is signed in and gets the same CSRF token.
    let again = get_with_cookie(app, "/api/v1/auth/session", &cookie).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.json()["csrf_token"], csrf.as_str());
    assert_eq!(again.json()["user"]["user_id"], "A001");
    // Reads need only the cookie.
    let experiments = get_with_cookie(app, "/api/v1/experiments", &cookie).await;
    assert_eq!(experiments.status, StatusCode::OK);

    // Writes need the CSRF token too: a cookie alone is what a forged request would have.
    let create = json!({"name": "from-the-ui"});
    for wrong in [None, Some("0".repeat(64).as_str()), Some("")] {
        let reply = send(
            app,
            Method::POST,
            "/api/v1/experiments",
            Some(&cookie),
            wrong,
            Some(&create),
        )
        .await;
        assert!(
            reply.problem(403).contains("X-CSRF-Token"),
            "{wrong:?}: {}",
            reply.text
        );
    }
    let experiments = get_with_cookie(app, "/api/v1/experiments", &cookie).await;
    assert!(!experiments.text.contains("from-the-ui"), "nothing created");
    let created = send(
        app,
        Method::POST,
        "/api/v1/experiments",
        Some(&cookie),
        Some(&csrf),
        Some(&create),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);

    // Bearer tokens (scripts) need no CSRF token: no browser sends them on its own.
    let bearer = app
        .call(
            Method::POST,
            "/api/v1/experiments",
            Some(&world.admin),
            Some(&json!({"name": "from-a-script"})),
        )
        .await;
    assert_eq!(bearer.status, StatusCode::CREATED, "{}", bearer.text);

    // Signing out needs the CSRF token, clears the cookie and kills the token.
    let refused = send(
        app,
        Method::DELETE,
        "/api/v1/auth/session",
        Some(&cookie),
        None,
        None,
    )
    .await;
    refused.problem(403);
    let out = send(
        app,
        Method::DELETE,
        "/api/v1/auth/session",
        Some(&cookie),
        Some(&csrf),
        None,
    )
    .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT, "{}", out.text);
    let cleared = out.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cleared.starts_with("mymonit_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    let after = get_with_cookie(app, "/api/v1/auth/session", &cookie).await;
    assert!(after.problem(401).contains("revoked"), "{}", after.text);
}

#[tokio::test]
async fn a_session_reports_the_same_errors_as_the_token_sign_in() {
    let world = world().await;
    let app = &world.app;
    let wrong = json!({"username": "phigg", "password": "not the password at all"});
    let reply = send(
        app,
        Method::POST,
        "/api/v1/auth/session",
        None,
        None,
        Some(&wrong),
    )
    .await;
    assert_eq!(reply.problem(401), "invalid username or password");
    assert!(reply.headers.get(header::SET_COOKIE).is_none());
    // No credentials at all: no session, and not an error (a visitor's first page).
    let none = send(app, Method::GET, "/api/v1/auth/session", None, None, None).await;
    assert_eq!(none.status, StatusCode::NO_CONTENT, "{}", none.text);
    // A dead cookie: 401, and the browser is told to drop it.
    let garbage = get_with_cookie(app, "/api/v1/auth/session", "garbage").await;
    garbage.problem(401);
    assert!(
        garbage.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    // A scientist's session has a scientist's rights, no more.
    let (cookie, _, body) = open_session(app, "phigg").await;
    let csrf = body["csrf_token"].as_str().unwrap();
    let refused = send(
        app,
        Method::POST,
        "/api/v1/experiments",
        Some(&cookie),
        Some(csrf),
        Some(&json!({"name": "nope"})),
    )
    .await;
    refused.problem(403);
    // Changing the password ends the session and drops its cookie.
    let change = json!({"current_password": PASSWORD, "new_password": "Vq7pLm2xZr9tWkJd"});
    let changed = send(
        app,
        Method::POST,
        "/api/v1/auth/password",
        Some(&cookie),
        Some(csrf),
        Some(&change),
    )
    .await;
    assert_eq!(changed.status, StatusCode::NO_CONTENT, "{}", changed.text);
    assert!(
        changed.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let after = get_with_cookie(app, "/api/v1/auth/session", &cookie).await;
    after.problem(401);
}

#[tokio::test]
async fn the_cookie_is_secure_behind_tls() {
    let app = spawn_app_with(|settings| settings.auth.secure_cookies = true).await;
    app.add_user("S001", "phigg", mymonit_model::Role::Scientist)
        .await;
    let (_, set_cookie, _) = open_session(&app, "phigg").await;
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");

    let plain = spawn_app_with(|_| {}).await;
    plain
        .add_user("S001", "phigg", mymonit_model::Role::Scientist)
        .await;
    let reply = plain
        .client
        .post(plain.url("/api/v1/auth/session"))
        .header("x-forwarded-proto", "https")
        .json(&json!({"username": "phigg", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let set_cookie = reply.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(set_cookie.contains("; Secure"), "{set_cookie}");
}

async fn page(app: &TestApp, path: &str, accept: &str) -> Reply {
    let request = app.client.get(app.url(path)).header(header::ACCEPT, accept);
    Reply::read(request.send().await.unwrap()).await
}

const BROWSER: &str = "text/html,application/xhtml+xml,*/*;q=0.8";

#[tokio::test]
async fn pages_come_with_a_strict_policy_and_the_api_keeps_its_answers() {
    let world = world().await;
    let app = &world.app;
    let built = mymonit_server::ui::is_built();
    if !built && std::env::var_os("CI").is_some() {
        panic!("CI must test the embedded UI: build web/dist before the server");
    }
    let home = page(app, "/", BROWSER).await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(
        home.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let csp = home.headers["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(home.headers["x-frame-options"], "DENY");
    assert_eq!(home.headers["x-content-type-options"], "nosniff");
    if built {
        assert!(home.text.contains("<script"), "{}", home.text);
        assert!(
            !home.text.contains("<script>"),
            "no inline script: {}",
            home.text
        );
    } else {
        assert!(home.text.contains("npm run build"), "{}", home.text);
    }

    // The SPA's own paths get the same page, even where the original API has a route
    // for another method (PUT /experiments/{id}).
    for path in ["/experiments/1", "/admin/users", "/audit"] {
        let reply = page(app, path, BROWSER).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(reply.text, home.text, "{path}");
    }
    // The API's answers do not change: JSON clients get 405/404 problems, missing files 404.
    page(app, "/experiments/1", "application/json")
        .await
        .problem(405);
    page(app, "/api/v1/no-such-thing", BROWSER)
        .await
        .problem(404);
    page(app, "/assets/missing.js", BROWSER).await.problem(404);
    let original = app
        .call(
            Method::PUT,
            "/experiments/1",
            None,
            Some(&json!({"name": "x"})),
        )
        .await;
    original.problem(401);
    let api = app.get("/api/v1/experiments", &world.scientist).await;
    assert_eq!(api.headers["x-content-type-options"], "nosniff");

    if built {
        // Hashed assets are cached for good and revalidated by ETag.
        let script = home
            .text
            .split('"')
            .find(|part| part.starts_with("/assets/") && part.ends_with(".js"))
            .unwrap_or_else(|| panic!("no script in {}", home.text));
        let asset = page(app, script, "*/*").await;
        assert_eq!(asset.status, StatusCode::OK);
        assert!(
            asset.headers[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .contains("javascript")
        );
        assert!(
            asset.headers[header::CACHE_CONTROL]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
        let etag = asset.headers[header::ETAG].to_str().unwrap().to_string();
        let again = app
            .client
            .get(app.url(script))
            .header(header::IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    }
}

#[tokio::test]
async fn the_api_documentation_runs_under_a_policy_of_its_own() {
    let world = world().await;
    for path in ["/docs/", "/docs/swagger-initializer.js"] {
        let reply = page(&world.app, path, BROWSER).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        let csp = reply.headers["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'self'",
            "script-src 'self';",
            "object-src 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
    }
    // No inline script that the policy would block.
    let index = page(&world.app, "/docs/", BROWSER).await;
    assert!(!index.text.contains("<script>"), "{}", index.text);
}
