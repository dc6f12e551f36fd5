//! Pull sources under `/api/v1/sources`: admins attach them to experiments; scientists see the
//! state of their experiments' sources. A source is checked (reachable, of its kind, the
//! secret accepted) before it is saved, and again when its URL or secret changes. The secret
//! is write-only: it is sealed for the database and never returned or logged.

use axum::{Json, extract::State, http::StatusCode, response::IntoResponse};
use mymonit_model::{
    Action,
    permissions::Scope,
    source::{DEFAULT_INTERVAL_SECS, INTERVAL_RANGE, Source, SourceKind, check_url},
    time::format_rfc3339,
};
use mymonit_store::sources::{NewSource, SourcePatch};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiJson, ApiPath, ApiQuery, experiments::visible_experiment};
use crate::{
    auth::AuthUser,
    error::{ApiError, ApiResult},
    sources::{SourceError, check, now_ms},
    state::AppState,
};

/// Longest include filter, in bytes.
const MAX_INCLUDE_BYTES: usize = 1024;
/// Longest secret, in bytes.
const MAX_SECRET_BYTES: usize = 4096;

/// A source to attach.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSourceRequest {
    /// The experiment its points go to.
    pub experiment_id: i64,
    /// `fmd` (Flask-MonitoringDashboard 1.12–2.0) or `prometheus` (a `/metrics` page).
    #[schema(value_type = String, example = "fmd")]
    pub kind: String,
    /// FMD: the dashboard's root (`http://host:5000/dashboard`); Prometheus: the page.
    #[schema(example = "http://127.0.0.1:5055/dashboard")]
    pub url: String,
    /// FMD: the dashboard's `security_token` (required); Prometheus: a Bearer token, if the
    /// page wants one. Never returned.
    pub secret: Option<String>,
    /// Seconds between fetches, 1 to 86400 (default 60).
    pub interval_secs: Option<u32>,
    /// Whether to fetch it (default true).
    pub enabled: Option<bool>,
    /// Prometheus: keep only metric names this regular expression matches.
    pub include: Option<String>,
}

/// A change of a source; absent fields stay as they are.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceChange {
    /// A new URL (checked again).
    pub url: Option<String>,
    /// A new secret (checked again); an empty string removes it.
    pub secret: Option<String>,
    /// A new interval.
    pub interval_secs: Option<u32>,
    /// Enables or disables fetching.
    pub enabled: Option<bool>,
    /// A new include filter; an empty string removes it.
    pub include: Option<String>,
}

/// Which sources to list.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SourceFilter {
    /// Only this experiment's.
    pub experiment_id: Option<i64>,
}

/// A source and how its fetching goes. The secret is never part of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SourceView {
    /// Its id.
    pub source_id: i64,
    /// The experiment its points go to.
    pub experiment_id: i64,
    /// That experiment's name.
    pub experiment: String,
    /// `fmd` or `prometheus`.
    pub kind: SourceKind,
    /// Where it is fetched (for scientists, without its query, which may hold a credential).
    pub url: String,
    /// Seconds between fetches.
    pub interval_secs: u32,
    /// Whether it is fetched.
    pub enabled: bool,
    /// Prometheus' metric-name filter.
    pub include: Option<String>,
    /// Whether a secret is stored.
    pub has_secret: bool,
    /// When it was attached (RFC 3339).
    pub created_at: String,
    /// `disabled`, `waiting` (not fetched yet), `loading` (walking its history), `ok` or
    /// `failing` (the last fetch failed).
    pub state: String,
    /// The last fetch that succeeded.
    pub last_success_at: Option<String>,
    /// Why the last failed fetch failed (kept after a success; `failures` says whether it
    /// is current).
    pub last_error: Option<String>,
    /// When it last failed.
    pub last_error_at: Option<String>,
    /// Failed fetches since the last success.
    pub failures: u32,
    /// Points stored from it in all.
    pub points_fetched: u64,
    /// Seconds of its history still to load (0 when caught up).
    pub backlog: i64,
    /// Its history is loaded up to here (FMD).
    pub loaded_until: Option<String>,
    /// Its first record (FMD).
    pub history_from: Option<String>,
    /// When it is next fetched.
    pub next_fetch_at: Option<String>,
    /// Seconds since the last success (or since it was attached, before any).
    pub lag_secs: i64,
}

fn ms_to_rfc3339(ms: i64) -> String {
    format_rfc3339(ms.saturating_mul(1_000_000))
}

fn seconds_to_rfc3339(seconds: i64) -> String {
    format_rfc3339(seconds.saturating_mul(1_000_000_000))
}

impl SourceView {
    fn of(source: Source, experiment: String) -> Self {
        let now = now_ms();
        let state = if !source.enabled {
            "disabled"
        } else if source.failures > 0 {
            "failing"
        } else if source.last_success_ms.is_none() {
            "waiting"
        } else if source.backlog_secs > 0 {
            "loading"
        } else {
            "ok"
        };
        let cursor_is_time = source.kind == SourceKind::Fmd;
        Self {
            source_id: source.source_id,
            experiment_id: source.experiment_id,
            experiment,
            kind: source.kind,
            url: source.url,
            interval_secs: source.interval_secs,
            enabled: source.enabled,
            include: source.include,
            has_secret: source.has_secret,
            created_at: ms_to_rfc3339(source.created_at_ms),
            state: state.to_owned(),
            last_success_at: source.last_success_ms.map(ms_to_rfc3339),
            last_error: source.last_error,
            last_error_at: source.last_error_ms.map(ms_to_rfc3339),
            failures: source.failures,
            points_fetched: source.points_fetched,
            backlog: source.backlog_secs,
            loaded_until: source
                .cursor
                .filter(|_| cursor_is_time)
                .map(seconds_to_rfc3339),
            history_from: source.history_from.map(seconds_to_rfc3339),
            next_fetch_at: source.enabled.then(|| ms_to_rfc3339(source.next_fetch_ms)),
            lag_secs: (now - source.last_success_ms.unwrap_or(source.created_at_ms)).max(0) / 1_000,
        }
    }
}

impl SourceView {
    /// What a scope may see: admins the whole URL (to edit it), scientists no query.
    fn for_scope(mut self, scope: Scope) -> Self {
        if scope == Scope::Own {
            self.url = crate::sources::shown(&self.url);
        }
        self
    }
}

/// A refused check as a 422 naming the problem.
fn refused(err: SourceError) -> ApiError {
    match err {
        SourceError::Store(err) => err.into(),
        SourceError::Sealed(err) => ApiError::Internal(anyhow::anyhow!(err)),
        SourceError::Secret(text) => ApiError::Invalid(text, Some("secret")),
        other => ApiError::Invalid(other.to_string(), Some("url")),
    }
}

/// A dashboard's URL is its root: the export's paths are appended to it.
fn check_kind_url(kind: SourceKind, url: &str) -> ApiResult<()> {
    if kind == SourceKind::Fmd && url.contains(['?', '#']) {
        return Err(ApiError::Invalid(
            "a Flask-MonitoringDashboard's URL is its root, such as http://host:5000/dashboard, \
             without a query"
                .into(),
            Some("url"),
        ));
    }
    Ok(())
}

fn check_interval(interval: u32) -> ApiResult<u32> {
    if INTERVAL_RANGE.contains(&interval) {
        Ok(interval)
    } else {
        Err(ApiError::Invalid(
            format!(
                "{interval}: from {} to {} seconds",
                INTERVAL_RANGE.start(),
                INTERVAL_RANGE.end()
            ),
            Some("interval_secs"),
        ))
    }
}

fn check_secret(secret: &str) -> ApiResult<()> {
    if secret.len() > MAX_SECRET_BYTES || secret.chars().any(char::is_control) {
        return Err(ApiError::Invalid(
            format!("at most {MAX_SECRET_BYTES} bytes, no control characters"),
            Some("secret"),
        ));
    }
    Ok(())
}

/// The include filter, compiled (and bounded like InfluxQL's regexes).
fn include_filter(kind: SourceKind, include: Option<&str>) -> ApiResult<Option<regex::Regex>> {
    let Some(pattern) = include.filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    if kind != SourceKind::Prometheus {
        return Err(ApiError::Invalid(
            "only Prometheus sources filter metric names".into(),
            Some("include"),
        ));
    }
    if pattern.len() > MAX_INCLUDE_BYTES {
        return Err(ApiError::Invalid(
            format!("at most {MAX_INCLUDE_BYTES} bytes"),
            Some("include"),
        ));
    }
    regex::RegexBuilder::new(pattern)
        .size_limit(1 << 20)
        .build()
        .map(Some)
        .map_err(|err| {
            ApiError::Invalid(format!("not a regular expression: {err}"), Some("include"))
        })
}

/// Attaches a source to an experiment, once it checked out.
#[utoipa::path(post, path = "/api/v1/sources", tag = "sources", security(("bearer" = [])),
    request_body = NewSourceRequest,
    responses((status = 201, body = SourceView),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
        (status = 404, description = "No such experiment", body = crate::error::Problem),
        (status = 422, description = "Invalid, or the check failed: `detail` names the problem", body = crate::error::Problem)))]
pub async fn create(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiJson(request): ApiJson<NewSourceRequest>,
) -> ApiResult<impl IntoResponse> {
    actor.require(Action::ManageSources)?;
    let experiment =
        visible_experiment(&state, &actor, Action::ManageSources, request.experiment_id).await?;
    let kind: SourceKind =
        request
            .kind
            .parse()
            .map_err(|err: mymonit_model::source::UnknownSourceKind| {
                ApiError::Invalid(err.to_string(), Some("kind"))
            })?;
    let url = request.url.trim().to_owned();
    check_url(&url).map_err(|err| ApiError::Invalid(err.reason, Some("url")))?;
    check_kind_url(kind, &url)?;
    let interval_secs = check_interval(request.interval_secs.unwrap_or(DEFAULT_INTERVAL_SECS))?;
    let secret = request.secret.filter(|s| !s.is_empty());
    if let Some(secret) = &secret {
        check_secret(secret)?;
    }
    let include = include_filter(kind, request.include.as_deref())?;
    check(
        &state.fetcher,
        kind,
        &url,
        secret.as_deref(),
        include.as_ref(),
    )
    .await
    .map_err(refused)?;
    let sealed_secret = match &secret {
        Some(secret) => Some(
            state
                .tokens
                .seal(secret)
                .map_err(|err| ApiError::Internal(anyhow::anyhow!(err)))?,
        ),
        None => None,
    };
    let source = state
        .sources
        .create_source(&NewSource {
            experiment_id: experiment.experiment_id,
            kind,
            url,
            sealed_secret,
            include: include.map(|r| r.as_str().to_owned()),
            interval_secs,
            enabled: request.enabled.unwrap_or(true),
            now_ms: now_ms(),
        })
        .await?;
    state.sources_changed.notify_one();
    tracing::info!(actor = %actor.user.user_id, source_id = source.source_id, kind = %kind, "source attached");
    Ok((
        StatusCode::CREATED,
        Json(SourceView::of(source, experiment.name)),
    ))
}

/// Lists sources: admins all (or one experiment's), scientists those of their experiments.
#[utoipa::path(get, path = "/api/v1/sources", tag = "sources", security(("bearer" = [])),
    params(SourceFilter),
    responses((status = 200, body = Vec<SourceView>),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem)))]
pub async fn list(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiQuery(filter): ApiQuery<SourceFilter>,
) -> ApiResult<Json<Vec<SourceView>>> {
    let scope = actor.require(Action::ListSources)?;
    if let Some(experiment_id) = filter.experiment_id {
        visible_experiment(&state, &actor, Action::ListSources, experiment_id).await?;
    }
    let visible: Option<std::collections::BTreeMap<i64, String>> = match scope {
        Scope::All => None,
        Scope::Own => Some(
            state
                .meta
                .list_experiments_of(&actor.user.user_id)
                .await?
                .into_iter()
                .map(|e| (e.experiment_id, e.name))
                .collect(),
        ),
    };
    let names: std::collections::BTreeMap<i64, String> = match &visible {
        Some(visible) => visible.clone(),
        None => state
            .meta
            .list_experiments()
            .await?
            .into_iter()
            .map(|e| (e.experiment_id, e.name))
            .collect(),
    };
    let sources = state.sources.list_sources(filter.experiment_id).await?;
    Ok(Json(
        sources
            .into_iter()
            .filter(|source| {
                visible
                    .as_ref()
                    .is_none_or(|visible| visible.contains_key(&source.experiment_id))
            })
            .map(|source| {
                let name = names
                    .get(&source.experiment_id)
                    .cloned()
                    .unwrap_or_default();
                SourceView::of(source, name).for_scope(scope)
            })
            .collect(),
    ))
}

/// A source the actor may see, or 404/403.
async fn visible_source(
    state: &AppState,
    actor: &AuthUser,
    source_id: i64,
    action: Action,
) -> ApiResult<(Source, String)> {
    actor.require(action)?;
    let source = state
        .sources
        .get_source(source_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("source {source_id}")))?;
    let experiment = visible_experiment(state, actor, action, source.experiment_id).await?;
    Ok((source, experiment.name))
}

/// One source.
#[utoipa::path(get, path = "/api/v1/sources/{source_id}", tag = "sources", security(("bearer" = [])),
    params(("source_id" = i64, Path)),
    responses((status = 200, body = SourceView),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem)))]
pub async fn get(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiPath(source_id): ApiPath<i64>,
) -> ApiResult<Json<SourceView>> {
    let scope = actor.require(Action::ListSources)?;
    let (source, experiment) =
        visible_source(&state, &actor, source_id, Action::ListSources).await?;
    Ok(Json(SourceView::of(source, experiment).for_scope(scope)))
}

/// Changes a source; a new URL or secret is checked first.
#[utoipa::path(patch, path = "/api/v1/sources/{source_id}", tag = "sources", security(("bearer" = [])),
    params(("source_id" = i64, Path)), request_body = SourceChange,
    responses((status = 200, body = SourceView),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem),
        (status = 422, description = "Invalid, or the check failed", body = crate::error::Problem)))]
pub async fn update(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiPath(source_id): ApiPath<i64>,
    ApiJson(change): ApiJson<SourceChange>,
) -> ApiResult<Json<SourceView>> {
    let (source, experiment) =
        visible_source(&state, &actor, source_id, Action::ManageSources).await?;
    let url = match change.url.as_deref().map(str::trim) {
        Some(url) => {
            check_url(url).map_err(|err| ApiError::Invalid(err.reason, Some("url")))?;
            check_kind_url(source.kind, url)?;
            Some(url.to_owned())
        }
        None => None,
    };
    if let Some(interval) = change.interval_secs {
        check_interval(interval)?;
    }
    if let Some(secret) = &change.secret {
        check_secret(secret)?;
    }
    let include = match change.include.as_deref() {
        Some(pattern) => Some(include_filter(source.kind, Some(pattern))?),
        None => None,
    };
    let mut sealed_secret = None;
    if url.is_some() || change.secret.is_some() || include.is_some() {
        let secret = match (&change.secret, &source.has_secret) {
            (Some(secret), _) => Some(secret.clone()).filter(|s| !s.is_empty()),
            (None, true) => state
                .sources
                .sealed_secret(source_id)
                .await?
                .map(|sealed| state.tokens.open(&sealed))
                .transpose()
                .map_err(|err| {
                    ApiError::Invalid(format!("{err}: give the secret again"), Some("secret"))
                })?,
            (None, false) => None,
        };
        let filter = match &include {
            Some(filter) => filter.clone(),
            None => include_filter(source.kind, source.include.as_deref())?,
        };
        check(
            &state.fetcher,
            source.kind,
            url.as_deref().unwrap_or(&source.url),
            secret.as_deref(),
            filter.as_ref(),
        )
        .await
        .map_err(refused)?;
        if let Some(secret) = &change.secret {
            sealed_secret = Some(if secret.is_empty() {
                None
            } else {
                Some(
                    state
                        .tokens
                        .seal(secret)
                        .map_err(|err| ApiError::Internal(anyhow::anyhow!(err)))?,
                )
            });
        }
    }
    let updated = state
        .sources
        .update_source(
            source_id,
            &SourcePatch {
                url,
                sealed_secret,
                include: include.map(|filter| filter.map(|r| r.as_str().to_owned())),
                interval_secs: change.interval_secs,
                enabled: change.enabled,
            },
        )
        .await?
        .ok_or_else(|| ApiError::not_found(format!("source {source_id}")))?;
    state.sources_changed.notify_one();
    tracing::info!(actor = %actor.user.user_id, source_id, "source changed");
    Ok(Json(SourceView::of(updated, experiment)))
}

/// Detaches a source; the points it brought stay.
#[utoipa::path(delete, path = "/api/v1/sources/{source_id}", tag = "sources", security(("bearer" = [])),
    params(("source_id" = i64, Path)),
    responses((status = 204, description = "Deleted; its points stay"),
        (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem)))]
pub async fn delete(
    State(state): State<AppState>,
    actor: AuthUser,
    ApiPath(source_id): ApiPath<i64>,
) -> ApiResult<StatusCode> {
    visible_source(&state, &actor, source_id, Action::ManageSources).await?;
    if !state.sources.delete_source(source_id).await? {
        return Err(ApiError::not_found(format!("source {source_id}")));
    }
    tracing::info!(actor = %actor.user.user_id, source_id, "source deleted");
    Ok(StatusCode::NO_CONTENT)
}
