//! A story through the SQLite store on a temporary database file.

use std::collections::BTreeMap;

use mymonit_model::{Role, User, UserPatch, measure::NewMeasure};

use super::*;

fn user(id: &str, username: &str, role: Role) -> User {
    User {
        user_id: id.into(),
        name: format!("Name of {id}"),
        username: username.into(),
        email: format!("{username}@home.cern"),
        role,
    }
}

async fn open() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).await.unwrap();
    (dir, store)
}

#[tokio::test]
async fn accounts_conflicts_and_erasure() {
    let (_dir, store) = open().await;
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

#[tokio::test]
async fn experiments_and_measure_types() {
    let (_dir, store) = open().await;
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
    drop(store);
}

#[tokio::test]
async fn measures_page_in_time_order_with_ties() {
    let (dir, store) = open().await;
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

    store.close().await;
    let reopened = SqliteStore::open(dir.path()).await.unwrap();
    assert_eq!(reopened.count(experiment.experiment_id).await.unwrap(), 4);
    assert_eq!(reopened.list_measure_types().await.unwrap().len(), 22);
}

#[tokio::test]
async fn redelivered_messages_are_stored_once() {
    let (_dir, store) = open().await;
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

#[tokio::test]
async fn large_batches_cross_insert_chunks_and_duplicate_keys_in_one_batch_count_once() {
    let (_dir, store) = open().await;
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
