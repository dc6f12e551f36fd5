//! The store's story, told on every backend: each test runs on a fresh SQLite database and,
//! when a test PostgreSQL is configured (`MYMONIT_TEST_DATABASE_URL`), on a fresh PostgreSQL
//! database. With `CI` set, a missing PostgreSQL fails the PostgreSQL half instead of skipping.

use std::{
    collections::BTreeMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use mymonit_model::{Role, User, UserPatch, measure::NewMeasure, personal_token::PersonalToken};

use crate::{DatabaseUrl, MeasureQuery, OpenOptions, PgStore, SqliteStore, Store, StoreError};

/// A fresh, empty database and a store open on it.
pub(crate) struct Fixture {
    pub store: Arc<dyn Store>,
    database: Database,
}

enum Database {
    Sqlite {
        dir: tempfile::TempDir,
        store: SqliteStore,
    },
    Postgres {
        admin_url: String,
        name: String,
        store: PgStore,
    },
}

/// The test PostgreSQL: a role allowed to create databases.
pub(crate) fn test_postgres_url() -> Option<String> {
    match std::env::var("MYMONIT_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CI is set but MYMONIT_TEST_DATABASE_URL names no PostgreSQL to test against")
        }
        _ => None,
    }
}

static DATABASES: AtomicU64 = AtomicU64::new(0);

impl Fixture {
    pub async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).await.unwrap();
        Self {
            store: Arc::new(store.clone()),
            database: Database::Sqlite { dir, store },
        }
    }

    /// `None` when no test PostgreSQL is configured (and `CI` is not set).
    pub async fn postgres() -> Option<Self> {
        let admin_url = test_postgres_url()?;
        let name = format!(
            "mymonit_test_{}_{}",
            std::process::id(),
            DATABASES.fetch_add(1, Ordering::SeqCst)
        );
        PgStore::drop_database(&admin_url, &name).await.unwrap();
        let url = PgStore::create_database(&admin_url, &name)
            .await
            .expect("cannot create a database in the test PostgreSQL");
        let store = PgStore::open(&url, &OpenOptions::default()).await.unwrap();
        Some(Self {
            store: Arc::new(store.clone()),
            database: Database::Postgres {
                admin_url,
                name,
                store,
            },
        })
    }

    /// Another store on the same database, as a second process would open it.
    pub async fn open_another(&self, options: &OpenOptions) -> Arc<dyn Store> {
        let url = match &self.database {
            Database::Sqlite { dir, .. } => DatabaseUrl::Sqlite(dir.path().to_path_buf()),
            Database::Postgres {
                admin_url, name, ..
            } => DatabaseUrl::Postgres(crate::postgres::url_with_database(admin_url, name)),
        };
        crate::open(&url, options).await.unwrap()
    }

    /// The PostgreSQL store, on that backend.
    pub fn postgres_store(&self) -> Option<&PgStore> {
        match &self.database {
            Database::Postgres { store, .. } => Some(store),
            Database::Sqlite { .. } => None,
        }
    }

    /// The SQLite store, on that backend.
    pub fn sqlite_store(&self) -> Option<&SqliteStore> {
        match &self.database {
            Database::Sqlite { store, .. } => Some(store),
            Database::Postgres { .. } => None,
        }
    }

    /// Rows of `(i64, …)` from a statement both backends read alike.
    async fn rows6(&self, sql: &'static str) -> Vec<(i64, i64, i64, i64, i64, i64)> {
        match &self.database {
            Database::Sqlite { store, .. } => sqlx::query_as(sql).fetch_all(store.pool()).await,
            Database::Postgres { store, .. } => sqlx::query_as(sql).fetch_all(store.pool()).await,
        }
        .unwrap()
    }

    async fn scalar(&self, sql: &'static str) -> i64 {
        match &self.database {
            Database::Sqlite { store, .. } => sqlx::query_scalar(sql).fetch_one(store.pool()).await,
            Database::Postgres { store, .. } => {
                sqlx::query_scalar(sql).fetch_one(store.pool()).await
            }
        }
        .unwrap()
    }

    /// Closes the stores and drops a PostgreSQL test database.
    pub async fn finish(self) {
        self.store.close().await;
        if let Database::Postgres {
            admin_url,
            name,
            store,
        } = self.database
        {
            store.close().await;
            let _ = PgStore::drop_database(&admin_url, &name).await;
        }
    }
}

/// Runs each story on SQLite and on PostgreSQL, as `<story>::sqlite` and `<story>::postgres`.
macro_rules! on_both_backends {
    ($($story:ident),* $(,)?) => {$(
        mod $story {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let fixture = super::Fixture::sqlite().await;
                super::$story(&fixture).await;
                fixture.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(fixture) = super::Fixture::postgres().await else {
                    eprintln!("skipped: set MYMONIT_TEST_DATABASE_URL to run on PostgreSQL");
                    return;
                };
                super::$story(&fixture).await;
                fixture.finish().await;
            }
        }
    )*};
}

on_both_backends!(
    accounts_conflicts_and_erasure,
    experiments_and_measure_types,
    measures_page_in_time_order_with_ties,
    redelivered_messages_are_stored_once,
    large_batches_cross_insert_chunks_and_duplicate_keys_in_one_batch_count_once,
    compaction_keeps_every_point_in_order_even_late_and_tied_ones,
    a_series_fed_a_few_points_at_a_time_still_fills_its_chunks,
    series_reads_recent_points_and_ends_of_series,
    retention_drops_old_points_and_only_them,
    latest_of_an_experiment_takes_chunks_and_recent_blocks,
    reads_racing_compaction_see_each_point_once,
    two_processes_on_one_database_never_share_an_arrival_number,
    consumer_sessions_remember_bodies_until_acknowledged_or_resolved,
    an_experiment_gets_no_more_series_than_its_limit,
    live_views_hear_of_what_every_instance_stores,
    personal_tokens_and_measure_type_creation,
    sources_are_claimed_by_one_instance_and_commits_store_each_point_once,
    alert_rules_are_evaluated_by_one_instance_and_notifications_outlive_them,
);

/// Rules are claimed by one instance at a time; an evaluation commits states, history and
/// notifications together, only under its lease; notifications are claimed once, retried,
/// delivered, and outlive a deleted rule.
async fn alert_rules_are_evaluated_by_one_instance_and_notifications_outlive_them(f: &Fixture) {
    use crate::alerts::{Attempt, Evaluated, NewNotification, StoredAlert};
    let store = &*f.store;
    let other = f.open_another(&OpenOptions::default()).await;
    let experiment = store.create_experiment("lab").await.unwrap();
    let t0 = 1_800_000_000_000i64;
    let rule = store
        .create_rule(
            experiment.experiment_id,
            r#"{"name":"x"}"#,
            Some("S001"),
            t0,
        )
        .await
        .unwrap();
    assert_eq!(rule.next_eval_ms, t0);
    let (a, b) = tokio::join!(
        store.claim_due_rules("a", t0, 60_000, 10),
        other.claim_due_rules("b", t0, 60_000, 10)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.len() + b.len(), 1, "claimed once");
    let holder = if a.is_empty() { "b" } else { "a" };
    let evaluated = |owner: &str, state: &str, notify: usize| Evaluated {
        rule_id: rule.rule_id,
        owner: owner.into(),
        rule_updated_at_ms: rule.updated_at_ms,
        now_ms: t0 + 5,
        next_eval_ms: t0 + 1_000,
        error: None,
        alerts: vec![StoredAlert {
            group_key: "a".into(),
            state: state.into(),
            active_since_ms: Some(t0),
            firing_since_ms: (state == "firing").then_some(t0 + 5),
            last_value: Some(130.5),
            last_sent_ms: None,
        }],
        forget: Vec::new(),
        events: vec![("a".into(), state.into(), Some(130.5))],
        notifications: (0..notify)
            .map(|n| NewNotification {
                receiver: format!("webhook:http://127.0.0.1:{n}/"),
                body: format!("{{\"n\":{n}}}"),
            })
            .collect(),
    };
    let intruder = if holder == "a" { "b" } else { "a" };
    assert!(
        !store
            .commit_evaluation(&evaluated(intruder, "firing", 1))
            .await
            .unwrap()
    );
    assert!(
        store
            .commit_evaluation(&evaluated(holder, "firing", 2))
            .await
            .unwrap()
    );
    // Released: the same lease commits no more.
    assert!(
        !store
            .commit_evaluation(&evaluated(holder, "firing", 1))
            .await
            .unwrap()
    );
    let found = store.get_rule(rule.rule_id).await.unwrap().unwrap();
    assert_eq!(found.rule.last_eval_ms, Some(t0 + 5));
    assert_eq!(found.rule.next_eval_ms, t0 + 1_000);
    assert_eq!(found.alerts.len(), 1);
    assert_eq!(found.alerts[0].state, "firing");
    assert_eq!(found.alerts[0].last_value, Some(130.5));
    assert_eq!(store.alert_counts().await.unwrap(), (1, 1));
    let events = store.rule_events(rule.rule_id, 10).await.unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].transition, "firing");
    // Notifications: each claimed once, in order; a retry comes back when due.
    let (a, b) = tokio::join!(
        store.claim_notifications("a", t0 + 10, 30_000, 10),
        other.claim_notifications("b", t0 + 10, 30_000, 10)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.len() + b.len(), 2);
    let (owner, claimed) = if a.is_empty() { ("b", b) } else { ("a", a) };
    assert!(claimed[0].notification_id < claimed[1].notification_id);
    store
        .finish_notification(
            claimed[0].notification_id,
            owner,
            &Attempt::Delivered,
            t0 + 11,
        )
        .await
        .unwrap();
    store
        .finish_notification(
            claimed[1].notification_id,
            owner,
            &Attempt::Retry {
                error: "refused".into(),
                next_attempt_ms: t0 + 2_000,
            },
            t0 + 11,
        )
        .await
        .unwrap();
    assert!(
        store
            .claim_notifications("c", t0 + 1_999, 30_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store
        .claim_notifications("c", t0 + 2_000, 30_000, 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
    assert_eq!(again[0].last_error.as_deref(), Some("refused"));
    // Deleting the rule keeps its notifications going.
    assert!(store.delete_rule(rule.rule_id).await.unwrap());
    assert!(store.get_rule(rule.rule_id).await.unwrap().is_none());
    store
        .finish_notification(
            again[0].notification_id,
            "c",
            &Attempt::GiveUp {
                error: "gone".into(),
            },
            t0 + 2_001,
        )
        .await
        .unwrap();
    let log = store.rule_notifications(rule.rule_id, 10).await.unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].status, "failed");
    assert_eq!(log[1].status, "delivered");
    assert_eq!(store.alert_counts().await.unwrap(), (0, 0));
    other.close().await;
}

/// Two instances claim due sources without sharing one; a commit stores points and moves the
/// cursor only for the lease holder and from the cursor it started at; keyed points are
/// stored once however often they are fetched, equal ones under distinct keys each.
async fn sources_are_claimed_by_one_instance_and_commits_store_each_point_once(f: &Fixture) {
    use crate::sources::{NewSource, PullOutcome, Pulled, SourcePatch};
    use mymonit_model::source::SourceKind;
    let store = &*f.store;
    let other = f.open_another(&OpenOptions::default()).await;
    let experiment = store.create_experiment("lab").await.unwrap();
    let t0 = 1_800_000_000_000i64;
    let mut ids = Vec::new();
    for n in 0..3 {
        let source = store
            .create_source(&NewSource {
                experiment_id: experiment.experiment_id,
                kind: SourceKind::Fmd,
                url: format!("http://127.0.0.1:{}/dashboard", 5000 + n),
                sealed_secret: Some(format!("sealed-{n}")),
                include: None,
                interval_secs: 60,
                enabled: n != 2,
                now_ms: t0,
            })
            .await
            .unwrap();
        assert!(source.has_secret);
        assert_eq!(source.next_fetch_ms, t0);
        ids.push(source.source_id);
    }
    // Two claimers race: the two enabled sources are claimed once in all.
    let (a, b) = tokio::join!(
        store.claim_due_sources("a", t0, 30_000, 10),
        other.claim_due_sources("b", t0, 30_000, 10)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    let mut claimed: Vec<i64> = a.iter().chain(&b).map(|c| c.source.source_id).collect();
    claimed.sort();
    assert_eq!(claimed, ids[..2]);
    let first = a
        .iter()
        .chain(&b)
        .find(|c| c.source.source_id == ids[0])
        .unwrap();
    assert_eq!(first.sealed_secret.as_deref(), Some("sealed-0"));
    let holder = if a.iter().any(|c| c.source.source_id == ids[0]) {
        "a"
    } else {
        "b"
    };
    // Held: nobody else gets it before the lease ends; afterwards anyone may.
    assert!(
        store
            .claim_due_sources("c", t0 + 1, 30_000, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let point = |ts: i64, value: f64| NewMeasure {
        experiment_id: experiment.experiment_id,
        measure_type_id: 1,
        timestamp_ns: ts,
        value,
        tags: BTreeMap::new(),
    };
    let pulled =
        |owner: &str, from: Option<i64>, to: i64, keyed: Vec<(String, Vec<NewMeasure>)>| Pulled {
            source_id: ids[0],
            owner: owner.into(),
            from_cursor: from,
            cursor: Some(to),
            history_from: Some(100),
            backlog_secs: 50,
            keyed,
            points: vec![point(to, 1.0)],
            next_fetch_ms: t0 + 60_000,
            now_ms: t0 + 2,
        };
    let keyed = |n: usize| -> Vec<(String, Vec<NewMeasure>)> {
        (0..n)
            .map(|i| (format!("fmd:1:x:{i}"), vec![point(5, 2.0)]))
            .collect()
    };
    let intruder = if holder == "a" { "b" } else { "a" };
    assert_eq!(
        store
            .commit_pull(&pulled(intruder, None, 10, keyed(1)))
            .await
            .unwrap(),
        PullOutcome::Superseded
    );
    assert_eq!(
        store
            .commit_pull(&pulled(holder, Some(3), 10, keyed(1)))
            .await
            .unwrap(),
        PullOutcome::Superseded
    );
    assert_eq!(store.count(experiment.experiment_id).await.unwrap(), 0);
    assert_eq!(
        store
            .commit_pull(&pulled(holder, None, 10, keyed(1)))
            .await
            .unwrap(),
        PullOutcome::Stored(2)
    );
    let after = store.get_source(ids[0]).await.unwrap().unwrap();
    assert_eq!(
        (after.cursor, after.history_from, after.backlog_secs),
        (Some(10), Some(100), 50)
    );
    assert_eq!(
        (after.points_fetched, after.last_success_ms),
        (2, Some(t0 + 2))
    );
    assert_eq!(after.next_fetch_ms, t0 + 60_000);
    // Released: a commit from the same lease again is refused.
    assert_eq!(
        store
            .commit_pull(&pulled(holder, Some(10), 20, keyed(1)))
            .await
            .unwrap(),
        PullOutcome::Superseded
    );
    // The next fetch overlaps: the keyed point it reads again is not stored twice, and an
    // equal point that arrived since (a second key) is.
    let round2 = store
        .claim_due_sources("c", t0 + 60_000, 30_000, 10)
        .await
        .unwrap();
    assert!(round2.iter().any(|c| c.source.source_id == ids[0]));
    assert_eq!(
        store
            .commit_pull(&pulled("c", Some(10), 20, keyed(2)))
            .await
            .unwrap(),
        PullOutcome::Stored(2)
    );
    assert_eq!(store.count(experiment.experiment_id).await.unwrap(), 4);
    // A failure counts, keeps the text and schedules the retry.
    let second = round2
        .iter()
        .find(|c| c.source.source_id == ids[1])
        .unwrap();
    assert_eq!(second.source.failures, 0);
    store
        .record_pull_failure(ids[1], "c", "connection refused", t0 + 60_000, t0 + 61_001)
        .await
        .unwrap();
    let failed = store.get_source(ids[1]).await.unwrap().unwrap();
    assert_eq!(failed.failures, 1);
    assert_eq!(failed.last_error.as_deref(), Some("connection refused"));
    assert_eq!(failed.next_fetch_ms, t0 + 61_001);
    // Patching: a new secret makes it due at once; enabling the third brings it in.
    let patched = store
        .update_source(
            ids[2],
            &SourcePatch {
                enabled: Some(true),
                interval_secs: Some(5),
                ..SourcePatch::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert!(patched.enabled);
    assert_eq!(patched.interval_secs, 5);
    let removed = store
        .update_source(
            ids[2],
            &SourcePatch {
                sealed_secret: Some(None),
                ..SourcePatch::default()
            },
        )
        .await
        .unwrap()
        .unwrap();
    assert!(!removed.has_secret);
    assert_eq!(
        store
            .list_sources(Some(experiment.experiment_id))
            .await
            .unwrap()
            .len(),
        3
    );
    assert!(store.delete_source(ids[2]).await.unwrap());
    assert!(!store.delete_source(ids[2]).await.unwrap());
    assert!(
        store
            .update_source(ids[2], &SourcePatch::default())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.list_sources(None).await.unwrap().len(), 2);
    other.close().await;
}

/// Personal access tokens are found by hash while live and only then; each user sees and
/// revokes only their own; whether an experiment lets writes create types is kept.
async fn personal_tokens_and_measure_type_creation(f: &Fixture) {
    let store = &*f.store;
    let experiment = store.create_experiment("lab").await.unwrap();
    assert!(
        !store
            .creates_measure_types(experiment.experiment_id)
            .await
            .unwrap()
    );
    store
        .set_creates_measure_types(experiment.experiment_id, true)
        .await
        .unwrap();
    assert!(
        store
            .creates_measure_types(experiment.experiment_id)
            .await
            .unwrap()
    );
    assert!(matches!(
        store.set_creates_measure_types(999, true).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.creates_measure_types(999).await,
        Err(StoreError::NotFound(_))
    ));

    for (id, username) in [("S001", "phigg"), ("S002", "kbouman")] {
        store
            .create_user(&user(id, username, Role::Scientist), None)
            .await
            .unwrap();
    }
    let token = |token_id: &str, user_id: &str, created_at| PersonalToken {
        token_id: token_id.into(),
        user_id: user_id.into(),
        name: format!("{token_id} of {user_id}"),
        scope: "read".into(),
        created_at,
        expires_at: created_at + 1000,
        revoked: false,
    };
    store
        .create_personal_token(&token("a", "S001", 10), "hash-a")
        .await
        .unwrap();
    store
        .create_personal_token(&token("b", "S001", 20), "hash-b")
        .await
        .unwrap();
    store
        .create_personal_token(&token("c", "S002", 30), "hash-c")
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_personal_token(&token("d", "S002", 40), "hash-c")
            .await,
        Err(StoreError::Conflict("token_hash"))
    ));
    let listed: Vec<String> = store
        .list_personal_tokens("S001")
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.token_id)
        .collect();
    assert_eq!(listed, ["b", "a"]);
    assert_eq!(
        store.personal_token_by_hash("hash-a").await.unwrap(),
        Some(token("a", "S001", 10))
    );
    // Nobody revokes another's token.
    assert!(!store.revoke_personal_token("S002", "a").await.unwrap());
    assert!(store.revoke_personal_token("S001", "a").await.unwrap());
    assert!(!store.revoke_personal_token("S001", "a").await.unwrap());
    assert_eq!(store.personal_token_by_hash("hash-a").await.unwrap(), None);
    assert!(store.list_personal_tokens("S001").await.unwrap()[1].revoked);
    assert_eq!(store.personal_token_by_hash("unknown").await.unwrap(), None);
}

/// A live view on one instance receives what another instance stores (on SQLite, one
/// instance: what it stores itself).
async fn live_views_hear_of_what_every_instance_stores(f: &Fixture) {
    let viewer = f.store.clone();
    let writer = match f.postgres_store() {
        Some(_) => f.open_another(&OpenOptions::default()).await,
        None => f.store.clone(),
    };
    let experiment = writer.create_experiment("live").await.unwrap();
    let mut feed = viewer.subscribe();
    // The feed from the database may take a moment to start listening.
    let mut received: Vec<NewMeasure> = Vec::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut sent = 0;
    while received.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the live view heard nothing"
        );
        sent += 1;
        let batch: Vec<NewMeasure> = (0..3)
            .map(|i| NewMeasure {
                experiment_id: experiment.experiment_id,
                measure_type_id: 1,
                timestamp_ns: 1_653_040_000_000_000_000 + i,
                value: f64::from(sent),
                tags: BTreeMap::from([("host".to_string(), format!("h{i}"))]),
            })
            .collect();
        writer.append(&batch).await.unwrap();
        if let Ok(Ok(batch)) =
            tokio::time::timeout(std::time::Duration::from_millis(200), feed.recv()).await
        {
            received.extend(batch.iter().cloned());
        }
    }
    assert_eq!(received.len(), 3, "{received:?}");
    assert!(
        received
            .iter()
            .all(|m| m.experiment_id == experiment.experiment_id)
    );
    let mut hosts: Vec<&str> = received.iter().map(|m| m.tags["host"].as_str()).collect();
    hosts.sort_unstable();
    assert_eq!(hosts, vec!["h0", "h1", "h2"]);
}

pub(crate) fn user(id: &str, username: &str, role: Role) -> User {
    User {
        user_id: id.into(),
        name: format!("Name of {id}").into(),
        username: username.into(),
        email: format!("{username}@home.cern").into(),
        role,
    }
}

async fn accounts_conflicts_and_erasure(f: &Fixture) {
    let store = &*f.store;
    store
        .create_user(&user("S001", "phigg", Role::Scientist), Some("hash"))
        .await
        .unwrap();
    let taken_id = store
        .create_user(&user("S001", "other", Role::Scientist), None)
        .await;
    assert!(
        matches!(taken_id, Err(StoreError::Conflict("user_id"))),
        "{taken_id:?}"
    );
    let mut same_username = user("S002", "phigg", Role::Scientist);
    same_username.email = "other@home.cern".into();
    let taken_username = store.create_user(&same_username, None).await;
    assert!(matches!(
        taken_username,
        Err(StoreError::Conflict("username"))
    ));
    let mut same_email = user("S003", "kbouman", Role::Scientist);
    same_email.email = "phigg@home.cern".into();
    assert!(matches!(
        store.create_user(&same_email, None).await,
        Err(StoreError::Conflict("email"))
    ));

    let account = store.account_by_username("phigg").await.unwrap().unwrap();
    assert_eq!(account.password_hash.as_deref(), Some("hash"));
    let updated = store
        .update_user(
            "S001",
            &UserPatch {
                name: Some("Peter Higgs".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.name, "Peter Higgs");
    assert_eq!(
        store.get_user("S001").await.unwrap().unwrap().name,
        "Peter Higgs"
    );

    let experiment = store.create_experiment("device-vibrations").await.unwrap();
    assert!(
        store
            .associate(experiment.experiment_id, "S001")
            .await
            .unwrap()
    );
    assert!(
        !store
            .associate(experiment.experiment_id, "S001")
            .await
            .unwrap()
    );

    store.erase_user("S001").await.unwrap();
    assert!(store.get_user("S001").await.unwrap().is_none());
    assert!(store.account_by_username("phigg").await.unwrap().is_none());
    assert!(store.list_users().await.unwrap().is_empty());
    assert!(store.list_associations().await.unwrap().is_empty());
    // The tombstone keeps the id: it cannot be reused for someone else.
    assert!(matches!(
        store
            .create_user(&user("S001", "newcomer", Role::Scientist), None)
            .await,
        Err(StoreError::Conflict("user_id"))
    ));
    // The username and email are free again.
    store
        .create_user(&user("S009", "phigg", Role::Scientist), None)
        .await
        .unwrap();
    assert!(matches!(
        store.erase_user("S001").await,
        Err(StoreError::NotFound(_))
    ));
}

async fn experiments_and_measure_types(f: &Fixture) {
    let store = &*f.store;
    let types = store.list_measure_types().await.unwrap();
    assert_eq!(types.len(), 22);
    assert_eq!(types[0].name, "hertz");
    assert_eq!(types[10].symbol, "Ω");
    assert!(matches!(
        store.create_measure_type("hertz", "Hz", "frequency").await,
        Err(StoreError::Conflict("name"))
    ));
    let first = store.create_experiment("device-vibrations").await.unwrap();
    let second = store.create_experiment("black-holes").await.unwrap();
    assert!(matches!(
        store.create_experiment("black-holes").await,
        Err(StoreError::Conflict("name"))
    ));
    assert!(matches!(
        store
            .rename_experiment(first.experiment_id, "black-holes")
            .await,
        Err(StoreError::Conflict("name"))
    ));
    assert!(matches!(
        store.rename_experiment(999, "x").await,
        Err(StoreError::NotFound(_))
    ));
    store
        .create_user(&user("S002", "kbouman", Role::Scientist), None)
        .await
        .unwrap();
    store.associate(second.experiment_id, "S002").await.unwrap();
    assert_eq!(
        store.list_experiments_of("S002").await.unwrap(),
        vec![second.clone()]
    );
    assert_eq!(store.list_experiments().await.unwrap().len(), 2);
    assert!(
        store
            .dissociate(second.experiment_id, "S002")
            .await
            .unwrap()
    );
    assert!(store.list_experiments_of("S002").await.unwrap().is_empty());

    // Reopening applies no migration twice and seeds no type twice.
    let reopened = f.open_another(&OpenOptions::default()).await;
    assert_eq!(reopened.list_measure_types().await.unwrap().len(), 22);
    assert_eq!(reopened.list_experiments().await.unwrap().len(), 2);
}

async fn measures_page_in_time_order_with_ties(f: &Fixture) {
    let store = &*f.store;
    let experiment = store.create_experiment("device-vibrations").await.unwrap();
    let hertz = store.measure_type_by_name("hertz").await.unwrap().unwrap();
    let tesla = store.measure_type_by_name("tesla").await.unwrap().unwrap();
    let point = |ts: i64, value: f64, type_id: i64| NewMeasure {
        experiment_id: experiment.experiment_id,
        measure_type_id: type_id,
        timestamp_ns: ts,
        value,
        tags: BTreeMap::from([("host".to_string(), "lab1".to_string())]),
    };
    // Two readings in the same second are both kept; insertion order is not time order.
    let batch = [
        point(3_000, 3.0, hertz.measure_type_id),
        point(1_000, 1.0, hertz.measure_type_id),
        point(1_000, 1.5, hertz.measure_type_id),
        point(2_000, 2.0, tesla.measure_type_id),
    ];
    assert_eq!(store.append(&batch).await.unwrap(), 4);
    assert_eq!(store.count(experiment.experiment_id).await.unwrap(), 4);

    let mut query = MeasureQuery {
        experiment_id: experiment.experiment_id,
        limit: 2,
        ..Default::default()
    };
    let page = store.query(&query).await.unwrap();
    assert_eq!(
        page.iter().map(|m| m.value).collect::<Vec<_>>(),
        vec![1.0, 1.5]
    );
    assert_eq!(page[0].experiment, "device-vibrations");
    assert_eq!(page[0].measure_type, "hertz");
    assert_eq!(page[0].tags["host"], "lab1");
    let last = page.last().unwrap();
    query.after = Some((last.timestamp_ns, last.seq));
    let page = store.query(&query).await.unwrap();
    assert_eq!(
        page.iter().map(|m| m.value).collect::<Vec<_>>(),
        vec![2.0, 3.0]
    );

    let only_hertz_from_2000 = MeasureQuery {
        experiment_id: experiment.experiment_id,
        measure_type_id: Some(hertz.measure_type_id),
        from_ns: Some(1_500),
        to_ns: Some(3_000),
        limit: 10,
        ..Default::default()
    };
    assert!(
        store.query(&only_hertz_from_2000).await.unwrap().is_empty(),
        "`to` is exclusive"
    );

    // Another process on the same database reads what the first stored.
    let reopened = f.open_another(&OpenOptions::default()).await;
    assert_eq!(reopened.count(experiment.experiment_id).await.unwrap(), 4);
    assert_eq!(reopened.list_measure_types().await.unwrap().len(), 22);
}

async fn redelivered_messages_are_stored_once(f: &Fixture) {
    let store = &*f.store;
    let experiment = store.create_experiment("device-vibrations").await.unwrap();
    let point = |value: f64| NewMeasure {
        experiment_id: experiment.experiment_id,
        measure_type_id: 1,
        timestamp_ns: 1_000,
        value,
        tags: BTreeMap::new(),
    };
    let first = vec![("m1".to_string(), vec![point(1.0), point(2.0)])];
    assert_eq!(store.append_messages(&first).await.unwrap(), 2);
    // The same message again, beside a new one: only the new one is stored.
    let again = vec![
        ("m1".to_string(), vec![point(1.0), point(2.0)]),
        ("m2".to_string(), vec![point(1.0)]),
    ];
    assert_eq!(store.append_messages(&again).await.unwrap(), 1);
    assert_eq!(store.count(experiment.experiment_id).await.unwrap(), 3);
    assert_eq!(store.purge_inbox(i64::MAX).await.unwrap(), 2);
}

async fn large_batches_cross_insert_chunks_and_duplicate_keys_in_one_batch_count_once(f: &Fixture) {
    let store = &*f.store;
    let experiment = store.create_experiment("bench").await.unwrap();
    let points: Vec<NewMeasure> = (0..1000)
        .map(|i| NewMeasure {
            experiment_id: experiment.experiment_id,
            measure_type_id: 1 + i % 4,
            timestamp_ns: i,
            value: i as f64,
            tags: BTreeMap::new(),
        })
        .collect();
    assert_eq!(store.append(&points).await.unwrap(), 1000);
    let messages: Vec<(String, Vec<NewMeasure>)> = (0..600)
        .map(|i| (format!("k{}", i % 300), vec![points[i % 300].clone()]))
        .collect();
    assert_eq!(store.append_messages(&messages).await.unwrap(), 300);
    assert_eq!(store.count(experiment.experiment_id).await.unwrap(), 1300);
    let all = store
        .query(&MeasureQuery {
            experiment_id: experiment.experiment_id,
            limit: 5000,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len(), 1300);
    assert_eq!(all.iter().filter(|m| m.value == 299.0).count(), 2);
}

/// A tiny deterministic generator, so a failure replays.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

pub(crate) async fn everything(
    store: &dyn Store,
    experiment_id: i64,
    page: u32,
) -> Vec<(i64, i64, String, f64)> {
    let mut out = Vec::new();
    let mut query = MeasureQuery {
        experiment_id,
        limit: page,
        ..Default::default()
    };
    loop {
        let measures = store.query(&query).await.unwrap();
        let Some(last) = measures.last() else {
            return out;
        };
        query.after = Some((last.timestamp_ns, last.seq));
        out.extend(
            measures
                .iter()
                .map(|m| (m.timestamp_ns, m.seq, m.measure_type.clone(), m.value)),
        );
    }
}

/// Chunks of each series, as (start, end, count), checked to be in order and disjoint.
async fn chunk_layout(f: &Fixture) -> Vec<(i64, i64, i64)> {
    let rows = f
        .rows6(
            "select series_id, start_ns, start_seq, end_ns, end_seq, point_count from chunks
             order by series_id, end_ns, end_seq",
        )
        .await;
    for pair in rows.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        if a.0 == b.0 {
            assert!((a.3, a.4) < (b.1, b.2), "chunks overlap: {a:?} {b:?}");
        }
    }
    rows.iter().map(|r| (r.1, r.3, r.5)).collect()
}

async fn recent_count(f: &Fixture) -> i64 {
    f.scalar("select cast(coalesce(sum(point_count), 0) as bigint) from recent_blocks")
        .await
}

async fn compaction_keeps_every_point_in_order_even_late_and_tied_ones(f: &Fixture) {
    let store = &*f.store;
    let experiment = store.create_experiment("vibrations").await.unwrap();
    let mut rng = Lcg(7);
    let point = |ts: i64, value: f64, type_id: i64, host: &str| NewMeasure {
        experiment_id: experiment.experiment_id,
        measure_type_id: type_id,
        timestamp_ns: ts,
        value,
        tags: if host.is_empty() {
            BTreeMap::new()
        } else {
            BTreeMap::from([("host".to_string(), host.to_string())])
        },
    };
    // Rounds of arrivals: mostly in order, some late (inside compacted ranges), some ties.
    for round in 0..6 {
        let batch: Vec<NewMeasure> = (0..900)
            .map(|i| {
                let ts = if rng.next(10) == 0 {
                    rng.next(1000 * (round + 1)) as i64 * 1_000
                } else {
                    (1000 * round + i) as i64 * 1_000
                };
                let value = rng.next(100_000) as f64 / 1000.0;
                let host = ["", "lab1", "lab2"][rng.next(3) as usize];
                point(ts, value, 1 + rng.next(2) as i64, host)
            })
            .collect();
        store.append(&batch).await.unwrap();
        let before = everything(store, experiment.experiment_id, 10_000).await;
        let report = store.compact(500).await.unwrap();
        assert!(report.points > 0);
        // Until drained: the limit of 500 per series leaves some behind.
        while store.compact(500).await.unwrap().points > 0 {}
        assert_eq!(recent_count(f).await, 0);
        let after = everything(store, experiment.experiment_id, 10_000).await;
        assert_eq!(
            after, before,
            "round {round}: compaction changed what a query reads"
        );
        let paged = everything(store, experiment.experiment_id, 7).await;
        assert_eq!(
            paged, before,
            "round {round}: small pages across chunks differ"
        );
        assert!(
            before
                .windows(2)
                .all(|w| (w[0].0, w[0].1) < (w[1].0, w[1].1))
        );
        chunk_layout(f).await;
    }
    assert_eq!(store.count(experiment.experiment_id).await.unwrap(), 5400);
}

async fn a_series_fed_a_few_points_at_a_time_still_fills_its_chunks(f: &Fixture) {
    let store = &*f.store;
    let experiment = store.create_experiment("slow").await.unwrap();
    for step in 0..300i64 {
        let batch: Vec<NewMeasure> = (0..10)
            .map(|i| NewMeasure {
                experiment_id: experiment.experiment_id,
                measure_type_id: 1,
                timestamp_ns: (step * 10 + i) * 1_000_000_000,
                value: 20.0 + (i as f64) / 8.0,
                tags: BTreeMap::new(),
            })
            .collect();
        store.append(&batch).await.unwrap();
        store.compact(100_000).await.unwrap();
    }
    let layout = chunk_layout(f).await;
    assert_eq!(layout.iter().map(|c| c.2).sum::<i64>(), 3000);
    assert!(
        layout.len() <= 4,
        "{} chunks for 3,000 points: {layout:?}",
        layout.len()
    );
}

async fn series_reads_recent_points_and_ends_of_series(f: &Fixture) {
    let store = &*f.store;
    let experiment = store.create_experiment("ends").await.unwrap();
    let measures: Vec<NewMeasure> = (0..3000i64)
        .map(|i| NewMeasure {
            experiment_id: experiment.experiment_id,
            measure_type_id: 2,
            timestamp_ns: 1_000 + i * 10,
            value: i as f64,
            tags: BTreeMap::new(),
        })
        .collect();
    store.append(&measures).await.unwrap();
    store.compact(100_000).await.unwrap();
    store
        .append(&[NewMeasure {
            timestamp_ns: 5,
            value: -1.0,
            ..measures[0].clone()
        }])
        .await
        .unwrap();
    let series = store
        .series(experiment.experiment_id, Some(2))
        .await
        .unwrap();
    assert_eq!(series.len(), 1);
    let id = series[0].series_id;
    assert!(
        store
            .series(experiment.experiment_id, Some(3))
            .await
            .unwrap()
            .is_empty()
    );
    let mut seen = 0;
    let recent_in_window = store
        .read_series(
            id,
            1_000 + 1500 * 10,
            1_000 + 1600 * 10,
            None,
            &mut |summary, bytes| {
                let columns = mymonit_tsdb::chunk::decode(bytes)?;
                assert_eq!(columns.len() as u64, summary.count);
                seen += 1;
                Ok(())
            },
        )
        .await
        .unwrap();
    assert!(
        (1..=2).contains(&seen),
        "{seen} chunks for a window inside one or two"
    );
    assert!(recent_in_window.is_empty(), "{recent_in_window:?}");
    // A summarized read leaves out exactly the bytes of the chunks the rule answers: two
    // buckets split inside a chunk, so that chunk comes whole and the others bare.
    let mut summaries = Vec::new();
    store
        .read_series(id, i64::MIN, i64::MAX, None, &mut |summary, _| {
            summaries.push(*summary);
            Ok(())
        })
        .await
        .unwrap();
    let split = summaries
        .iter()
        .find(|s| s.end.0 > s.start.0 + 1)
        .map(|s| s.start.0 + 1)
        .unwrap();
    let rule = mymonit_tsdb::stats::Aggregation::new(
        vec![mymonit_tsdb::stats::Statistic::Count],
        vec![0, split, 1_000_000],
        0,
        1_000_000,
    )
    .summary_rule()
    .unwrap();
    let (mut bare, mut whole) = (0, 0);
    store
        .read_series(id, 0, 1_000_000, Some(&rule), &mut |summary, bytes| {
            if rule.answers(summary) {
                assert!(bytes.is_empty(), "bytes of a chunk the rule answers");
                bare += 1;
            } else {
                assert_eq!(
                    mymonit_tsdb::chunk::decode(bytes)?.len() as u64,
                    summary.count
                );
                whole += 1;
            }
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!((bare + whole, whole), (summaries.len(), 1));
    let recent = store
        .read_series(id, 0, 10, None, &mut |_, _| Ok(()))
        .await
        .unwrap();
    assert_eq!(recent.len(), 1);
    assert_eq!(store.earliest(id).await.unwrap(), Some(5));
    let latest = store
        .latest_of_experiment(experiment.experiment_id)
        .await
        .unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[0].0.series_id, id);
    assert_eq!(
        (latest[0].1.ts, latest[0].1.value),
        (1_000 + 2999 * 10, 2999.0)
    );
}

async fn retention_drops_old_points_and_only_them(f: &Fixture) {
    let store = &*f.store;
    let experiment = store.create_experiment("short-memory").await.unwrap();
    let day = 86_400 * 1_000_000_000i64;
    let now = 100 * day;
    // One point an hour over ten days.
    let measures: Vec<NewMeasure> = (0..240i64)
        .map(|h| NewMeasure {
            experiment_id: experiment.experiment_id,
            measure_type_id: 1,
            timestamp_ns: now - 10 * day + h * day / 24,
            value: h as f64,
            tags: BTreeMap::new(),
        })
        .collect();
    store.append(&measures[..200]).await.unwrap();
    store.compact(100_000).await.unwrap();
    store.append(&measures[200..]).await.unwrap();
    assert_eq!(
        store.apply_retention(now).await.unwrap(),
        0,
        "no rule, nothing dropped"
    );
    assert_eq!(
        store
            .retention_days(experiment.experiment_id)
            .await
            .unwrap(),
        None
    );
    store
        .set_retention_days(experiment.experiment_id, Some(3))
        .await
        .unwrap();
    assert_eq!(
        store
            .retention_days(experiment.experiment_id)
            .await
            .unwrap(),
        Some(3)
    );
    assert_eq!(store.apply_retention(now).await.unwrap(), 168);
    let kept = everything(store, experiment.experiment_id, 1000).await;
    assert_eq!(kept.len(), 72);
    assert!(kept.iter().all(|m| m.0 >= now - 3 * day));
    assert!(matches!(
        store.set_retention_days(999, Some(1)).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn latest_of_an_experiment_takes_chunks_and_recent_blocks(f: &Fixture) {
    let store = &*f.store;
    let experiment = store.create_experiment("ends").await.unwrap();
    let other = store.create_experiment("other").await.unwrap();
    let measure = |experiment_id: i64, type_id: i64, ts: i64, value: f64| NewMeasure {
        experiment_id,
        measure_type_id: type_id,
        timestamp_ns: ts,
        value,
        tags: BTreeMap::new(),
    };
    store
        .append(&[
            measure(experiment.experiment_id, 1, 10, 1.0),
            measure(experiment.experiment_id, 1, 30, 3.0),
            measure(experiment.experiment_id, 2, 5, 5.0),
            measure(other.experiment_id, 1, 99, 9.0),
        ])
        .await
        .unwrap();
    store.compact(1 << 20).await.unwrap();
    // A late point (older) and a tie at the latest timestamp, arriving later: the tie wins.
    store
        .append(&[
            measure(experiment.experiment_id, 1, 20, 2.0),
            measure(experiment.experiment_id, 2, 5, 6.0),
        ])
        .await
        .unwrap();
    let latest = store
        .latest_of_experiment(experiment.experiment_id)
        .await
        .unwrap();
    let found: Vec<(i64, i64, f64)> = latest
        .iter()
        .map(|(series, point)| (series.measure_type_id, point.ts, point.value))
        .collect();
    assert_eq!(found, vec![(1, 30, 3.0), (2, 5, 6.0)]);
}

/// Reads racing compaction: every read sees each point once, whether it is still in a recent
/// block or already in a chunk (each read is one snapshot).
async fn reads_racing_compaction_see_each_point_once(f: &Fixture) {
    let store = f.store.clone();
    let experiment = store.create_experiment("racing").await.unwrap();
    let experiment_id = experiment.experiment_id;
    const BATCHES: i64 = 200;
    const PER_BATCH: i64 = 200;
    // Reads done so far: the writer waits for the first one after its first batch, so that at
    // least one read races the writer however the two threads are scheduled.
    let reads_done = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let writer = {
        let store = store.clone();
        let reads_done = reads_done.clone();
        tokio::spawn(async move {
            for step in 0..BATCHES {
                if step == 1 {
                    while reads_done.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                    }
                }
                let batch: Vec<NewMeasure> = (0..PER_BATCH)
                    .map(|i| NewMeasure {
                        experiment_id,
                        measure_type_id: 1,
                        timestamp_ns: (step * PER_BATCH + i) * 1_000_000,
                        value: i as f64,
                        tags: BTreeMap::new(),
                    })
                    .collect();
                store.append(&batch).await.unwrap();
                // Compact a part at a time, so that compactions keep committing while the
                // reader reads.
                store.compact(150).await.unwrap();
            }
            while store.compact(150).await.unwrap().points > 0 {}
        })
    };
    let series_id = loop {
        if let Some(series) = store.series(experiment_id, None).await.unwrap().first() {
            break series.series_id;
        }
        tokio::task::yield_now().await;
    };
    let mut reads = 0;
    loop {
        let done = writer.is_finished();
        let page = store
            .query(&MeasureQuery {
                experiment_id,
                measure_type_id: None,
                from_ns: None,
                to_ns: None,
                after: None,
                limit: 1_000_000,
            })
            .await
            .unwrap();
        let keys: Vec<(i64, i64)> = page.iter().map(|m| (m.timestamp_ns, m.seq)).collect();
        assert!(
            keys.windows(2).all(|pair| pair[0] < pair[1]),
            "read {reads}: a point twice or out of order among {}",
            keys.len()
        );
        let mut in_chunks = 0u64;
        let recent = store
            .read_series(series_id, i64::MIN, i64::MAX, None, &mut |summary, _| {
                in_chunks += summary.count;
                Ok(())
            })
            .await
            .unwrap();
        let total = in_chunks + recent.len() as u64;
        assert!(
            total <= (BATCHES * PER_BATCH) as u64 && total.is_multiple_of(PER_BATCH as u64),
            "read {reads}: {in_chunks} points in chunks + {} recent is not a whole number of batches",
            recent.len()
        );
        reads += 1;
        reads_done.store(reads, std::sync::atomic::Ordering::SeqCst);
        if done {
            assert_eq!(keys.len() as i64, BATCHES * PER_BATCH);
            assert_eq!(total as i64, BATCHES * PER_BATCH);
            break;
        }
    }
    writer.await.unwrap();
    assert!(reads > 1);
}

async fn two_processes_on_one_database_never_share_an_arrival_number(f: &Fixture) {
    let first = &*f.store;
    // A second store on the same database stands for a second server process.
    let second = f.open_another(&OpenOptions::default()).await;
    let experiment = first.create_experiment("device-vibrations").await.unwrap();
    // Every reading in the same second: only the arrival number tells them apart.
    let reading = |value: f64| NewMeasure {
        experiment_id: experiment.experiment_id,
        measure_type_id: 1,
        timestamp_ns: 1_653_040_000_000_000_000,
        value,
        tags: BTreeMap::new(),
    };
    let (a, b) = tokio::join!(
        async {
            for i in 0..50 {
                first.append(&[reading(f64::from(i))]).await.unwrap();
            }
        },
        async {
            for i in 0..50 {
                second.append(&[reading(f64::from(100 + i))]).await.unwrap();
            }
        }
    );
    let ((), ()) = (a, b);
    while first.compact(1_000).await.unwrap().points > 0 {}
    let stored = first
        .query(&MeasureQuery {
            experiment_id: experiment.experiment_id,
            limit: 1_000,
            ..MeasureQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(stored.len(), 100, "a tied reading was merged away");
    // A store opened later continues past every number handed out.
    let third = f.open_another(&OpenOptions::default()).await;
    third.append(&[reading(-1.0)]).await.unwrap();
    while third.compact(1_000).await.unwrap().points > 0 {}
    assert_eq!(third.count(experiment.experiment_id).await.unwrap(), 101);
}

async fn consumer_sessions_remember_bodies_until_acknowledged_or_resolved(f: &Fixture) {
    use crate::{ConsumerBatch, Delivered, DeliveryKey, DeliveryOutcome, OpenSession};
    let store = &*f.store;
    let experiment = store.create_experiment("device-vibrations").await.unwrap();
    let body = [7u8; 16];
    let message = |key: DeliveryKey| Delivered {
        key,
        measures: vec![NewMeasure {
            experiment_id: experiment.experiment_id,
            measure_type_id: 1,
            timestamp_ns: 0,
            value: 1.0,
            tags: BTreeMap::new(),
        }],
    };
    let a = store.begin_consumer_session("a").await.unwrap();
    let b = store.begin_consumer_session("b").await.unwrap();
    let batch = |session_id, batch_no, deliveries: &[Delivered]| {
        let deliveries = deliveries.to_vec();
        async move {
            store
                .append_deliveries(ConsumerBatch {
                    session_id,
                    batch_no,
                    acknowledged_through: None,
                    deliveries: &deliveries,
                })
                .await
                .unwrap()
        }
    };
    let first = [
        message(DeliveryKey::First(body)),
        message(DeliveryKey::First(body)),
    ];
    assert_eq!(
        batch(a, 1, &first).await,
        vec![DeliveryOutcome::Stored(1), DeliveryOutcome::Stored(1)]
    );
    // b's redelivery of that body waits for a, which is alive as far as b knows.
    let redelivery = [message(DeliveryKey::Redelivered {
        body,
        not_from: vec![],
    })];
    assert_eq!(
        batch(b, 1, &redelivery).await,
        vec![DeliveryOutcome::Undecided(vec!["a".into()])]
    );
    let open = store.open_consumer_sessions(b).await.unwrap();
    assert_eq!(
        open,
        vec![OpenSession {
            name: "a".into(),
            unacknowledged: 2
        }]
    );
    // a closed with nothing acknowledged: both copies come back and are skipped, a third is
    // stored.
    assert!(store.resolve_consumer_session("a", Some(0)).await.unwrap());
    assert!(!store.resolve_consumer_session("a", Some(0)).await.unwrap());
    let three = [
        message(DeliveryKey::Redelivered {
            body,
            not_from: vec![],
        }),
        message(DeliveryKey::Redelivered {
            body,
            not_from: vec![],
        }),
        message(DeliveryKey::Redelivered {
            body,
            not_from: vec![],
        }),
    ];
    assert_eq!(
        batch(b, 2, &three).await,
        vec![
            DeliveryOutcome::Duplicate,
            DeliveryOutcome::Duplicate,
            DeliveryOutcome::Stored(1)
        ]
    );
    assert_eq!(store.count(experiment.experiment_id).await.unwrap(), 3);
    // b's own body is forgotten once acknowledged; purging forgets resolved sessions.
    store.forget_acknowledged(b, 2).await.unwrap();
    assert_eq!(store.purge_inbox(i64::MAX).await.unwrap(), 1);
    assert_eq!(
        store.open_consumer_sessions(0).await.unwrap(),
        vec![OpenSession {
            name: "b".into(),
            unacknowledged: 0
        }]
    );
}

async fn an_experiment_gets_no_more_series_than_its_limit(f: &Fixture) {
    let store = f
        .open_another(&OpenOptions {
            max_series_per_experiment: Some(3),
            ..OpenOptions::default()
        })
        .await;
    let experiment = store.create_experiment("device-vibrations").await.unwrap();
    let other = store.create_experiment("black-holes").await.unwrap();
    let point = |experiment_id: i64, host: &str| NewMeasure {
        experiment_id,
        measure_type_id: 1,
        timestamp_ns: 0,
        value: 1.0,
        tags: BTreeMap::from([("host".to_string(), host.to_string())]),
    };
    let hosts: Vec<NewMeasure> = ["a", "b", "c"]
        .iter()
        .map(|h| point(experiment.experiment_id, h))
        .collect();
    assert_eq!(store.append(&hosts).await.unwrap(), 3);
    // Known series still take points; new ones beyond the limit fail the batch, named.
    let more = [
        point(experiment.experiment_id, "a"),
        point(experiment.experiment_id, "d"),
        point(experiment.experiment_id, "e"),
        point(experiment.experiment_id, "d"),
        point(other.experiment_id, "z"),
    ];
    match store.append(&more).await {
        Err(StoreError::SeriesLimit { limit, series }) => {
            assert_eq!(limit, 3);
            let hosts: Vec<&str> = series.iter().map(|(_, _, t)| t["host"].as_str()).collect();
            assert_eq!(hosts, ["d", "e"]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(store.count(experiment.experiment_id).await.unwrap(), 3);
    // Without them, the rest goes in: another experiment has its own limit.
    let fitting = [more[0].clone(), more[4].clone()];
    assert_eq!(store.append(&fitting).await.unwrap(), 2);
}
