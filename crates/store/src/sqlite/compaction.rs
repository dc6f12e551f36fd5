//! Compaction on SQLite: recent blocks move into compressed chunks of one series, placed as
//! `mymonit_tsdb::compact::plan` says, in one transaction (see the module `measures`).

use std::{collections::BTreeMap, ops::Range};

use mymonit_tsdb::{
    Point,
    chunk::{self, Summary},
    compact::{self, ChunkBounds, Cut},
};
use rusqlite::{OptionalExtension, Transaction};

use super::{SqliteStore, reader::blob};
use crate::layout::{block_points, corrupt};
use crate::{CompactionReport, Result};

/// Free pages below which the free list is kept for the next recent points (1 MiB of 16 KiB
/// pages).
const SHRINK_AT_FREE_PAGES: i64 = 64;

/// Whether `free` pages of a file of `pages` go back to the file system. Pages freed by
/// compaction are reused by the next recent points, so a free list goes back when it is a
/// good part of the file, or once compaction has caught up (`drained`: after a burst or an
/// import; steady ingest frees fewer pages than [`SHRINK_AT_FREE_PAGES`] a pass).
fn worth_shrinking(free: i64, pages: i64, drained: bool) -> bool {
    free > SHRINK_AT_FREE_PAGES && (drained || free * 10 > pages)
}

impl SqliteStore {
    /// Compacts the oldest blocks, about `max_points` points, in one transaction: they are read
    /// in arrival order, written into their series' chunks, and deleted as one range; then a
    /// large free list goes back to the file system, in the same transaction.
    pub(super) async fn compact_batch(&self, max_points: usize) -> Result<CompactionReport> {
        self.writer
            .write(move |tx| {
                let report = compact_oldest(tx, max_points)?;
                if report.points > 0 {
                    // A batch that was not full took every recent point there was.
                    let drained = report.points < max_points.max(1) as u64;
                    shrink_if_sparse(tx, drained)?;
                }
                Ok(report)
            })
            .await
    }
}

/// Gives a large free list back to the file system (databases created with incremental
/// auto-vacuum; a no-op otherwise). `drained`: the compaction that just ran left no recent
/// points behind.
fn shrink_if_sparse(tx: &Transaction<'_>, drained: bool) -> Result<()> {
    let free: i64 = tx.query_row("pragma freelist_count", [], |row| row.get(0))?;
    let pages: i64 = tx.query_row("pragma page_count", [], |row| row.get(0))?;
    if worth_shrinking(free, pages, drained) {
        // The pragma frees one page a step, returning a row for each.
        let mut vacuum = tx.prepare("pragma incremental_vacuum")?;
        let mut freed = vacuum.query([])?;
        while freed.next()?.is_some() {}
    }
    Ok(())
}

/// [`SqliteStore::compact_batch`] inside `tx`.
fn compact_oldest(tx: &Transaction<'_>, max_points: usize) -> Result<CompactionReport> {
    let mut by_series: BTreeMap<i64, Vec<Point>> = BTreeMap::new();
    let mut last_block = None;
    let mut taken = 0;
    {
        let mut select = tx.prepare_cached(
            "select block_id, series_id, data from recent_blocks order by block_id",
        )?;
        let mut rows = select.query([])?;
        while taken < max_points.max(1)
            && let Some(row) = rows.next()?
        {
            let block_id: i64 = row.get(0)?;
            let points = block_points(block_id, blob(row, 2)?)?;
            taken += points.len();
            last_block = Some(block_id);
            by_series.entry(row.get(1)?).or_default().extend(points);
        }
    }
    let Some(last_block) = last_block else {
        return Ok(CompactionReport::default());
    };
    let mut report = CompactionReport::default();
    let mut pending = Vec::new();
    for (series_id, mut points) in by_series {
        points.sort_by_key(Point::key);
        report.add(place_series(tx, series_id, &points, &mut pending)?);
    }
    report.chunks_written += write_pending(tx, &pending)?;
    tx.prepare_cached("delete from recent_blocks where block_id <= ?1")?
        .execute([last_block])?;
    Ok(report)
}

/// The columns [`bounds_from_row`] reads.
const BOUNDS: &str = "chunk_id, start_ns, start_seq, end_ns, end_seq, point_count";

fn bounds_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ChunkBounds> {
    Ok(ChunkBounds {
        chunk_id: row.get(0)?,
        start: (row.get(1)?, row.get(2)?),
        end: (row.get(3)?, row.get(4)?),
        count: row.get(5)?,
    })
}

/// Writes sorted points as chunks of at most [`chunk::TARGET_POINTS`].
pub(super) fn insert_chunks(
    tx: &Transaction<'_>,
    series_id: i64,
    points: &[Point],
    cut: Cut,
) -> Result<u64> {
    let mut written = 0;
    for piece in compact::pieces(points, cut) {
        written += u64::from(insert_chunk(tx, series_id, piece)?);
    }
    Ok(written)
}

/// Writes one piece of sorted points as a chunk; returns whether there was one to write.
fn insert_chunk(tx: &Transaction<'_>, series_id: i64, piece: &[Point]) -> Result<bool> {
    let Some(summary) = Summary::of(piece) else {
        return Ok(false);
    };
    tx.prepare_cached(
        "insert into chunks (series_id, start_ns, start_seq, end_ns, end_seq, point_count,
                             sum, min, max, m2, first, last, data)
         values (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute((
        series_id,
        summary.start.0,
        summary.start.1,
        summary.end.0,
        summary.end.1,
        summary.count as i64,
        summary.sum,
        summary.min,
        summary.max,
        summary.m2,
        summary.first,
        summary.last,
        chunk::encode(piece),
    ))?;
    Ok(true)
}

/// A stored chunk's points.
fn read_chunk(tx: &Transaction<'_>, chunk_id: i64) -> Result<Vec<Point>> {
    let mut select = tx.prepare_cached("select data from chunks where chunk_id = ?1")?;
    let mut rows = select.query([chunk_id])?;
    let Some(row) = rows.next()? else {
        return Err(rusqlite::Error::QueryReturnedNoRows.into());
    };
    Ok(chunk::decode(blob(row, 0)?)
        .map_err(corrupt(chunk_id))?
        .points()
        .collect())
}

fn delete_chunk(tx: &Transaction<'_>, chunk_id: i64) -> Result<()> {
    tx.prepare_cached("delete from chunks where chunk_id = ?1")?
        .execute([chunk_id])?;
    Ok(())
}

/// Decodes a stored chunk and deletes it (its points are about to be written again).
pub(super) fn take_chunk(tx: &Transaction<'_>, chunk_id: i64) -> Result<Vec<Point>> {
    let points = read_chunk(tx, chunk_id)?;
    delete_chunk(tx, chunk_id)?;
    Ok(points)
}

/// A series' chunks to write: sorted points and the pieces they are cut into.
struct Pending {
    series_id: i64,
    points: Vec<Point>,
    pieces: Vec<Range<usize>>,
}

/// Places a series' recent points (sorted by key) as [`compact::plan`] says: deletes the
/// chunks they replace and adds what is to be written to `pending`. A replaced chunk whose
/// points come back unchanged as the first piece stays as it is stored: new points that
/// follow a series' last chunk across a round time would otherwise rewrite it every pass.
fn place_series(
    tx: &Transaction<'_>,
    series_id: i64,
    rows: &[Point],
    pending: &mut Vec<Pending>,
) -> Result<CompactionReport> {
    let (Some(low), Some(high)) = (rows.first().map(Point::key), rows.last().map(Point::key))
    else {
        return Ok(CompactionReport::default());
    };
    // Every chunk a recent point could fall inside or between.
    let overlapping: Vec<ChunkBounds> = tx
        .prepare_cached(&format!(
            "select {BOUNDS} from chunks
             where series_id = ?1 and end_ns >= ?2 and start_ns <= ?3 order by end_ns, end_seq"
        ))?
        .query_map((series_id, low.0, high.0), bounds_from_row)?
        .collect::<rusqlite::Result<_>>()?;
    let last = tx
        .prepare_cached(&format!(
            "select {BOUNDS} from chunks
             where series_id = ?1 order by end_ns desc, end_seq desc limit 1"
        ))?
        .query_row([series_id], bounds_from_row)
        .optional()?;
    let mut report = CompactionReport {
        series: 1,
        points: rows.len() as u64,
        ..CompactionReport::default()
    };
    for placement in compact::plan(rows, overlapping, last) {
        let (points, pieces) = match placement.replaces {
            Some(chunk_id) => {
                let stored = read_chunk(tx, chunk_id)?;
                let merged = compact::merge(placement.points, stored.iter().copied());
                let mut pieces = compact::piece_ranges(&merged, placement.cut);
                let stays = pieces
                    .first()
                    .is_some_and(|first| compact::same_points(&merged[first.clone()], &stored));
                if stays {
                    pieces.remove(0);
                } else {
                    delete_chunk(tx, chunk_id)?;
                    report.chunks_replaced += 1;
                }
                (merged, pieces)
            }
            None => {
                let pieces = compact::piece_ranges(&placement.points, placement.cut);
                (placement.points, pieces)
            }
        };
        pending.push(Pending {
            series_id,
            points,
            pieces,
        });
    }
    Ok(report)
}

/// Writes the pending chunks, each series' last one after all the others; returns how many.
/// A series' last chunk is the one the next pass most likely replaces (its round time is not
/// over yet). Written last, the space its replacement frees lies in the table's last pages,
/// which the next chunks fill; among the other chunks it would stay a hole in its page.
fn write_pending(tx: &Transaction<'_>, pending: &[Pending]) -> Result<u64> {
    let pieces: Vec<(i64, &[Point])> = pending
        .iter()
        .flat_map(|write| {
            write
                .pieces
                .iter()
                .map(|range| (write.series_id, &write.points[range.clone()]))
        })
        .collect();
    let last_of_its_series = |index: usize| {
        pieces
            .get(index + 1)
            .is_none_or(|next| next.0 != pieces[index].0)
    };
    let (lasts, others): (Vec<usize>, Vec<usize>) =
        (0..pieces.len()).partition(|index| last_of_its_series(*index));
    let mut written = 0;
    for index in others.into_iter().chain(lasts) {
        let (series_id, piece) = pieces[index];
        written += u64::from(insert_chunk(tx, series_id, piece)?);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::worth_shrinking;

    #[test]
    fn a_free_list_goes_back_when_large_or_once_compaction_caught_up() {
        // A few pages stay for the next recent points, whatever happened.
        assert!(!worth_shrinking(64, 100, true));
        // A tenth of the file goes back even while points wait.
        assert!(worth_shrinking(101, 1_000, false));
        assert!(!worth_shrinking(100, 1_000, false));
        // Once nothing waits, what is left of an import goes back too.
        assert!(worth_shrinking(100, 1_000, true));
        assert!(worth_shrinking(65, 100_000, true));
    }
}
