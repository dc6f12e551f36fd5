//! The OpenAPI 3.1 document, generated from the handlers' annotations, served at
//! `/api/v1/openapi.json` and rendered at `/docs` (assets built in, no internet needed).

use utoipa::{
    Modify, OpenApi,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};

use crate::{api, compat, error::Problem};

/// MyMonit's API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "MyMonit",
        description = "Measurements from experiments, served only to the scientists allowed to see them.\n\n\
            Sign in with `POST /api/v1/auth/login` and send the token as `Authorization: Bearer …`. \
            Errors are RFC 9457 problem documents. Passwords: at least 12 characters, hard to guess, \
            not containing the user's name, username or email."
    ),
    paths(
        api::health::healthz, api::health::readyz,
        api::auth::login, api::auth::logout, api::auth::create_session, api::auth::get_session, api::auth::delete_session, api::auth::change_password, api::auth::me, api::auth::jwks,
        api::personal_tokens::create, api::personal_tokens::list, api::personal_tokens::revoke,
        api::audit::list, api::audit::verify,
        api::users::list, api::users::create, api::users::get, api::users::update, api::users::erase,
        api::experiments::list, api::experiments::create, api::experiments::get, api::experiments::rename,
        api::experiments::get_ingest_settings, api::experiments::set_ingest_settings,
        api::measures::list,
        api::stats::stats, api::stats::boxplot, api::stats::series, api::stats::latest,
        api::stats::stream, api::stats::get_retention, api::stats::set_retention,
        api::measure_types::list, api::measure_types::create,
        api::associations::list, api::associations::create, api::associations::delete,
        api::ingest::push, api::ingest_tokens::create, api::ingest_tokens::list, api::ingest_tokens::revoke,
        api::sources::create, api::sources::list, api::sources::get, api::sources::update, api::sources::delete,
        api::alert_rules::create, api::alert_rules::list, api::alert_rules::get, api::alert_rules::update,
        api::alert_rules::delete, api::alert_rules::history,
        compat::list_users, compat::create_user, compat::update_user,
        compat::list_experiments, compat::create_experiment, compat::update_experiment,
        compat::list_measures, compat::list_associations, compat::associate,
    ),
    components(schemas(Problem, mymonit_model::Role)),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "Sign-in and tokens"),
        (name = "users", description = "Accounts"),
        (name = "experiments", description = "Experiments"),
        (name = "measures", description = "Reading measures"),
        (name = "measure types", description = "Units"),
        (name = "associations", description = "Which scientist sees which experiment"),
        (name = "ingest", description = "Sources pushing measures, and their tokens"),
        (name = "alerts", description = "Alert rules on measures, their states and history (scientists, on their experiments)"),
        (name = "sources", description = "Sources MyMonit pulls from on a schedule (Flask-MonitoringDashboard, Prometheus pages)"),
        (name = "original API", description = "The original MyMonit routes, kept for existing clients"),
        (name = "audit", description = "The tamper-evident audit trail (auditors)"),
        (name = "operations", description = "Health checks"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}
