//! MyMonit's time-series engine, as pure logic: no I/O, so every part can be tested and fuzzed
//! alone. The store keeps the bytes; this crate decides what they are.
//!
//! - [`chunk`]: a sealed block of one series, compressed column by column (timestamps and
//!   arrival order as delta-of-delta, values as scaled decimals when they are decimals, each
//!   bit-packed against the block's minimum), with a [`chunk::Summary`] (count, sum, min, max,
//!   spread, first, last) that lets aggregates skip decoding.
//! - [`compact`]: where compaction puts recent points (which chunks it rewrites, which it
//!   adds), for every backend alike.
//! - [`stats`]: the statistics of the API, percentiles exact by selection.
//! - [`timeslice`]: calendar slices in a time zone and fixed-length slices.
//! - [`downsample`]: at most N points that keep a series' shape (M4).

pub mod bits;
pub mod block;
pub mod chunk;
pub mod compact;
pub mod downsample;
pub mod stats;
pub mod timeslice;

/// One point of a series: when, in which order it arrived, and its value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Nanoseconds since the Unix epoch.
    pub ts: i64,
    /// Arrival order, unique in a store; orders points with equal timestamps.
    pub seq: i64,
    /// The reading.
    pub value: f64,
}

impl Point {
    /// The position that orders points: time, then arrival.
    pub fn key(&self) -> (i64, i64) {
        (self.ts, self.seq)
    }
}
