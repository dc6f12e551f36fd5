//! `GET`/`POST /query`: InfluxQL. Reads need a personal access token or an access token of
//! a user who may read measures, and see only the experiments that user may read; Telegraf's
//! `CREATE DATABASE` at start-up comes with its ingest token.

use std::collections::{BTreeSet, HashMap};

use axum::{
    Json,
    extract::{Query, Request, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use mymonit_formats::line_protocol::FIELD_TAG;
use mymonit_influxql::{
    Parsed, QueryError, SeriesResult, StatementResult,
    ast::{KeyMatch, NameMatch, Page, Statement},
    condition::{TagFilter, compile_regex},
};
use mymonit_model::{Action, Experiment, permissions::Scope};
use serde_json::Value;

use super::{
    InfluxError,
    catalogue::{Catalogue, field_of},
    credentials::Credentials,
    write::ingest_token,
};
use crate::{
    api::experiments::list_experiments,
    auth::{AuthUser, authenticate, authenticate_personal, note_actor},
    error::ApiError,
    state::AppState,
};

/// Who is asking.
enum Caller {
    /// A user, by a personal access token or an access token.
    User(Box<AuthUser>),
    /// A source, by its ingest token: it may only create (find) its databases.
    Source(mymonit_model::ingest::IngestToken),
}

/// `GET`/`POST /query?q=…&db=…[&epoch=…]` (`q` may also come in a form body).
pub async fn query(
    State(state): State<AppState>,
    Query(mut params): Query<HashMap<String, String>>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let is_form = parts
        .headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    if is_form && let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await {
        for (key, value) in form_urlencoded::parse(&bytes) {
            params
                .entry(key.into_owned())
                .or_insert_with(|| value.into_owned());
        }
    }
    let Some(text) = params.get("q").filter(|q| !q.trim().is_empty()) else {
        return InfluxError::V1(
            StatusCode::BAD_REQUEST,
            "missing required parameter \"q\"".into(),
        )
        .into_response();
    };
    let statements = match mymonit_influxql::parse(text) {
        Ok(statements) => statements,
        Err(err) => {
            return InfluxError::V1(
                StatusCode::BAD_REQUEST,
                format!("error parsing query: {err}"),
            )
            .into_response();
        }
    };
    let caller = match caller(&state, &parts).await {
        Ok(caller) => caller,
        Err(err) => return err.into_response(),
    };
    let database = params.get("db").cloned().unwrap_or_default();
    // InfluxDB reads an epoch it does not know as nanoseconds.
    let epoch = mymonit_influxql::Epoch::parse(params.get("epoch").map(String::as_str))
        .unwrap_or(mymonit_influxql::Epoch::Unit(1));
    let mut results = Vec::with_capacity(statements.len());
    for (statement_id, statement) in statements.into_iter().enumerate() {
        let mut result = StatementResult {
            statement_id,
            ..Default::default()
        };
        match run(&state, &caller, &database, epoch, statement).await {
            Ok(series) => result.series = series,
            Err(err) => result.error = Some(err.0),
        }
        results.push(result);
    }
    Json(mymonit_influxql::Response { results }).into_response()
}

/// The caller: a user (personal access token, access token) or a source (ingest token).
async fn caller(
    state: &AppState,
    parts: &axum::http::request::Parts,
) -> Result<Caller, InfluxError> {
    let unauthorized = |text: String| InfluxError::V1(StatusCode::UNAUTHORIZED, text);
    let credentials = Credentials::read(parts).map_err(unauthorized)?;
    let Some(secret) = credentials.secret.as_deref() else {
        return Err(unauthorized(
            "authorization failed: send a personal access token (user: your username, \
             password: the token) or an access token"
                .into(),
        ));
    };
    let user = if secret.starts_with(mymonit_model::personal_token::PERSONAL_TOKEN_PREFIX) {
        authenticate_personal(state, secret, credentials.username.as_deref()).await
    } else if secret.starts_with(mymonit_model::ingest::TOKEN_PREFIX) {
        return ingest_token(state, parts, false).await.map(Caller::Source);
    } else {
        authenticate(state, secret).await
    };
    match user {
        Ok(user) => {
            note_actor(parts, &user.user);
            Ok(Caller::User(Box::new(user)))
        }
        Err(ApiError::Unauthenticated(text)) => {
            Err(unauthorized(format!("authorization failed: {text}")))
        }
        Err(other) => Err(InfluxError::from_api(false, other)),
    }
}

pub(super) fn store_error(err: impl Into<ApiError>) -> QueryError {
    let err: ApiError = err.into();
    if let ApiError::Internal(inner) = &err {
        tracing::error!(error = %inner, "InfluxQL statement failed");
        return QueryError::new("internal error");
    }
    QueryError::new(err.to_string())
}

/// The experiments a user may read measures of (none for admins and auditors).
async fn readable(state: &AppState, user: &AuthUser) -> Result<Vec<Experiment>, QueryError> {
    match user.role().may(Action::ReadMeasures) {
        None => Ok(Vec::new()),
        Some(Scope::All | Scope::Own) => list_experiments(state, user).await.map_err(store_error),
    }
}

/// The experiment a statement reads: `ON db` or the `db` parameter, if the caller may read it.
async fn database(
    state: &AppState,
    user: &AuthUser,
    on: Option<&str>,
    default: &str,
) -> Result<Experiment, QueryError> {
    let name = on.unwrap_or(default);
    if name.is_empty() {
        return Err(QueryError::new("database name required"));
    }
    readable(state, user)
        .await?
        .into_iter()
        .find(|experiment| experiment.name == name)
        .ok_or_else(|| {
            QueryError::new(format!(
                "database not found: {name} (or you may not read it: a scientist reads the \
                 experiments associated with them)"
            ))
        })
}

async fn run(
    state: &AppState,
    caller: &Caller,
    default_db: &str,
    epoch: mymonit_influxql::Epoch,
    statement: Parsed,
) -> Result<Vec<SeriesResult>, QueryError> {
    let statement = match statement {
        Parsed::Statement(statement) => statement,
        Parsed::Unsupported(what) => {
            return Err(QueryError::new(format!(
                "{what} is not supported: MyMonit answers SELECT, SHOW DATABASES, SHOW \
                 MEASUREMENTS, SHOW FIELD KEYS, SHOW TAG KEYS, SHOW TAG VALUES, SHOW RETENTION \
                 POLICIES and CREATE DATABASE"
            )));
        }
    };
    if let Statement::CreateDatabase { name } = &statement {
        return create_database(state, caller, name).await;
    }
    let user = match caller {
        Caller::User(user) => user,
        Caller::Source(_) => {
            return Err(QueryError::new(
                "an ingest token may only write (and CREATE DATABASE): read with a personal \
                 access token",
            ));
        }
    };
    match statement {
        Statement::ShowDatabases => {
            let values = readable(state, user)
                .await?
                .into_iter()
                .map(|experiment| vec![Value::from(experiment.name)])
                .collect();
            Ok(vec![SeriesResult {
                name: "databases".into(),
                columns: vec!["name".into()],
                values,
                ..Default::default()
            }])
        }
        Statement::ShowRetentionPolicies { on } => {
            database(state, user, on.as_deref(), default_db).await?;
            Ok(vec![SeriesResult {
                columns: [
                    "name",
                    "duration",
                    "shardGroupDuration",
                    "replicaN",
                    "default",
                ]
                .map(String::from)
                .to_vec(),
                values: vec![vec![
                    Value::from("autogen"),
                    Value::from("0s"),
                    Value::from("168h0m0s"),
                    Value::from(1),
                    Value::from(true),
                ]],
                ..Default::default()
            }])
        }
        Statement::ShowMeasurements {
            on,
            with,
            condition,
            page,
        } => {
            let experiment = database(state, user, on.as_deref(), default_db).await?;
            let catalogue = Catalogue::read(state, experiment.experiment_id).await?;
            let filter = tag_filter(condition.as_ref(), &catalogue)?;
            let name_regex = match &with {
                Some(NameMatch::Regex(pattern)) => Some(compile_regex(pattern)?),
                _ => None,
            };
            let names: Vec<String> = catalogue
                .measurements(filter.as_ref())
                .into_iter()
                .filter(|name| match (&with, &name_regex) {
                    (Some(NameMatch::Equal(wanted)), _) => name == wanted,
                    (_, Some(regex)) => regex.is_match(name),
                    _ => true,
                })
                .collect();
            let values = paged(names, page)
                .map(|name| vec![Value::from(name)])
                .collect();
            Ok(listing("measurements".into(), &["name"], values)
                .into_iter()
                .collect())
        }
        Statement::ShowFieldKeys { on, from, page } => {
            let experiment = database(state, user, on.as_deref(), default_db).await?;
            let catalogue = Catalogue::read(state, experiment.experiment_id).await?;
            let mut out = Vec::new();
            for measurement in catalogue.selected(&from)? {
                let fields: BTreeSet<&str> =
                    catalogue.series_of(&measurement).map(field_of).collect();
                let values = paged(fields, page)
                    .map(|field| vec![Value::from(field), Value::from("float")])
                    .collect();
                out.extend(listing(measurement, &["fieldKey", "fieldType"], values));
            }
            Ok(out)
        }
        Statement::ShowTagKeys {
            on,
            from,
            condition,
            page,
        } => {
            let experiment = database(state, user, on.as_deref(), default_db).await?;
            let catalogue = Catalogue::read(state, experiment.experiment_id).await?;
            let filter = tag_filter(condition.as_ref(), &catalogue)?;
            let mut out = Vec::new();
            for measurement in catalogue.selected(&from)? {
                let keys: BTreeSet<&str> = catalogue
                    .series_of(&measurement)
                    .filter(|tags| filter.as_ref().is_none_or(|f| f.matches(tags)))
                    .flat_map(|tags| tags.keys().map(String::as_str))
                    .filter(|key| *key != FIELD_TAG)
                    .collect();
                let values = paged(keys, page)
                    .map(|key| vec![Value::from(key)])
                    .collect();
                out.extend(listing(measurement, &["tagKey"], values));
            }
            Ok(out)
        }
        Statement::ShowTagValues {
            on,
            from,
            key,
            condition,
            page,
        } => {
            let experiment = database(state, user, on.as_deref(), default_db).await?;
            let catalogue = Catalogue::read(state, experiment.experiment_id).await?;
            let filter = tag_filter(condition.as_ref(), &catalogue)?;
            let key_regex = match &key {
                KeyMatch::Regex(pattern) | KeyMatch::NotRegex(pattern) => {
                    Some(compile_regex(pattern)?)
                }
                _ => None,
            };
            let key_matches = |candidate: &str| match &key {
                KeyMatch::Equal(wanted) => candidate == wanted,
                KeyMatch::NotEqual(unwanted) => candidate != unwanted,
                KeyMatch::Regex(_) => key_regex.as_ref().is_some_and(|re| re.is_match(candidate)),
                KeyMatch::NotRegex(_) => {
                    key_regex.as_ref().is_some_and(|re| !re.is_match(candidate))
                }
                KeyMatch::In(keys) => keys.iter().any(|k| k == candidate),
            };
            let mut out = Vec::new();
            for measurement in catalogue.selected(&from)? {
                let pairs: BTreeSet<(&str, &str)> = catalogue
                    .series_of(&measurement)
                    .filter(|tags| filter.as_ref().is_none_or(|f| f.matches(tags)))
                    .flat_map(|tags| tags.iter())
                    .filter(|(k, _)| k.as_str() != FIELD_TAG && key_matches(k))
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let values = paged(pairs, page)
                    .map(|(k, v)| vec![Value::from(k), Value::from(v)])
                    .collect();
                out.extend(listing(measurement, &["key", "value"], values));
            }
            Ok(out)
        }
        Statement::Select(select) => {
            let experiment = database(state, user, None, default_db).await?;
            let catalogue = Catalogue::read(state, experiment.experiment_id).await?;
            let _computing = crate::api::stats::computing(state, user)
                .await
                .map_err(store_error)?;
            let context = super::select::Context {
                state,
                catalogue: &catalogue,
                epoch,
                now: mymonit_model::time::now_ns(),
            };
            super::select::select(&context, &select).await
        }
        Statement::CreateDatabase { .. } => Ok(Vec::new()),
    }
}

/// `CREATE DATABASE`: MyMonit's databases are experiments, which admins create; answered
/// with success when the experiment exists and the caller may use it.
async fn create_database(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> Result<Vec<SeriesResult>, QueryError> {
    let experiment = state
        .meta
        .experiment_by_name(name)
        .await
        .map_err(store_error)?;
    let refusal = || {
        QueryError::new(format!(
            "database {name:?} is not an experiment this token may use: an admin creates \
             experiments in MyMonit (and scopes ingest tokens to them)"
        ))
    };
    let Some(experiment) = experiment else {
        return Err(refusal());
    };
    let usable = match caller {
        Caller::Source(token) => token.experiment_ids.contains(&experiment.experiment_id),
        Caller::User(user) => readable(state, user)
            .await?
            .iter()
            .any(|e| e.experiment_id == experiment.experiment_id),
    };
    if usable {
        Ok(Vec::new())
    } else {
        Err(refusal())
    }
}

/// The rows `LIMIT` and `OFFSET` keep (`LIMIT 0`: all).
fn paged<T>(rows: impl IntoIterator<Item = T>, page: Page) -> impl Iterator<Item = T> {
    let limit = if page.limit == 0 {
        usize::MAX
    } else {
        page.limit
    };
    rows.into_iter().skip(page.offset).take(limit)
}

/// One measurement's rows of a `SHOW`, or nothing when it has none (InfluxDB lists no empty
/// series).
fn listing(name: String, columns: &[&str], values: Vec<Vec<Value>>) -> Option<SeriesResult> {
    (!values.is_empty()).then(|| SeriesResult {
        name,
        columns: columns.iter().map(|c| (*c).to_owned()).collect(),
        values,
        ..Default::default()
    })
}

pub(super) fn tag_filter(
    condition: Option<&mymonit_influxql::ast::Expr>,
    catalogue: &Catalogue,
) -> Result<Option<TagFilter>, QueryError> {
    // Metadata queries may bound time too (Grafana's tag value time filter); series do not
    // change with time here, so the bound is read and set aside.
    let (_, rest) =
        mymonit_influxql::condition::split_time(condition, mymonit_model::time::now_ns())?;
    rest.map(|expr| TagFilter::compile(&expr, &|name| catalogue.is_field(name)))
        .transpose()
}
