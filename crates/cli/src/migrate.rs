//! `mymonit migrate-data`: moves an embedded deployment (SQLite) into PostgreSQL.

use std::sync::Mutex;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use mymonit_store::{
    DatabaseUrl, MigrationProgress, MigrationReport, OpenOptions, PgStore, SqliteStore, Store,
};

/// Arguments of `migrate-data`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// The embedded deployment to copy: sqlite://DIR, DIR being its data directory
    /// [default: the configured data directory].
    #[arg(long, value_name = "URL")]
    from: Option<String>,

    /// The PostgreSQL database to copy into: postgres://USER:PASSWORD@HOST:PORT/DATABASE. It
    /// must be empty (MyMonit's tables are created if missing), unless --replace.
    #[arg(long, value_name = "URL")]
    to: String,

    /// Delete everything the target holds (its audit trail included) before copying, in the
    /// same transaction as the copy.
    #[arg(long)]
    replace: bool,
}

/// Runs `migrate-data`; `default_data_dir` is the configured data directory.
pub async fn run(args: &MigrateArgs, default_data_dir: &std::path::Path) -> anyhow::Result<()> {
    let source_dir = match &args.from {
        None => default_data_dir.to_path_buf(),
        Some(url) => match url.parse::<DatabaseUrl>()? {
            DatabaseUrl::Sqlite(dir) => dir,
            DatabaseUrl::Postgres(_) => {
                bail!("--from must name an embedded deployment, sqlite://DIR")
            }
        },
    };
    let target_url = match args.to.parse::<DatabaseUrl>()? {
        DatabaseUrl::Postgres(url) => url,
        DatabaseUrl::Sqlite(_) => {
            bail!(
                "--to must name a PostgreSQL database, postgres://USER:PASSWORD@HOST:PORT/DATABASE"
            )
        }
    };
    let redacted_target = mymonit_store::redact_password(&target_url);
    let database_file = source_dir.join(mymonit_store::sqlite::DATABASE_FILE);
    if !database_file.is_file() {
        bail!(
            "no MyMonit database in {} (expected {})",
            source_dir.display(),
            database_file.display()
        );
    }
    eprintln!(
        "Copying {} into {redacted_target}. Stop the servers using either database first: what \
         they write during the copy is not copied.",
        source_dir.display()
    );
    let source = SqliteStore::open(&source_dir)
        .await
        .with_context(|| format!("cannot open {}", database_file.display()))?;
    let target = PgStore::open(&target_url, &OpenOptions::default())
        .await
        .with_context(|| format!("cannot open the database {redacted_target}"))?;
    let progress = Bar::default();
    let copied =
        mymonit_store::migrate_from_sqlite(&source, &target, args.replace, &progress).await;
    progress.finish();
    source.close().await;
    let report = match copied {
        Ok(report) => report,
        Err(err) => {
            target.close().await;
            return Err(err.into());
        }
    };
    let audit = mymonit_server::audit::verify(&target).await;
    target.close().await;
    let audit = audit.context("cannot read the audit trail back from the target")?;
    if let Some(bad) = audit.first_bad {
        bail!(
            "the copied audit trail does not verify on the target: record {}: {}",
            bad.seq,
            bad.reason
        );
    }
    print_report(&report, &redacted_target, audit.records);
    let key = source_dir.join(mymonit_server::auth::tokens::SIGNING_KEY_FILE);
    if key.is_file() {
        println!(
            "Next: start the instances on this database (--database-url, as given to --to) with \
             auth.signing_key_file = {} (copied where they run), so that tokens issued so far \
             stay valid.",
            key.display()
        );
    }
    Ok(())
}

fn print_report(report: &MigrationReport, target: &str, audit_records: i64) {
    let rows = |table: &str| report.rows.get(table).copied().unwrap_or_default();
    println!("Copied into {target} and verified:");
    println!(
        "  {} users, {} experiments, {} associations, {} measure types, {} ingest tokens",
        rows("users"),
        rows("experiments"),
        rows("associations"),
        rows("measure_types"),
        rows("ingest_tokens")
    );
    println!(
        "  {} points in {} series ({} chunks, {} blocks not yet compacted), every series' count and checksum equal",
        report.points,
        report.series_verified,
        rows("chunks"),
        rows("recent_blocks")
    );
    match &report.audit_head {
        Some((seq, hash)) => println!(
            "  audit trail: {audit_records} records, chain intact on the target, head {seq} {hash}"
        ),
        None => println!("  audit trail: empty"),
    }
    println!(
        "  {} message ids and idempotency keys, {} consumer sessions",
        rows("inbox"),
        rows("amqp_sessions")
    );
}

/// One progress bar per step, on standard error (hidden when it is not a terminal).
#[derive(Default)]
struct Bar {
    current: Mutex<Option<ProgressBar>>,
}

impl Bar {
    fn finish(&self) {
        let mut current = self.current.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(bar) = current.take() {
            bar.finish();
        }
    }
}

impl MigrationProgress for Bar {
    fn step(&self, name: &'static str, unit: &'static str, total: u64) {
        self.finish();
        let bar = ProgressBar::new(total).with_style(
            ProgressStyle::with_template(&format!(
                "{{msg:<40}} {{bar:30}} {{human_pos}}/{{human_len}} {unit} ({{eta}})"
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(name);
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar);
    }

    fn advance(&self, done: u64) {
        if let Some(bar) = self
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            bar.inc(done);
        }
    }
}
