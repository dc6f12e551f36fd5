//! `mymonit serve --demo`: the original system's demo (Allan Alcorn the admin, Peter Higg on
//! device-vibrations, Katie Bouman on black-holes), an auditor, and a week of sample measures
//! with realistic shapes, plus a week of a web application's requests (per endpoint and
//! client, as a Flask-MonitoringDashboard source brings them) for Peter Higg. Idempotent: a second run adds nothing and keeps the passwords.

use std::{
    collections::BTreeMap,
    io::Write,
    path::{Path, PathBuf},
};

use anyhow::Context;
use mymonit_model::{Redacted, Role, User, measure::NewMeasure, time::now_ns};
use rand::{Rng, distr::Alphanumeric};
use serde::{Deserialize, Serialize};

use crate::{accounts, state::AppState};

/// File (in the data directory) holding the generated demo passwords.
pub const CREDENTIALS_FILE: &str = "demo-credentials.json";

/// Sample points per measure type: one a minute for 7 days.
const POINTS_PER_SERIES: i64 = 7 * 24 * 60;
const MINUTE_NS: i64 = 60_000_000_000;

/// One demo account's sign-in.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DemoCredential {
    /// Staff id.
    pub user_id: String,
    /// Username to sign in with.
    pub username: String,
    /// Generated password.
    pub password: String,
    /// Role.
    pub role: Role,
}

/// What seeding did.
#[derive(Debug, Default)]
pub struct DemoOutcome {
    /// Accounts created now, with their passwords (to print once).
    pub new_credentials: Vec<DemoCredential>,
    /// Where all demo credentials are kept.
    pub credentials_file: PathBuf,
    /// Sample measures added now.
    pub measures_added: u64,
}

const USERS: [(&str, &str, &str, &str, Role); 4] = [
    (
        "A001",
        "Allan Alcorn",
        "aalcorn",
        "aalcorn@home.cern",
        Role::Admin,
    ),
    (
        "S001",
        "Peter Higg",
        "phigg",
        "phigg@home.cern",
        Role::Scientist,
    ),
    (
        "S002",
        "Katie Bouman",
        "kbouman",
        "kbouman@home.cern",
        Role::Scientist,
    ),
    (
        "U001",
        "Ada Lovelace",
        "alovelace",
        "alovelace@home.cern",
        Role::Auditor,
    ),
];

/// Shape of a sample series.
#[derive(Clone, Copy)]
enum Shape {
    /// `base + amplitude·sin(2πt/period) + noise`.
    NoisySine {
        base: f64,
        amplitude: f64,
        period_minutes: f64,
        noise: f64,
    },
    /// A random walk with a slow drift.
    DriftingWalk { start: f64, step: f64, drift: f64 },
}

/// A demo experiment: its scientist and its series.
struct DemoExperiment {
    name: &'static str,
    scientist: &'static str,
    series: [(&'static str, Shape); 2],
}

const EXPERIMENTS: [DemoExperiment; 2] = [
    DemoExperiment {
        name: "device-vibrations",
        scientist: "S001",
        series: [
            (
                "hertz",
                Shape::NoisySine {
                    base: 110.0,
                    amplitude: 12.0,
                    period_minutes: 360.0,
                    noise: 2.5,
                },
            ),
            (
                "degree Celsius",
                Shape::DriftingWalk {
                    start: 21.0,
                    step: 0.05,
                    drift: 0.0004,
                },
            ),
        ],
    },
    DemoExperiment {
        name: "black-holes",
        scientist: "S002",
        series: [
            (
                "tesla",
                Shape::DriftingWalk {
                    start: 4.0,
                    step: 0.02,
                    drift: -0.00005,
                },
            ),
            (
                "watt",
                Shape::NoisySine {
                    base: 1500.0,
                    amplitude: 400.0,
                    period_minutes: 1440.0,
                    noise: 40.0,
                },
            ),
        ],
    },
];

fn gaussian(rng: &mut impl Rng) -> f64 {
    // Box–Muller: enough for demo noise, without another dependency.
    let u1: f64 = rng.random_range(f64::EPSILON..1.0);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Values of one series, `points` long, rounded to 3 decimals as instruments report.
fn series(shape: Shape, points: i64, rng: &mut impl Rng) -> Vec<f64> {
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    match shape {
        Shape::NoisySine {
            base,
            amplitude,
            period_minutes,
            noise,
        } => (0..points)
            .map(|i| {
                let phase = std::f64::consts::TAU * i as f64 / period_minutes;
                round(base + amplitude * phase.sin() + noise * gaussian(rng))
            })
            .collect(),
        Shape::DriftingWalk { start, step, drift } => {
            let mut value = start;
            (0..points)
                .map(|_| {
                    value += drift + step * gaussian(rng);
                    round(value)
                })
                .collect()
        }
    }
}

fn generate_password() -> String {
    rand::rng()
        .sample_iter(&Alphanumeric)
        .take(20)
        .map(char::from)
        .collect()
}

fn read_credentials(path: &Path) -> anyhow::Result<Vec<DemoCredential>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a demo credentials file", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Writes the credentials readable by the owner only, replacing the file atomically.
fn write_credentials(path: &Path, credentials: &[DemoCredential]) -> anyhow::Result<()> {
    let temporary = path.with_extension("json.tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&temporary)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    file.write_all(&serde_json::to_vec_pretty(credentials)?)?;
    file.write_all(b"\n")?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    Ok(())
}

/// Seeds the demo into the stores of `state`; what exists already is left alone.
pub async fn seed(state: &AppState) -> anyhow::Result<DemoOutcome> {
    let meta = state.meta.as_ref();
    let credentials_file = state.settings.data_dir.join(CREDENTIALS_FILE);
    let mut credentials = read_credentials(&credentials_file)?;
    let mut outcome = DemoOutcome {
        credentials_file: credentials_file.clone(),
        ..Default::default()
    };

    for (user_id, name, username, email, role) in USERS {
        if meta.get_user(user_id).await?.is_some() {
            continue;
        }
        let user = User {
            user_id: user_id.into(),
            name: name.into(),
            username: username.into(),
            email: email.into(),
            role,
        };
        let password = generate_password();
        accounts::create(meta, &user, Some(Redacted::new(password.clone())))
            .await
            .with_context(|| format!("cannot create demo user {user_id}"))?;
        let credential = DemoCredential {
            user_id: user_id.into(),
            username: username.into(),
            password,
            role,
        };
        credentials.retain(|c| c.user_id != user_id);
        credentials.push(credential.clone());
        outcome.new_credentials.push(credential);
    }
    if !outcome.new_credentials.is_empty() {
        write_credentials(&credentials_file, &credentials)?;
    }

    let now_minute = now_ns() / MINUTE_NS * MINUTE_NS;
    let start = now_minute - POINTS_PER_SERIES * MINUTE_NS;
    for DemoExperiment {
        name,
        scientist,
        series: series_specs,
    } in EXPERIMENTS
    {
        let experiment = match meta.experiment_by_name(name).await? {
            Some(experiment) => experiment,
            None => meta.create_experiment(name).await?,
        };
        if meta
            .get_user(scientist)
            .await?
            .is_some_and(|u| u.role == Role::Scientist)
        {
            meta.associate(experiment.experiment_id, scientist).await?;
        }
        if state.measures.count(experiment.experiment_id).await? > 0 {
            continue;
        }
        let mut batch = Vec::new();
        for (type_name, shape) in series_specs {
            let measure_type = meta
                .measure_type_by_name(type_name)
                .await?
                .with_context(|| format!("measure type {type_name} is missing"))?;
            let values = series(shape, POINTS_PER_SERIES, &mut rand::rng());
            batch.extend(values.into_iter().enumerate().map(|(i, value)| NewMeasure {
                experiment_id: experiment.experiment_id,
                measure_type_id: measure_type.measure_type_id,
                timestamp_ns: start + i as i64 * MINUTE_NS,
                value,
                tags: BTreeMap::from([("source".to_string(), "demo".to_string())]),
            }));
        }
        outcome.measures_added += state.measures.append(&batch).await?;
    }
    outcome.measures_added += seed_web_requests(state, start, now_minute).await?;
    Ok(outcome)
}

/// The demo web application whose requests a dashboard recorded (as a Flask-MonitoringDashboard
/// source brings them): one point per request, its execution time in milliseconds, tagged with
/// the endpoint, the client's address and the app's version. Peter Higg reads it.
const WEB_EXPERIMENT: &str = "webapp-requests";
const WEB_ENDPOINTS: [(&str, f64, u32); 4] = [
    // endpoint, median milliseconds, requests per hour
    ("index", 4.0, 20),
    ("search", 35.0, 12),
    ("login", 90.0, 4),
    ("report", 420.0, 2),
];

async fn seed_web_requests(state: &AppState, start: i64, end: i64) -> anyhow::Result<u64> {
    let meta = state.meta.as_ref();
    let experiment = match meta.experiment_by_name(WEB_EXPERIMENT).await? {
        Some(experiment) => experiment,
        None => meta.create_experiment(WEB_EXPERIMENT).await?,
    };
    if meta
        .get_user("S001")
        .await?
        .is_some_and(|u| u.role == Role::Scientist)
    {
        meta.associate(experiment.experiment_id, "S001").await?;
    }
    if state.measures.count(experiment.experiment_id).await? > 0 {
        return Ok(0);
    }
    let name = crate::sources::fmd::MEASURE_TYPE;
    let measure_type = match meta.measure_type_by_name(name).await? {
        Some(found) => found,
        None => meta.create_measure_type(name, "ms", "duration").await?,
    };
    let mut rng = rand::rng();
    let mut batch = Vec::new();
    let hour = 60 * MINUTE_NS;
    let mut at = start;
    while at < end {
        for (endpoint, median, per_hour) in WEB_ENDPOINTS {
            for _ in 0..rng.random_range(0..=per_hour) {
                let client = rng.random_range(1..=12);
                // Log-normal around the endpoint's median, as request times are.
                let value = median * (0.6 * gaussian(&mut rng)).exp();
                batch.push(NewMeasure {
                    experiment_id: experiment.experiment_id,
                    measure_type_id: measure_type.measure_type_id,
                    timestamp_ns: at + rng.random_range(0..hour),
                    value: (value * 1000.0).round() / 1000.0,
                    tags: BTreeMap::from([
                        ("endpoint".to_string(), endpoint.to_string()),
                        ("ip".to_string(), format!("10.0.0.{client}")),
                        (
                            "version".to_string(),
                            if at < start + (end - start) / 2 {
                                "1.0"
                            } else {
                                "1.1"
                            }
                            .to_string(),
                        ),
                    ]),
                });
            }
        }
        at += hour;
    }
    Ok(state.measures.append(&batch).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_have_the_promised_shapes() {
        let mut rng = rand::rng();
        let sine = series(
            Shape::NoisySine {
                base: 100.0,
                amplitude: 10.0,
                period_minutes: 100.0,
                noise: 0.0,
            },
            100,
            &mut rng,
        );
        assert_eq!(sine[0], 100.0);
        assert_eq!(sine[25], 110.0);
        assert_eq!(sine[75], 90.0);
        let walk = series(
            Shape::DriftingWalk {
                start: 5.0,
                step: 0.0,
                drift: 0.5,
            },
            4,
            &mut rng,
        );
        assert_eq!(walk, vec![5.5, 6.0, 6.5, 7.0]);
    }

    #[test]
    fn generated_passwords_pass_the_policy() {
        for _ in 0..20 {
            mymonit_model::password::check(&generate_password(), &["aalcorn"]).unwrap();
        }
    }
}
