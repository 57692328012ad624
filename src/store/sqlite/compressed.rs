//! The compressed form of a history row (`form` 1): its records as one LZ4 block, its requests
//! in frames of LZ4 blocks. A row's records and requests repeat themselves (one workflow's
//! name, outcome, header names and values, the shape of its bodies): compressed, a record and
//! its request take a fraction of the bytes, and the writer's work that grows with bytes (the
//! database's pages, the write-ahead log, the checkpoint's copy) shrinks with them.
//!
//! - A block: the length of what it holds and its own length (varints), then LZ4's block
//!   format.
//! - Requests: frames one after another. A frame: how many requests it holds (a varint), their
//!   ids (zigzag varints), then a block holding each request as a varint length and bytes. A
//!   frame is closed once it holds [`FRAME`] bytes, so that reading one request decompresses
//!   one frame, not the whole row, and a frame without a wanted request is skipped unread.

use std::io::{BufRead, Read, Seek};

/// Bytes of requests a frame holds before it is closed (a request larger alone is a frame).
const FRAME: usize = 64 << 10;

/// LZ4 writes at least one byte for every 255 it gives back: a length claiming more than this
/// many times the block's bytes is damage, not data (and is not allocated).
const MOST_RATIO: u64 = 255;

/// Appends a varint (seven bits a byte, the lowest first), as postcard writes lengths.
pub(super) fn varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads a varint; `None` at the end or on damage.
pub(super) fn read_varint(r: &mut impl Read) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let mut byte = [0u8];
        r.read_exact(&mut byte).ok()?;
        value |= u64::from(byte[0] & 0x7f) << shift;
        if byte[0] & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// An id as a varint takes (small magnitudes, either sign, in few bytes), as postcard has it.
pub(super) fn zigzag(id: i64) -> u64 {
    ((id << 1) ^ (id >> 63)) as u64
}

pub(super) fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

/// Appends `raw` as a block.
pub(super) fn block(raw: &[u8], out: &mut Vec<u8>) {
    let mut packed = vec![0; lz4_flex::block::get_maximum_output_size(raw.len())];
    // The output has room for the worst case, so compressing cannot fail; if it did, the block
    // would be empty and read back as damaged rather than as something else.
    let written = lz4_flex::block::compress_into(raw, &mut packed).unwrap_or(0);
    varint(out, raw.len() as u64);
    varint(out, written as u64);
    out.extend_from_slice(packed.get(..written).unwrap_or_default());
}

/// Reads a block's lengths: what it holds, and its own (`None` at the end, on damage, or when
/// the first cannot come from the second).
fn lengths(r: &mut impl Read) -> Option<(usize, u64)> {
    let raw = read_varint(r)?;
    let packed = read_varint(r)?;
    if raw > packed.saturating_mul(MOST_RATIO) {
        return None;
    }
    Some((usize::try_from(raw).ok()?, packed))
}

/// Reads a block's bytes and gives what it holds; `None` when it is damaged.
fn read_block(r: &mut impl Read, raw: usize, packed: u64) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    r.take(packed).read_to_end(&mut bytes).ok()?;
    if bytes.len() as u64 != packed {
        return None;
    }
    let out = lz4_flex::block::decompress(&bytes, raw).ok()?;
    (out.len() == raw).then_some(out)
}

/// What the block `bytes` starts with holds; `None` when it is damaged.
pub(super) fn unblock(mut bytes: &[u8]) -> Option<Vec<u8>> {
    let (raw, packed) = lengths(&mut bytes)?;
    read_block(&mut bytes, raw, packed)
}

/// Requests written into frames.
#[derive(Default)]
pub(super) struct Frames {
    /// The frames closed so far.
    out: Vec<u8>,
    /// The open frame's ids, and its requests, each a varint length and bytes.
    ids: Vec<i64>,
    raw: Vec<u8>,
    /// One request's bytes, until their length is written.
    one: Vec<u8>,
}

impl Frames {
    pub(super) fn clear(&mut self) {
        self.out.clear();
        self.ids.clear();
        self.raw.clear();
    }

    /// Adds the request of execution `id`: `write` appends its bytes to the vector it is given.
    pub(super) fn push(&mut self, id: i64, write: impl FnOnce(&mut Vec<u8>)) {
        self.one.clear();
        write(&mut self.one);
        varint(&mut self.raw, self.one.len() as u64);
        self.raw.extend_from_slice(&self.one);
        self.ids.push(id);
        if self.raw.len() >= FRAME {
            self.close();
        }
    }

    fn close(&mut self) {
        if self.ids.is_empty() {
            return;
        }
        varint(&mut self.out, self.ids.len() as u64);
        for id in self.ids.drain(..) {
            varint(&mut self.out, zigzag(id));
        }
        block(&self.raw, &mut self.out);
        self.raw.clear();
    }

    /// The frames, or `None` when no request was added.
    pub(super) fn finish(&mut self) -> Option<&[u8]> {
        self.close();
        (!self.out.is_empty()).then_some(self.out.as_slice())
    }
}

/// Reads frames from `r` (a blob of `size` bytes), giving `found` each request `wanted` says to
/// read: a frame holding none of them is skipped without being read. Stops at the end or at
/// damage (what came before it is given).
pub(super) fn read_frames(
    r: &mut (impl BufRead + Seek),
    size: u64,
    wanted: impl Fn(i64) -> bool,
    mut found: impl FnMut(i64, &[u8]),
) {
    let mut ids = Vec::new();
    while let Some(count) = read_varint(r) {
        // Each id takes a byte at least: a count past the blob's size is damage.
        if count > size {
            return;
        }
        ids.clear();
        for _ in 0..count {
            let Some(id) = read_varint(r) else { return };
            ids.push(unzigzag(id));
        }
        let Some((raw, packed)) = lengths(r) else { return };
        if !ids.iter().any(|id| wanted(*id)) {
            if packed > size || r.seek_relative(packed as i64).is_err() {
                return;
            }
            continue;
        }
        let Some(requests) = read_block(r, raw, packed) else { return };
        let mut rest = requests.as_slice();
        for id in &ids {
            let Some(len) = read_varint(&mut rest).and_then(|n| usize::try_from(n).ok()) else { return };
            let Some((request, after)) = rest.split_at_checked(len) else { return };
            if wanted(*id) {
                found(*id, request);
            }
            rest = after;
        }
    }
}

/// Every request of frames `bytes`, in order (those before any damage).
pub(super) fn all_requests(bytes: &[u8]) -> Vec<(i64, Vec<u8>)> {
    let mut all = Vec::new();
    let mut r = std::io::Cursor::new(bytes);
    read_frames(&mut r, bytes.len() as u64, |_| true, |id, request| all.push((id, request.to_vec())));
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_reads_back_what_it_holds_and_damage_reads_as_none() {
        let raw: Vec<u8> =
            (0..10_000u32).flat_map(|i| format!("record {} of w;", i % 7).into_bytes()).collect();
        let mut out = Vec::new();
        block(&raw, &mut out);
        assert!(out.len() * 10 < raw.len(), "repetition compresses: {} of {}", out.len(), raw.len());
        assert_eq!(unblock(&out).as_deref(), Some(raw.as_slice()));
        assert_eq!(unblock(&out[..out.len() - 1]), None, "cut short");
        // A length that the block's bytes cannot hold is not believed (nor allocated).
        let mut lying = Vec::new();
        varint(&mut lying, u64::MAX >> 1);
        varint(&mut lying, 3);
        lying.extend_from_slice(&[1, 2, 3]);
        assert_eq!(unblock(&lying), None);
        assert_eq!(unblock(&[]), None);
        let mut empty = Vec::new();
        block(&[], &mut empty);
        assert_eq!(unblock(&empty), Some(Vec::new()));
    }

    #[test]
    fn frames_give_the_requests_wanted_and_skip_frames_without_one() {
        let mut frames = Frames::default();
        // Requests of 1 KiB: 64 to a frame, so 200 of them make four frames.
        let request = |id: i64| format!("{id:>1024}").into_bytes();
        for id in 0..200 {
            frames.push(id * 3 - 7, |out| out.extend_from_slice(&request(id * 3 - 7)));
        }
        let bytes = frames.finish().expect("frames").to_vec();
        assert!(bytes.len() < 200 * 1024 / 4);
        let mut seen = Vec::new();
        let mut r = std::io::Cursor::new(bytes.as_slice());
        read_frames(
            &mut r,
            bytes.len() as u64,
            |id| id == -7 || id == 590,
            |id, r| seen.push((id, r.to_vec())),
        );
        assert_eq!(seen, [(-7, request(-7)), (590, request(590))]);
        let all = all_requests(&bytes);
        assert_eq!(all.len(), 200);
        assert!(all.iter().all(|(id, r)| *r == request(*id)));
        // Damage: what came before it is given.
        let cut = all_requests(&bytes[..bytes.len() - 10]);
        assert!(!cut.is_empty() && cut.len() < 200, "{}", cut.len());
        assert!(cut.iter().all(|(id, r)| *r == request(*id)));
        assert!(all_requests(&[0xff; 12]).is_empty());
        frames.clear();
        assert!(frames.finish().is_none());
    }

    #[test]
    fn ids_of_either_sign_read_back() {
        for id in [0, 1, -1, i64::MAX, i64::MIN, 0x7000_0000_0000_1387] {
            let mut out = Vec::new();
            varint(&mut out, zigzag(id));
            assert_eq!(read_varint(&mut out.as_slice()).map(unzigzag), Some(id));
        }
    }
}
