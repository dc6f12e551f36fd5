//! What both backends share about the measures' layout: how a series is keyed, how stored
//! blocks decode.

use std::collections::{HashMap, VecDeque};

use mymonit_model::measure::{MeasurePage, NewMeasure, PagePoint};
use mymonit_tsdb::Point;

use crate::{Result, Series, StoreError, tags_to_json};

/// A series by (experiment, measure type, tags as stored).
pub(crate) type SeriesKey = (i64, i64, String);

/// Series ids by key; only committed series enter it.
pub(crate) type SeriesCache = HashMap<SeriesKey, i64>;

/// The key of a measure's series.
pub(crate) fn series_key(measure: &NewMeasure) -> SeriesKey {
    (
        measure.experiment_id,
        measure.measure_type_id,
        tags_to_json(&measure.tags).unwrap_or_default(),
    )
}

/// Decodes a recent block.
pub(crate) fn block_points(block_id: i64, data: &[u8]) -> Result<Vec<Point>> {
    mymonit_tsdb::block::decode(data).map_err(|reason| StoreError::Corrupt {
        chunk_id: block_id,
        reason,
    })
}

/// Names the chunk whose bytes do not decode.
pub(crate) fn corrupt(chunk_id: i64) -> impl Fn(mymonit_tsdb::bits::DecodeError) -> StoreError {
    move |reason| StoreError::Corrupt { chunk_id, reason }
}

/// Fewest chunks a raw read fetches at a time.
const MIN_CHUNK_BATCH: i64 = 4;
/// Most chunks a raw read fetches at a time (about 100 KB).
const MAX_CHUNK_BATCH: i64 = 64;

/// A stored chunk as a raw read fetches it.
pub(crate) struct FetchedChunk {
    pub chunk_id: i64,
    pub start: (i64, i64),
    pub end: (i64, i64),
    pub data: Vec<u8>,
}

/// One step of a raw read merging its series' cursors in key order.
pub(crate) enum Step {
    /// The next point, taken from the cursor at this index.
    Point(usize, Point),
    /// The cursor at this index needs its next chunks ([`SeriesCursor::add_chunks`]) first.
    Fetch(usize),
    /// Every cursor is done.
    Done,
}

/// The next step of merging `cursors` (the point with the least key; ties go to the first
/// cursor). The backend fetches chunks when asked and steps again.
pub(crate) fn merge_step(cursors: &mut [SeriesCursor]) -> Result<Step> {
    let mut best: Option<(usize, Point)> = None;
    for (index, cursor) in cursors.iter_mut().enumerate() {
        match cursor.peek()? {
            Peek::NeedChunks => return Ok(Step::Fetch(index)),
            Peek::Ready(Some(point)) if best.is_none_or(|(_, b)| point.key() < b.key()) => {
                best = Some((index, point));
            }
            Peek::Ready(_) => {}
        }
    }
    Ok(match best {
        Some((index, point)) => {
            cursors[index].advance();
            Step::Point(index, point)
        }
        None => Step::Done,
    })
}

/// A page of a raw read of `series` (cursors in the same order), filled by the backend
/// from [`merge_step`].
pub(crate) fn empty_page(
    experiment_id: i64,
    experiment: String,
    series: &[Series],
    limit: usize,
) -> MeasurePage {
    let mut page = MeasurePage::new(experiment_id, experiment);
    page.series = series
        .iter()
        .map(|one| (one.measure_type.clone(), one.tags.clone()))
        .collect();
    page.points = Vec::with_capacity(limit.min(10_000));
    page
}

/// Adds a merged point to a page.
pub(crate) fn push_point(page: &mut MeasurePage, series: usize, point: Point) {
    page.points.push(PagePoint {
        series,
        timestamp_ns: point.ts,
        seq: point.seq,
        value: point.value,
    });
}

/// What [`SeriesCursor::peek`] found.
pub(crate) enum Peek {
    /// The next point (`None`: the series is done).
    Ready(Option<Point>),
    /// Fetch the next chunks after `fetched_up_to` ([`SeriesCursor::add_chunks`]), then peek
    /// again.
    NeedChunks,
}

/// Reads one series in `(ts, seq)` order for a raw query: its chunks, fetched a few at a time
/// by the backend, merged with its recent points.
pub(crate) struct SeriesCursor {
    pub series_id: i64,
    from: i64,
    pub to: i64,
    after: (i64, i64),
    /// Chunks with an end key above this are still to fetch.
    pub fetched_up_to: (i64, i64),
    /// How many chunks to fetch next: enough full chunks for the points asked for, then
    /// doubling, so that a long read takes few round trips to the database.
    pub batch: i64,
    chunks_done: bool,
    pending: VecDeque<FetchedChunk>,
    decoded: VecDeque<Point>,
    recent: VecDeque<Point>,
}

impl SeriesCursor {
    /// A cursor over `series` in `[from, to)` past `after`, with the series' recent points (in
    /// any order; at most `limit` of them are kept).
    pub fn new(
        series_id: i64,
        from: i64,
        to: i64,
        after: (i64, i64),
        recent: Vec<Point>,
        limit: usize,
    ) -> Self {
        let mut recent: Vec<Point> = recent
            .into_iter()
            .filter(|point| point.key() > after)
            .collect();
        recent.sort_by_key(Point::key);
        recent.truncate(limit);
        Self {
            series_id,
            from,
            to,
            after,
            fetched_up_to: after,
            batch: (limit.div_ceil(mymonit_tsdb::chunk::TARGET_POINTS) as i64 + 1)
                .clamp(MIN_CHUNK_BATCH, MAX_CHUNK_BATCH),
            chunks_done: false,
            pending: VecDeque::new(),
            decoded: VecDeque::new(),
            recent: VecDeque::from(recent),
        }
    }

    fn wanted(&self, point: &Point) -> bool {
        point.ts >= self.from && point.ts < self.to && point.key() > self.after
    }

    /// Takes fetched chunks (in end-key order, at most [`Self::batch`]; fewer means the
    /// last).
    pub fn add_chunks(&mut self, chunks: Vec<FetchedChunk>) {
        self.chunks_done = (chunks.len() as i64) < self.batch;
        self.batch = (self.batch * 2).min(MAX_CHUNK_BATCH);
        if let Some(last) = chunks.last() {
            self.fetched_up_to = last.end;
        }
        self.pending.extend(chunks);
    }

    /// The next point without taking it, or a request for more chunks.
    pub fn peek(&mut self) -> Result<Peek> {
        loop {
            let recent = self.recent.front().copied();
            if let Some(point) = self.decoded.front().copied() {
                return Ok(Peek::Ready(Some(match recent {
                    Some(recent) if recent.key() < point.key() => recent,
                    _ => point,
                })));
            }
            if let Some(chunk) = self.pending.front() {
                if let Some(recent) = recent
                    && recent.key() < chunk.start
                {
                    return Ok(Peek::Ready(Some(recent)));
                }
                let Some(chunk) = self.pending.pop_front() else {
                    continue;
                };
                let columns =
                    mymonit_tsdb::chunk::decode(&chunk.data).map_err(corrupt(chunk.chunk_id))?;
                let points: Vec<Point> = columns.points().filter(|p| self.wanted(p)).collect();
                self.decoded.extend(points);
                continue;
            }
            if !self.chunks_done {
                return Ok(Peek::NeedChunks);
            }
            return Ok(Peek::Ready(recent));
        }
    }

    /// Takes the point `peek` returned.
    pub fn advance(&mut self) {
        match (self.decoded.front(), self.recent.front()) {
            (Some(chunk), Some(recent)) if recent.key() < chunk.key() => self.recent.pop_front(),
            (Some(_), _) => self.decoded.pop_front(),
            (None, _) => self.recent.pop_front(),
        };
    }
}
