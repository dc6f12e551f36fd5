//! The web UI: the files of `web/dist`, embedded in the binary at build time, served at `/`
//! with a fallback to `index.html` for the single-page app's own paths, under a strict
//! Content-Security-Policy. A binary built before `web/dist` existed serves a page saying
//! how to build the UI; the API works the same either way.

use axum::{
    body::Body,
    http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header},
    response::{IntoResponse, Response},
};

use crate::error::ApiError;

/// The built UI (`web/dist`), embedded in release and debug builds alike.
#[derive(rust_embed::RustEmbed)]
#[folder = "../../web/dist"]
#[allow_missing = true]
struct Assets;

/// Pages may load scripts, styles, images and fonts from MyMonit only, talk to MyMonit
/// only, and be framed by nobody.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
    object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// Shown at `/` by a binary built without the UI.
const NOT_BUILT: &str = "<!doctype html>
<html lang=\"en\"><head><meta charset=\"utf-8\"><title>MyMonit</title></head>
<body><h1>MyMonit</h1>
<p>This MyMonit binary was built without its web UI. To build it, from the source tree:</p>
<pre>cd web &amp;&amp; npm ci &amp;&amp; npm run build &amp;&amp; cd .. &amp;&amp; cargo build --release</pre>
<p>(<code>./scripts/demo</code> does all of that and starts the demo.)
The API works without the UI: see <a href=\"/docs\">/docs</a>.</p>
</body></html>
";

/// Whether the UI built into this binary.
pub fn is_built() -> bool {
    Assets::get("index.html").is_some()
}

/// Fallback for paths no route matched: a UI file, or the page for a browser asking for
/// one (`Accept: text/html`), else the API's 404 problem (`curl …/metrics` on the API's
/// port says "no such route", not HTML).
pub async fn serve(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if !is_page_request(&method, uri.path()) {
        return ApiError::NotFound("no such route".into()).into_response();
    }
    let path = uri.path().trim_start_matches('/');
    if !path.is_empty()
        && let Some(file) = Assets::get(path)
    {
        return file_response(path, file, &headers);
    }
    let last_segment = path.rsplit('/').next().unwrap_or_default();
    if last_segment.contains('.') {
        // A missing script or image, not a page: say so rather than answer with HTML.
        return ApiError::NotFound(format!("no such file: /{path}")).into_response();
    }
    if path.is_empty() || wants_html(&headers) {
        page(&headers)
    } else {
        ApiError::NotFound("no such route".into()).into_response()
    }
}

/// Fallback for a path whose routes do not take this method: the UI page when a browser
/// asks for one (the original API's `PUT /experiments/{id}` shares its path with the
/// dashboard page), else 405.
pub async fn serve_page_or_405(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if wants_html(&headers) && is_page_request(&method, uri.path()) {
        page(&headers)
    } else {
        ApiError::MethodNotAllowed.into_response()
    }
}

fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

fn is_page_request(method: &Method, path: &str) -> bool {
    (method == Method::GET || method == Method::HEAD)
        && path != "/api"
        && !path.starts_with("/api/")
        && !path.starts_with("/.well-known/")
}

/// The single-page app's entry point, or the explanation when it was not built.
fn page(headers: &HeaderMap) -> Response {
    match Assets::get("index.html") {
        Some(file) => file_response("index.html", file, headers),
        None => with_security_headers(
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                )],
                NOT_BUILT,
            )
                .into_response(),
        ),
    }
}

fn file_response(path: &str, file: rust_embed::EmbeddedFile, headers: &HeaderMap) -> Response {
    let etag = format!("\"{}\"", hex::encode(file.metadata.sha256_hash()));
    // Vite names the files under assets/ by their content hash: they never change.
    let cache = if path.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag));
    let mut response = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut response = Response::new(Body::from(file.data));
        if let Ok(value) = HeaderValue::from_str(file.metadata.mimetype()) {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        response
    };
    let response_headers = response.headers_mut();
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(value) = HeaderValue::from_str(&etag) {
        response_headers.insert(header::ETAG, value);
    }
    with_security_headers(response)
}

fn with_security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "same-origin"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        (
            "permissions-policy",
            "camera=(), microphone=(), geolocation=(), payment=()",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_paths_are_never_pages() {
        assert!(!is_page_request(&Method::GET, "/api/v1/nothing"));
        assert!(!is_page_request(&Method::GET, "/api"));
        assert!(!is_page_request(&Method::GET, "/.well-known/other"));
        assert!(!is_page_request(&Method::POST, "/experiments/1"));
        assert!(is_page_request(&Method::GET, "/experiments/1"));
        assert!(is_page_request(&Method::HEAD, "/"));
    }
}
