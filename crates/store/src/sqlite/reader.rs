//! Reads of the measures through blocking connections of their own.
//!
//! sqlx runs each SQLite connection on a worker thread and hands every row across a channel,
//! copying each value on the way: on the query benchmark that marshalling took about half of
//! the server's CPU (more than decoding the chunks). A read here runs whole on one blocking
//! thread, in one read transaction (one snapshot, as before), and returns its rows already
//! decoded into the store's types. Connections are opened read-only without SQLite's own
//! mutex (each is used by one thread at a time), and kept for the next read.

use std::{
    collections::HashMap,
    path::PathBuf,
    sync::{Arc, Mutex, PoisonError},
};

use mymonit_model::{Experiment, MeasureType, User, measure::MeasurePage};
use mymonit_tsdb::{Point, chunk::Summary, stats::SummaryRule};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior};

use crate::layout::{
    FetchedChunk, SeriesCursor, Step, block_points, empty_page, merge_step, push_point,
};
use crate::{Account, MeasureQuery, Result, Series, tags_from_json};

/// Idle read connections kept for later reads.
const MAX_IDLE: usize = 8;

/// A pool of blocking read-only connections to one database file.
#[derive(Debug)]
pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Set once the store closes: connections are no longer kept.
    closed: std::sync::atomic::AtomicBool,
}

impl Readers {
    /// Readers of the database file at `path` (which must exist, in WAL mode).
    pub(crate) fn new(path: PathBuf) -> Arc<Self> {
        Arc::new(Self {
            path,
            idle: Mutex::new(Vec::new()),
            closed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn open(&self) -> Result<Connection> {
        let connection = super::blocking_connection(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        // Statements of reads are few and repeated: keep them all prepared.
        connection.set_prepared_statement_cache_capacity(32);
        Ok(connection)
    }

    /// Closes the idle connections (a read running now closes its own when done).
    pub(crate) fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Runs `read` in one read transaction on a blocking thread.
    pub(crate) async fn read<T: Send + 'static>(
        self: &Arc<Self>,
        read: impl FnOnce(&Transaction<'_>) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let readers = Arc::clone(self);
        super::on_blocking_thread("read", move || readers.run(read)).await
    }

    /// Runs `read`, a few index lookups (a request's account, token and experiment checks),
    /// in one read transaction on the calling thread: handing it to a blocking thread and
    /// back costs two thread wake-ups, more than the lookups (their pages are cached, and in
    /// WAL mode a reader does not wait for the writer).
    pub(crate) fn read_now<T>(
        &self,
        read: impl FnOnce(&Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        self.run(read)
    }

    /// Runs `read` in one read transaction on a kept connection (or a new one).
    fn run<T>(&self, read: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let connection = match idle {
            Some(connection) => connection,
            None => self.open()?,
        };
        let result = (|| {
            let transaction =
                Transaction::new_unchecked(&connection, TransactionBehavior::Deferred)?;
            let out = read(&transaction)?;
            transaction.commit()?;
            Ok(out)
        })();
        // A connection left inside a transaction (a failed read) is dropped, not reused.
        if connection.is_autocommit() && !self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < MAX_IDLE {
                idle.push(connection);
            }
        }
        result
    }
}

/// A blob column, borrowed.
pub(super) fn blob<'a>(row: &'a rusqlite::Row<'_>, index: usize) -> rusqlite::Result<&'a [u8]> {
    row.get_ref(index)?.as_blob().map_err(|err| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Blob, err.into())
    })
}

/// A text column, borrowed.
fn text<'a>(row: &'a rusqlite::Row<'_>, index: usize) -> rusqlite::Result<&'a str> {
    row.get_ref(index)?.as_str().map_err(|err| {
        rusqlite::Error::FromSqlConversionFailure(index, rusqlite::types::Type::Text, err.into())
    })
}

/// The series of an experiment (of one measure type, if given), by id.
pub(crate) fn series(
    tx: &Transaction<'_>,
    experiment_id: i64,
    measure_type_id: Option<i64>,
) -> Result<Vec<Series>> {
    let mut statement = tx.prepare_cached(
        "select s.series_id, s.experiment_id, s.measure_type_id, t.name, s.tags
         from series s join measure_types t on t.measure_type_id = s.measure_type_id
         where s.experiment_id = ?1 and (?2 is null or s.measure_type_id = ?2)
         order by s.series_id",
    )?;
    let mut rows = statement.query((experiment_id, measure_type_id))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let tags = text(row, 4)?;
        out.push(Series {
            series_id: row.get(0)?,
            experiment_id: row.get(1)?,
            measure_type_id: row.get(2)?,
            measure_type: row.get(3)?,
            tags: tags_from_json((!tags.is_empty()).then_some(tags)),
        });
    }
    Ok(out)
}

/// The points of a series in `[from, to)` still in recent blocks, in no particular order.
pub(crate) fn recent_points(
    tx: &Transaction<'_>,
    series_id: i64,
    from: i64,
    to: i64,
) -> Result<Vec<Point>> {
    let mut statement = tx.prepare_cached(
        "select block_id, data from recent_blocks
         where series_id = ?1 and max_ts >= ?2 and min_ts < ?3",
    )?;
    let mut rows = statement.query((series_id, from, to))?;
    let mut points = Vec::new();
    while let Some(row) = rows.next()? {
        let decoded = block_points(row.get(0)?, blob(row, 1)?)?;
        points.extend(decoded.into_iter().filter(|p| p.ts >= from && p.ts < to));
    }
    Ok(points)
}

/// A chunk as aggregations read it: its id, summary and bytes.
pub(crate) type SummarizedChunk = (i64, Summary, Vec<u8>);

/// The chunks of a series holding points of `[from, to)` (maybe others too), in order, and
/// its points in `[from, to)` not yet compacted. The bytes of the chunks `whole` answers
/// are left empty.
pub(crate) fn series_range(
    tx: &Transaction<'_>,
    series_id: i64,
    from: i64,
    to: i64,
    whole: Option<&SummaryRule>,
) -> Result<(Vec<SummarizedChunk>, Vec<Point>)> {
    let mut statement = tx.prepare_cached(
        "select chunk_id, start_ns, start_seq, end_ns, end_seq, point_count,
                sum, min, max, m2, first, last, data
         from chunks where series_id = ?1 and end_ns >= ?2 order by end_ns, end_seq",
    )?;
    let mut rows = statement.query((series_id, from))?;
    let mut chunks = Vec::new();
    while let Some(row) = rows.next()? {
        let start_ns: i64 = row.get(1)?;
        // Chunks are disjoint and in order: once one starts at `to`, all later do.
        if start_ns >= to {
            break;
        }
        let summary = Summary {
            count: row.get::<_, i64>(5)?.max(0) as u64,
            start: (start_ns, row.get(2)?),
            end: (row.get(3)?, row.get(4)?),
            sum: row.get(6)?,
            min: row.get(7)?,
            max: row.get(8)?,
            m2: row.get(9)?,
            first: row.get(10)?,
            last: row.get(11)?,
        };
        let data = if whole.is_some_and(|whole| whole.answers(&summary)) {
            Vec::new()
        } else {
            row.get(12)?
        };
        chunks.push((row.get(0)?, summary, data));
    }
    drop(rows);
    Ok((chunks, recent_points(tx, series_id, from, to)?))
}

/// Each series of an experiment with its last point (highest timestamp, then arrival).
pub(crate) fn latest_of_experiment(
    tx: &Transaction<'_>,
    experiment_id: i64,
) -> Result<Vec<(Series, Point)>> {
    // Each series' last chunk (its summary holds the last value) and the recent blocks
    // holding each series' highest timestamp (decoded here).
    let mut statement = tx.prepare_cached(
        "select c.series_id, c.end_ns, c.end_seq, c.last, null, null
         from series s
         join chunks c on c.chunk_id = (
             select chunk_id from chunks where series_id = s.series_id
             order by end_ns desc, end_seq desc limit 1)
         where s.experiment_id = ?1
         union all
         select b.series_id, null, null, null, b.block_id, b.data from series s
         join recent_blocks b on b.series_id = s.series_id
         where s.experiment_id = ?1
           and b.max_ts = (select max(max_ts) from recent_blocks where series_id = s.series_id)",
    )?;
    let mut rows = statement.query([experiment_id])?;
    let mut latest: HashMap<i64, Point> = HashMap::new();
    while let Some(row) = rows.next()? {
        let series_id: i64 = row.get(0)?;
        let points = match row.get::<_, Option<i64>>(4)? {
            None => vec![Point {
                ts: row.get(1)?,
                seq: row.get(2)?,
                value: row.get(3)?,
            }],
            Some(block_id) => block_points(block_id, blob(row, 5)?)?,
        };
        for point in points {
            let entry = latest.entry(series_id).or_insert(point);
            if point.key() > entry.key() {
                *entry = point;
            }
        }
    }
    drop(rows);
    Ok(series(tx, experiment_id, None)?
        .into_iter()
        .filter_map(|one| {
            let point = latest.get(&one.series_id).copied()?;
            Some((one, point))
        })
        .collect())
}

/// The timestamp of a series' first point.
pub(crate) fn earliest(tx: &Transaction<'_>, series_id: i64) -> Result<Option<i64>> {
    let chunked: Option<i64> = tx
        .prepare_cached(
            "select start_ns from chunks where series_id = ?1 order by end_ns, end_seq limit 1",
        )?
        .query_row([series_id], |row| row.get(0))
        .optional()?;
    let recent: Option<i64> = tx
        .prepare_cached("select min(min_ts) from recent_blocks where series_id = ?1")?
        .query_row([series_id], |row| row.get(0))?;
    Ok(match (chunked, recent) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}

/// The next point of a cursor, fetching its next chunks when it needs them.
/// Fetches a cursor's next chunks.
fn fetch_chunks(cursor: &mut SeriesCursor, tx: &Transaction<'_>) -> Result<()> {
    let mut statement = tx.prepare_cached(
        "select chunk_id, start_ns, start_seq, end_ns, end_seq, data from chunks
         where series_id = ?1 and (end_ns > ?2 or (end_ns = ?2 and end_seq > ?3))
           and start_ns < ?4
         order by end_ns, end_seq limit ?5",
    )?;
    let chunks = statement
        .query_map(
            (
                cursor.series_id,
                cursor.fetched_up_to.0,
                cursor.fetched_up_to.1,
                cursor.to,
                cursor.batch,
            ),
            |row| {
                Ok(FetchedChunk {
                    chunk_id: row.get(0)?,
                    start: (row.get(1)?, row.get(2)?),
                    end: (row.get(3)?, row.get(4)?),
                    data: row.get(5)?,
                })
            },
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    cursor.add_chunks(chunks);
    Ok(())
}

/// A page of raw measures in `(timestamp, seq)` order (see [`crate::MeasureQuery`]).
pub(crate) fn measures(tx: &Transaction<'_>, query: &MeasureQuery) -> Result<MeasurePage> {
    let Some(experiment) = tx
        .prepare_cached("select name from experiments where experiment_id = ?1")?
        .query_row([query.experiment_id], |row| row.get::<_, String>(0))
        .optional()?
    else {
        return Ok(MeasurePage::new(query.experiment_id, String::new()));
    };
    let (from, to, after) = query.bounds();
    let limit = query.limit as usize;
    let series = series(tx, query.experiment_id, query.measure_type_id)?;
    let mut cursors = Vec::with_capacity(series.len());
    for one in &series {
        let recent = recent_points(tx, one.series_id, from, to)?;
        cursors.push(SeriesCursor::new(
            one.series_id,
            from,
            to,
            after,
            recent,
            limit,
        ));
    }
    let mut page = empty_page(query.experiment_id, experiment, &series, limit);
    while page.len() < limit {
        match merge_step(&mut cursors)? {
            Step::Point(index, point) => push_point(&mut page, index, point),
            Step::Fetch(index) => fetch_chunks(&mut cursors[index], tx)?,
            Step::Done => break,
        }
    }
    Ok(page)
}

// The reads every authenticated request makes (its token, its account, the experiment and
// the association it asks about, a measure type by name): on the blocking connections too,
// where each costs one hand-off to a thread instead of sqlx's per-row channel.

/// Whether a token (by hash) was revoked.
pub(crate) fn is_token_revoked(tx: &Transaction<'_>, token_hash: &str) -> Result<bool> {
    Ok(tx
        .prepare_cached("select 1 from revoked_tokens where token_hash = ?1")?
        .exists([token_hash])?)
}

/// An account that is not erased, by id.
pub(crate) fn account_by_id(tx: &Transaction<'_>, user_id: &str) -> Result<Option<Account>> {
    let mut statement = tx.prepare_cached(
        "select user_id, name, username, email, role, password_hash, token_generation
         from users where user_id = ?1 and erased_at is null",
    )?;
    let mut rows = statement.query([user_id])?;
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    let text = |index| {
        row.get::<_, Option<String>>(index)
            .map(Option::unwrap_or_default)
    };
    Ok(Some(Account {
        user: User {
            user_id: row.get(0)?,
            name: text(1)?.into(),
            username: text(2)?.into(),
            email: text(3)?.into(),
            role: crate::parse_role(&row.get::<_, String>(4)?)?,
        },
        password_hash: row.get(5)?,
        token_generation: row.get(6)?,
    }))
}

/// An experiment by id.
pub(crate) fn experiment(tx: &Transaction<'_>, experiment_id: i64) -> Result<Option<Experiment>> {
    Ok(tx
        .prepare_cached("select experiment_id, name from experiments where experiment_id = ?1")?
        .query_row([experiment_id], |row| {
            Ok(Experiment {
                experiment_id: row.get(0)?,
                name: row.get(1)?,
            })
        })
        .optional()?)
}

/// Whether a user is associated with an experiment.
pub(crate) fn is_associated(
    tx: &Transaction<'_>,
    experiment_id: i64,
    user_id: &str,
) -> Result<bool> {
    Ok(tx
        .prepare_cached("select 1 from associations where experiment_id = ?1 and user_id = ?2")?
        .exists((experiment_id, user_id))?)
}

/// A measure type by name.
pub(crate) fn measure_type_by_name(
    tx: &Transaction<'_>,
    name: &str,
) -> Result<Option<MeasureType>> {
    Ok(tx
        .prepare_cached(
            "select measure_type_id, name, symbol, quantity from measure_types where name = ?1",
        )?
        .query_row([name], |row| {
            Ok(MeasureType {
                measure_type_id: row.get(0)?,
                name: row.get(1)?,
                symbol: row.get(2)?,
                quantity: row.get(3)?,
            })
        })
        .optional()?)
}
