//! A block: the points of one series from one ingest transaction, in arrival order, stored
//! as they came (24 bytes a point: timestamp, arrival number, value bits, little-endian).
//! Writing one block per series per transaction instead of one row per point is what makes
//! ingest cheap; the compactor turns blocks into compressed chunks.

use crate::{Point, bits::DecodeError};

const POINT_BYTES: usize = 24;

/// Encodes points as they are.
pub fn encode(points: &[Point]) -> Vec<u8> {
    let mut out = Vec::with_capacity(points.len() * POINT_BYTES);
    for point in points {
        out.extend_from_slice(&point.ts.to_le_bytes());
        out.extend_from_slice(&point.seq.to_le_bytes());
        out.extend_from_slice(&point.value.to_bits().to_le_bytes());
    }
    out
}

/// Decodes a block written by [`encode`].
pub fn decode(bytes: &[u8]) -> Result<Vec<Point>, DecodeError> {
    if !bytes.len().is_multiple_of(POINT_BYTES) {
        return Err(DecodeError::Corrupt(
            "block length is not a whole number of points",
        ));
    }
    let word = |slice: &[u8]| {
        let mut array = [0u8; 8];
        array.copy_from_slice(slice);
        array
    };
    Ok(bytes
        .chunks_exact(POINT_BYTES)
        .map(|raw| Point {
            ts: i64::from_le_bytes(word(&raw[0..8])),
            seq: i64::from_le_bytes(word(&raw[8..16])),
            value: f64::from_bits(u64::from_le_bytes(word(&raw[16..24]))),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn blocks_round_trip_bit_for_bit(raw in proptest::collection::vec((any::<i64>(), any::<i64>(), any::<f64>()), 0..100)) {
            let points: Vec<Point> = raw.into_iter().map(|(ts, seq, value)| Point { ts, seq, value }).collect();
            let decoded = decode(&encode(&points)).unwrap();
            prop_assert_eq!(decoded.len(), points.len());
            for (a, b) in decoded.iter().zip(&points) {
                prop_assert_eq!((a.ts, a.seq, a.value.to_bits()), (b.ts, b.seq, b.value.to_bits()));
            }
        }
    }

    #[test]
    fn a_torn_block_is_an_error() {
        let bytes = encode(&[Point {
            ts: 1,
            seq: 2,
            value: 3.0,
        }]);
        assert!(decode(&bytes[..23]).is_err());
        assert!(decode(&[]).unwrap().is_empty());
    }
}
