//! Every route, and the layers around them (request id, tracing, panics, timeouts, body
//! limit). Unknown paths and methods get problem documents too.

use std::time::Duration;

use axum::{
    Router,
    extract::{DefaultBodyLimit, MatchedPath},
    http::{HeaderName, HeaderValue, Request, StatusCode, header},
    response::{IntoResponse, Response},
    routing::{get, post, put},
};
use tower_http::{
    catch_panic::CatchPanicLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    set_header::SetResponseHeaderLayer,
    timeout::TimeoutLayer,
    trace::{DefaultOnResponse, TraceLayer},
};
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::{api, compat, error::ApiError, openapi::ApiDoc, state::AppState};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application.
/// The API documentation's policy: Swagger UI's own scripts only (it has no inline script),
/// its styles (it sets some inline), its icons (data URLs), calls to this server, no framing.
const DOCS_CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; \
    object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn router(state: AppState) -> Router {
    let settings = state.settings.clone();
    let v1 = Router::new()
        .route("/auth/login", post(api::auth::login))
        .route("/auth/logout", post(api::auth::logout))
        .route(
            "/auth/session",
            post(api::auth::create_session)
                .get(api::auth::get_session)
                .delete(api::auth::delete_session),
        )
        .route("/auth/password", post(api::auth::change_password))
        .route("/auth/me", get(api::auth::me))
        .route(
            "/auth/tokens",
            get(api::personal_tokens::list).post(api::personal_tokens::create),
        )
        .route(
            "/auth/tokens/{token_id}",
            axum::routing::delete(api::personal_tokens::revoke),
        )
        .route("/audit", get(api::audit::list))
        .route("/audit/verify", get(api::audit::verify))
        .route("/users", get(api::users::list).post(api::users::create))
        .route(
            "/users/{user_id}",
            get(api::users::get)
                .patch(api::users::update)
                .put(api::users::update)
                .delete(api::users::erase),
        )
        .route(
            "/experiments",
            get(api::experiments::list).post(api::experiments::create),
        )
        .route(
            "/experiments/{experiment_id}",
            get(api::experiments::get)
                .patch(api::experiments::rename)
                .put(api::experiments::rename),
        )
        .route(
            "/experiments/{experiment_id}/measures",
            get(api::measures::list),
        )
        .route("/experiments/{experiment_id}/stats", get(api::stats::stats))
        .route(
            "/experiments/{experiment_id}/boxplot",
            get(api::stats::boxplot),
        )
        .route(
            "/experiments/{experiment_id}/series",
            get(api::stats::series),
        )
        .route(
            "/experiments/{experiment_id}/latest",
            get(api::stats::latest),
        )
        .route(
            "/experiments/{experiment_id}/stream",
            get(api::stats::stream),
        )
        .route(
            "/experiments/{experiment_id}/ingest-settings",
            get(api::experiments::get_ingest_settings).put(api::experiments::set_ingest_settings),
        )
        .route(
            "/experiments/{experiment_id}/retention",
            get(api::stats::get_retention).put(api::stats::set_retention),
        )
        .route(
            "/measure-types",
            get(api::measure_types::list).post(api::measure_types::create),
        )
        .route(
            "/associations",
            get(api::associations::list).post(api::associations::create),
        )
        .route(
            "/associations/{experiment_id}/{user_id}",
            axum::routing::delete(api::associations::delete),
        )
        .route(
            "/ingest",
            post(api::ingest::push).layer(DefaultBodyLimit::max(settings.max_ingest_bytes)),
        )
        .route(
            "/ingest-tokens",
            get(api::ingest_tokens::list).post(api::ingest_tokens::create),
        )
        .route(
            "/ingest-tokens/{token_id}",
            axum::routing::delete(api::ingest_tokens::revoke),
        )
        .route(
            "/experiments/{experiment_id}/alert-rules",
            get(api::alert_rules::list).post(api::alert_rules::create),
        )
        .route(
            "/experiments/{experiment_id}/alert-rules/{rule_id}",
            get(api::alert_rules::get)
                .patch(api::alert_rules::update)
                .delete(api::alert_rules::delete),
        )
        .route(
            "/experiments/{experiment_id}/alert-rules/{rule_id}/history",
            get(api::alert_rules::history),
        )
        .route(
            "/sources",
            get(api::sources::list).post(api::sources::create),
        )
        .route(
            "/sources/{source_id}",
            get(api::sources::get)
                .patch(api::sources::update)
                .delete(api::sources::delete),
        );

    let original = Router::new()
        .route("/users/", get(compat::list_users).post(compat::create_user))
        .route("/users/{user_id}", put(compat::update_user))
        .route(
            "/experiments/",
            get(compat::list_experiments).post(compat::create_experiment),
        )
        .route(
            "/experiments/{experiment_id}",
            put(compat::update_experiment),
        )
        .route("/measures/{experiment_id}", get(compat::list_measures))
        .route("/scientists-experiments/", get(compat::list_associations))
        .route(
            "/scientists-experiments/{experiment_id}/{scientist_id}",
            post(compat::associate),
        );

    // Every call with credentials is audited (the layer sees the route template).
    let audited = axum::middleware::from_fn_with_state(state.clone(), crate::audit::audit_calls);
    let v1 = v1.route_layer(audited.clone());
    let original = original.route_layer(audited.clone());
    let influx = crate::influx::routes().route_layer(audited);

    Router::new()
        .nest("/api/v1", v1)
        .merge(original)
        .merge(influx)
        .route("/healthz", get(api::health::healthz))
        .route("/readyz", get(api::health::readyz))
        .route("/.well-known/jwks.json", get(api::auth::jwks))
        .merge(
            Router::from(SwaggerUi::new("/docs").url("/api/v1/openapi.json", ApiDoc::openapi()))
                .layer(SetResponseHeaderLayer::overriding(
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(DOCS_CONTENT_SECURITY_POLICY),
                )),
        )
        // Pages of the web UI share paths with the original API (`/experiments/1` is a PUT
        // there), so a browser's GET of a page is served the UI wherever no API route
        // answers GET.
        .fallback(crate::ui::serve)
        .method_not_allowed_fallback(crate::ui::serve_page_or_405)
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(settings.request_timeout_secs),
        ))
        .layer(CatchPanicLayer::custom(
            |_: Box<dyn std::any::Any + Send>| -> Response {
                ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()
            },
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::metrics_http::track_requests,
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            axum::http::header::X_CONTENT_TYPE_OPTIONS,
            axum::http::HeaderValue::from_static("nosniff"),
        ))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request<_>| {
                    let route = request
                        .extensions()
                        .get::<MatchedPath>()
                        .map(MatchedPath::as_str)
                        .unwrap_or("unmatched");
                    let request_id = request
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or("");
                    tracing::info_span!("request", method = %request.method(), route, request_id)
                })
                // One line per response (status and latency) at info: the access log.
                .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        // Outermost: a client's id never becomes ours (it is kept apart, bounded, for the
        // audit trail).
        .layer(axum::middleware::from_fn(
            crate::audit::take_client_request_id,
        ))
        .with_state(state)
}
