//! Integer columns: each is stored as raw values, deltas or deltas of deltas (whichever is
//! smallest), bit-packed against a base ("frame of reference") with the rare values that do
//! not fit listed apart. A regular clock costs no bits per point; a noisy reading costs about
//! log2 of its spread; a jump costs its own few bytes.

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes end before the column does.
    #[error("chunk truncated")]
    Truncated,
    /// A header field holds a value no encoder writes.
    #[error("chunk corrupt: {0}")]
    Corrupt(&'static str),
}

/// Appends `value` as LEB128.
pub fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A cursor over encoded bytes.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Reads from the start of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, pos: 0 }
    }

    /// Whether every byte was read.
    pub fn is_at_end(&self) -> bool {
        self.pos == self.bytes.len()
    }

    /// Reads one byte.
    pub fn byte(&mut self) -> Result<u8, DecodeError> {
        let byte = *self.bytes.get(self.pos).ok_or(DecodeError::Truncated)?;
        self.pos += 1;
        Ok(byte)
    }

    /// Reads a LEB128 value.
    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::Corrupt("varint too long"))
    }

    /// Reads `len` bytes.
    pub fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(len).ok_or(DecodeError::Truncated)?;
        let slice = self
            .bytes
            .get(self.pos..end)
            .ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(slice)
    }
}

/// Maps signed to unsigned so that small magnitudes stay small (for LEB128).
pub(crate) fn zigzag(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

/// Inverse of [`zigzag`].
pub(crate) fn unzigzag(value: u64) -> i64 {
    ((value >> 1) as i64) ^ -((value & 1) as i64)
}

/// How a column's values are transformed before packing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transform {
    Raw = 0,
    Delta = 1,
    DeltaOfDelta = 2,
}

fn width_of(span: u64) -> u32 {
    64 - span.leading_zeros()
}

fn varint_len(value: u64) -> u64 {
    u64::from(width_of(value).max(1).div_ceil(7))
}

/// Bits an exception of offset bit length `length` costs: an index byte and its varint.
fn exception_bits(length: u32) -> u64 {
    8 + 8 * u64::from((length + 1).div_ceil(7))
}

/// How a sequence is packed: offsets from `base` in `width` bits, except the few values
/// that do not fit, which are listed apart ("patched" frame of reference, as in PFOR). One
/// outlier (a jump in a clock, a spike in a reading) then costs its own bytes instead of
/// widening every value of the chunk.
#[derive(Debug, Clone, Copy)]
struct Plan {
    base: i64,
    width: u32,
    /// Estimated size in bits.
    cost: u64,
}

/// The cheapest plan over two bases: the minimum (no low exception), or the first
/// percentile (so a few low outliers do not shift the frame).
fn plan(values: &[i64]) -> Plan {
    let n = values.len();
    if n == 0 {
        return Plan {
            base: 0,
            width: 0,
            cost: 8,
        };
    }
    let mut sorted = values.to_vec();
    let low_index = n / 100;
    sorted.select_nth_unstable(low_index);
    let robust = sorted[low_index];
    let min = sorted[..=low_index].iter().copied().min().unwrap_or(robust);
    let mut best = Plan {
        base: min,
        width: 64,
        cost: u64::MAX,
    };
    for base in [min, robust] {
        // Bit lengths of the offsets; negative offsets are always exceptions.
        let mut by_length = [0u64; 65];
        let mut below_cost = 0u64;
        for &value in values {
            let offset = value.wrapping_sub(base);
            if value < base {
                below_cost += 8 + 8 * varint_len(zigzag(offset));
            } else {
                by_length[width_of(offset as u64) as usize] += 1;
            }
        }
        let mut exceptions_cost = below_cost
            + (1..=64u32)
                .map(|b| by_length[b as usize] * exception_bits(b))
                .sum::<u64>();
        for width in 0..=64u32 {
            if width > 0 {
                exceptions_cost -= by_length[width as usize] * exception_bits(width);
            }
            let cost = n as u64 * u64::from(width) + exceptions_cost + 24;
            if cost < best.cost {
                best = Plan { base, width, cost };
            }
        }
    }
    best
}

/// Appends a column of integers; [`decode_ints`] reads it back given the same length.
pub fn encode_ints(out: &mut Vec<u8>, values: &[i64]) {
    let deltas: Vec<i64> = values.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    let dods: Vec<i64> = deltas.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
    let raw = plan(values);
    let delta = plan(&deltas);
    let dod = plan(&dods);
    // Packed bits, plus the extra header values of each transform.
    let (cost_delta, cost_dod) = (delta.cost.saturating_add(64), dod.cost.saturating_add(128));
    let best = if values.len() >= 3 && cost_dod < cost_delta && cost_dod < raw.cost {
        Transform::DeltaOfDelta
    } else if values.len() >= 2 && cost_delta < raw.cost {
        Transform::Delta
    } else {
        Transform::Raw
    };
    out.push(best as u8);
    match best {
        Transform::Raw => pack(out, values, raw),
        Transform::Delta => {
            put_varint(out, zigzag(values[0]));
            pack(out, &deltas, delta);
        }
        Transform::DeltaOfDelta => {
            put_varint(out, zigzag(values[0]));
            put_varint(out, zigzag(deltas[0]));
            pack(out, &dods, dod);
        }
    }
}

/// Writes the base, the width, the exceptions (index gap, offset) and then every value minus
/// the base in `width` bits, little-endian (an exception's slot holds 0).
fn pack(out: &mut Vec<u8>, values: &[i64], plan: Plan) {
    let Plan { base, width, .. } = plan;
    put_varint(out, zigzag(base));
    out.push(width as u8);
    let fits = |value: i64| {
        value >= base && (width == 64 || (value.wrapping_sub(base) as u64) >> width == 0)
    };
    let exceptions: Vec<usize> = (0..values.len()).filter(|&i| !fits(values[i])).collect();
    put_varint(out, exceptions.len() as u64);
    let mut previous = 0;
    for &index in &exceptions {
        put_varint(out, (index - previous) as u64);
        put_varint(out, zigzag(values[index].wrapping_sub(base)));
        previous = index;
    }
    if width == 0 {
        return;
    }
    let mut acc: u128 = 0;
    let mut filled = 0u32;
    for &value in values {
        let offset = if fits(value) {
            value.wrapping_sub(base) as u64
        } else {
            0
        };
        acc |= u128::from(offset) << filled;
        filled += width;
        while filled >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            filled -= 8;
        }
    }
    if filled > 0 {
        out.push(acc as u8);
    }
}

/// The header of a packed run: its base, width and exceptions (validated against `count`).
struct Packed<'a> {
    base: i64,
    width: u32,
    exceptions: Vec<(usize, i64)>,
    bits: &'a [u8],
}

/// Reads the header of `count` packed values and takes their bytes.
fn packed<'a>(reader: &mut Reader<'a>, count: usize) -> Result<Packed<'a>, DecodeError> {
    let base = unzigzag(reader.varint()?);
    let width = u32::from(reader.byte()?);
    if width > 64 {
        return Err(DecodeError::Corrupt("bit width above 64"));
    }
    let exception_count = reader.varint()?;
    if exception_count > count as u64 {
        return Err(DecodeError::Corrupt("more exceptions than values"));
    }
    let mut exceptions = Vec::with_capacity(exception_count as usize);
    let mut index = 0u64;
    for _ in 0..exception_count {
        index = index
            .checked_add(reader.varint()?)
            .filter(|&i| i < count as u64)
            .ok_or(DecodeError::Corrupt("exception index out of range"))?;
        exceptions.push((index as usize, unzigzag(reader.varint()?)));
    }
    let bytes_needed = (count as u64 * u64::from(width)).div_ceil(8);
    let bits = reader.take(usize::try_from(bytes_needed).map_err(|_| DecodeError::Truncated)?)?;
    Ok(Packed {
        base,
        width,
        exceptions,
        bits,
    })
}

/// Reads `count` packed values into `out`.
fn unpack(reader: &mut Reader<'_>, count: usize, out: &mut Vec<i64>) -> Result<(), DecodeError> {
    let Packed {
        base,
        width,
        exceptions,
        bits,
    } = packed(reader, count)?;
    let start = out.len();
    if width == 0 {
        out.extend(std::iter::repeat_n(base, count));
    } else {
        out.reserve(count);
        // Padding lets every value be read with one unaligned 16-byte load.
        let mut padded = Vec::with_capacity(bits.len() + 16);
        padded.extend_from_slice(bits);
        padded.resize(bits.len() + 16, 0);
        let mask: u128 = if width == 64 {
            u128::from(u64::MAX)
        } else {
            (1u128 << width) - 1
        };
        let mut bit = 0usize;
        for _ in 0..count {
            let byte = bit / 8;
            let mut word = [0u8; 16];
            word.copy_from_slice(&padded[byte..byte + 16]);
            let offset = (u128::from_le_bytes(word) >> (bit % 8)) & mask;
            out.push(base.wrapping_add(offset as u64 as i64));
            bit += width as usize;
        }
    }
    for (index, offset) in exceptions {
        out[start + index] = base.wrapping_add(offset);
    }
    Ok(())
}

/// Reads a column of `count` integers written by [`encode_ints`], appending to `out`.
pub fn decode_ints(
    reader: &mut Reader<'_>,
    count: usize,
    out: &mut Vec<i64>,
) -> Result<(), DecodeError> {
    let start = out.len();
    match reader.byte()? {
        0 => unpack(reader, count, out),
        1 => {
            let first = unzigzag(reader.varint()?);
            out.push(first);
            unpack(reader, count.saturating_sub(1), out)?;
            for i in start + 1..out.len() {
                out[i] = out[i - 1].wrapping_add(out[i]);
            }
            Ok(())
        }
        2 => {
            let first = unzigzag(reader.varint()?);
            let mut delta = unzigzag(reader.varint()?);
            out.push(first);
            out.push(first.wrapping_add(delta));
            unpack(reader, count.saturating_sub(2), out)?;
            for i in start + 2..out.len() {
                delta = delta.wrapping_add(out[i]);
                out[i] = out[i - 1].wrapping_add(delta);
            }
            Ok(())
        }
        _ => Err(DecodeError::Corrupt("unknown integer transform")),
    }
}

/// Moves past a column of `count` integers written by [`encode_ints`] without decoding it
/// (its header is still checked).
pub fn skip_ints(reader: &mut Reader<'_>, count: usize) -> Result<(), DecodeError> {
    let packed_count = match reader.byte()? {
        0 => count,
        1 => {
            reader.varint()?;
            count.saturating_sub(1)
        }
        2 => {
            reader.varint()?;
            reader.varint()?;
            count.saturating_sub(2)
        }
        _ => return Err(DecodeError::Corrupt("unknown integer transform")),
    };
    packed(reader, packed_count).map(drop)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn round_trip(values: &[i64]) -> (Vec<i64>, usize) {
        let mut bytes = Vec::new();
        encode_ints(&mut bytes, values);
        let mut reader = Reader::new(&bytes);
        let mut decoded = Vec::new();
        decode_ints(&mut reader, values.len(), &mut decoded).unwrap();
        assert!(reader.is_at_end(), "trailing bytes");
        (decoded, bytes.len())
    }

    #[test]
    fn a_regular_clock_costs_no_bits_per_point() {
        let clock: Vec<i64> = (0..1000)
            .map(|i| 1_704_067_200_000_000_000 + i * 1_000_000_000)
            .collect();
        let (decoded, size) = round_trip(&clock);
        assert_eq!(decoded, clock);
        assert!(size < 24, "{size} bytes for a regular clock");
    }

    #[test]
    fn a_jump_in_a_regular_sequence_costs_bytes_not_bits_per_point() {
        // Arrival numbers of one series: every 4th, with one jump where another batch
        // came in between.
        let mut seq: Vec<i64> = (0..1024).map(|i| 1_000 + 4 * i).collect();
        for value in &mut seq[600..] {
            *value += 250_000;
        }
        let (decoded, size) = round_trip(&seq);
        assert_eq!(decoded, seq);
        assert!(size < 32, "{size} bytes");
        // A spike in a quiet reading.
        let mut readings: Vec<i64> = (0..1024).map(|i| 50_000 + (i * 7) % 13).collect();
        readings[77] = 9_000_000;
        readings[900] = -3;
        let (decoded, size) = round_trip(&readings);
        assert_eq!(decoded, readings);
        assert!(size < 1024 * 4 / 8 + 32, "{size} bytes");
    }

    #[test]
    fn extremes_survive() {
        for values in [
            vec![i64::MIN, i64::MAX, 0, -1, 1],
            vec![i64::MAX, i64::MIN],
            vec![i64::MIN],
            vec![],
            vec![7, 7, 7],
        ] {
            assert_eq!(round_trip(&values).0, values);
        }
    }

    #[test]
    fn truncated_bytes_are_an_error_not_a_panic() {
        let mut bytes = Vec::new();
        encode_ints(&mut bytes, &[1, 900, -3, 77, 1 << 40]);
        for len in 0..bytes.len() {
            let mut out = Vec::new();
            assert!(decode_ints(&mut Reader::new(&bytes[..len]), 5, &mut out).is_err());
        }
    }

    proptest! {
        #[test]
        fn any_column_round_trips(values in proptest::collection::vec(any::<i64>(), 0..300)) {
            prop_assert_eq!(round_trip(&values).0, values);
        }

        #[test]
        fn small_noise_round_trips(base in any::<i64>(), noise in proptest::collection::vec(-1000i64..1000, 0..300)) {
            let values: Vec<i64> = noise.iter().map(|n| base.wrapping_add(*n)).collect();
            prop_assert_eq!(round_trip(&values).0, values);
        }

        #[test]
        fn skipping_a_column_lands_on_the_next(
            first in proptest::collection::vec(any::<i64>(), 0..300),
            spread in 0u32..64,
        ) {
            let second: Vec<i64> = first.iter().map(|v| v.rotate_left(spread) >> spread).collect();
            let mut bytes = Vec::new();
            encode_ints(&mut bytes, &first);
            encode_ints(&mut bytes, &second);
            let mut reader = Reader::new(&bytes);
            skip_ints(&mut reader, first.len()).unwrap();
            let mut decoded = Vec::new();
            decode_ints(&mut reader, second.len(), &mut decoded).unwrap();
            prop_assert!(reader.is_at_end());
            prop_assert_eq!(decoded, second);
        }

        #[test]
        fn every_width_round_trips(width in 0u32..=64, len in 0usize..70, seed in any::<u64>()) {
            // Offsets spanning exactly `width` bits, including values at the tail of the bytes.
            let mut state = seed | 1;
            let values: Vec<i64> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let mask = if width == 64 { u64::MAX } else { (1u64 << width) - 1 };
                    (state & mask) as i64
                })
                .collect();
            prop_assert_eq!(round_trip(&values).0, values);
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64), count in 0usize..100) {
            let mut out = Vec::new();
            let _ = decode_ints(&mut Reader::new(&bytes), count, &mut out);
        }
    }
}
