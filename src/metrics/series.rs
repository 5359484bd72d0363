//! [`SeriesLog`]: the time series as the run keeps it in memory, one
//! compact record per interval.
//!
//! The series is the one part of a run's memory that grows with its
//! length: one [`Point`] a second. As plain `Point`s (three vectors: 40
//! bytes per histogram series, 8 per counter and gauge) a run of 15
//! histogram series, 46 counters and 8 gauges held ~1.1 KiB more every
//! second, ~4 MiB an hour, 5 % of a 5,000-agent run's RSS
//! (`benches/soak.sh`, `benches/SOAK.md`). Most of those numbers are zero
//! or small, so each point is stored as varints instead (~0.2 KiB for
//! that run), appended to fixed 64 KiB blocks (the log never reallocates
//! and copies what it holds), and decoded again when the series is read:
//! the reports, at the end of the run.
//!
//! Lossless: every `u64` and the bits of every `f64` come back as they
//! went in, and so do the lengths of a point's vectors.
//!
//! Record: `elapsed_s` (8 bytes, its bits); the number of histogram
//! stats, then per stat `0` (all zero) or `1` and `count`, `p50`, `p95`,
//! `p99`, `max` as varints; the number of counters and each as a varint;
//! the number of gauges, then per gauge a whole number `n` (below 2^62,
//! not -0.0) as the varint `2n`, anything else as the byte `1` and its 8
//! bytes. Varints: 7 bits a byte, low first, high bit set on all but the
//! last.

use super::{IntervalStats, Point};

/// Bytes a block holds; a point larger than that gets a block of its own.
const BLOCK: usize = 64 * 1024;

/// The time series, compactly (see the module docs).
#[derive(Debug, Clone, Default)]
pub(super) struct SeriesLog {
    /// Whole records; each block is allocated once, at its full size.
    blocks: Vec<Vec<u8>>,
    /// Points held.
    len: usize,
}

impl SeriesLog {
    /// Append `point`.
    pub(super) fn push(&mut self, point: &Point) {
        let mut record = Vec::with_capacity(64);
        encode(point, &mut record);
        let fits = self
            .blocks
            .last()
            .is_some_and(|b| b.capacity() - b.len() >= record.len());
        if !fits {
            self.blocks
                .push(Vec::with_capacity(BLOCK.max(record.len())));
        }
        self.blocks
            .last_mut()
            .expect("a block was just made")
            .extend_from_slice(&record);
        self.len += 1;
    }

    /// Points held.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Every point, in order, decoded.
    pub(super) fn points(&self) -> impl Iterator<Item = Point> + '_ {
        self.blocks.iter().flat_map(|block| {
            let mut at = 0;
            std::iter::from_fn(move || (at < block.len()).then(|| decode(block, &mut at)))
        })
    }

    /// Heap bytes the records take (the blocks' capacity).
    #[cfg(test)]
    pub(super) fn heap_bytes(&self) -> usize {
        self.blocks.iter().map(Vec::capacity).sum()
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn encode(point: &Point, out: &mut Vec<u8>) {
    out.extend_from_slice(&point.elapsed_s.to_bits().to_le_bytes());
    put_varint(out, point.hists.len() as u64);
    for s in &point.hists {
        if *s == IntervalStats::default() {
            out.push(0);
        } else {
            out.push(1);
            for v in [s.count, s.p50, s.p95, s.p99, s.max] {
                put_varint(out, v);
            }
        }
    }
    put_varint(out, point.counters.len() as u64);
    for &c in &point.counters {
        put_varint(out, c);
    }
    put_varint(out, point.gauges.len() as u64);
    for &g in &point.gauges {
        let whole = g as u64;
        if whole < 1 << 62 && (whole as f64).to_bits() == g.to_bits() {
            put_varint(out, whole << 1);
        } else {
            out.push(1);
            out.extend_from_slice(&g.to_bits().to_le_bytes());
        }
    }
}

// Records are only ever written by `encode`: a short one is a bug, and
// indexing past the end panics.
fn varint(block: &[u8], at: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let byte = block[*at];
        *at += 1;
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return v;
        }
        shift += 7;
    }
}

fn bits(block: &[u8], at: &mut usize) -> f64 {
    let bytes: [u8; 8] = block[*at..*at + 8].try_into().expect("8 bytes");
    *at += 8;
    f64::from_bits(u64::from_le_bytes(bytes))
}

fn decode(block: &[u8], at: &mut usize) -> Point {
    let elapsed_s = bits(block, at);
    let n = varint(block, at) as usize;
    let hists = (0..n)
        .map(|_| {
            let tag = block[*at];
            *at += 1;
            if tag == 0 {
                return IntervalStats::default();
            }
            let mut next = || varint(block, at);
            IntervalStats {
                count: next(),
                p50: next(),
                p95: next(),
                p99: next(),
                max: next(),
            }
        })
        .collect();
    let n = varint(block, at) as usize;
    let counters = (0..n).map(|_| varint(block, at)).collect();
    let n = varint(block, at) as usize;
    let gauges = (0..n)
        .map(|_| {
            if block[*at] == 1 {
                *at += 1;
                bits(block, at)
            } else {
                (varint(block, at) >> 1) as f64
            }
        })
        .collect();
    Point {
        elapsed_s,
        hists,
        counters,
        gauges,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::SmallRng, Rng, SeedableRng};

    /// A second of a run like benches/soak.sh's: 15 histogram series (7
    /// recording), 46 counters (6 counting), 8 gauges (2 fractions).
    fn soak_point(rng: &mut SmallRng, second: usize) -> Point {
        let hists = (0..15)
            .map(|i| {
                if i % 2 == 1 {
                    return IntervalStats::default();
                }
                let p50 = rng.gen_range(50..5_000);
                IntervalStats {
                    count: rng.gen_range(300..1_001),
                    p50,
                    p95: p50 + rng.gen_range(0..3_000),
                    p99: p50 + rng.gen_range(3_000..9_000),
                    max: p50 + rng.gen_range(9_000..40_000),
                }
            })
            .collect();
        let counters = (0..46)
            .map(|i| {
                if i % 8 == 0 {
                    rng.gen_range(0..1_001)
                } else {
                    0
                }
            })
            .collect();
        let gauges = (0..8)
            .map(|i| match i {
                0 | 1 => rng.gen_range(0.0..2.0),
                _ => rng.gen_range(0..6_000) as f64,
            })
            .collect();
        Point {
            elapsed_s: (second + 1) as f64 + rng.gen_range(0.0..0.001),
            hists,
            counters,
            gauges,
        }
    }

    #[test]
    fn every_point_comes_back_as_it_went_in() {
        let mut rng = SmallRng::seed_from_u64(16);
        let mut points: Vec<Point> = (0..3_000).map(|s| soak_point(&mut rng, s)).collect();
        // What a by-hand or merged point may hold: empty counts with
        // percentiles, extremes, negative zero, fractions, huge and
        // non-finite gauges, vectors of any length.
        points.push(Point {
            elapsed_s: -0.0,
            hists: vec![
                IntervalStats {
                    count: 0,
                    p50: 7,
                    ..IntervalStats::default()
                },
                IntervalStats {
                    count: u64::MAX,
                    p50: u64::MAX,
                    p95: 1 << 63,
                    p99: 127,
                    max: 128,
                },
            ],
            counters: vec![u64::MAX, 0, 1, 127, 128, 16_383, 16_384],
            gauges: vec![
                -0.0,
                -1.0,
                0.5,
                (1u64 << 62) as f64,
                ((1u64 << 62) - 1024) as f64,
                1e300,
                f64::INFINITY,
                f64::MIN_POSITIVE,
            ],
        });
        points.push(Point::default());
        points.push(Point {
            elapsed_s: f64::MAX,
            hists: vec![IntervalStats::default(); 3],
            counters: vec![0; 100_000], // larger than a block
            gauges: vec![],
        });
        let mut log = SeriesLog::default();
        for p in &points {
            log.push(p);
        }
        assert_eq!(log.len(), points.len());
        let back: Vec<Point> = log.points().collect();
        assert_eq!(back.len(), points.len());
        for (i, (a, b)) in back.iter().zip(&points).enumerate() {
            assert_eq!(a, b, "point {i}");
            assert_eq!(a.elapsed_s.to_bits(), b.elapsed_s.to_bits(), "point {i}");
            for (x, y) in a.gauges.iter().zip(&b.gauges) {
                assert_eq!(x.to_bits(), y.to_bits(), "point {i}");
            }
        }
        // NaN is not equal to itself: its bits come back.
        let mut log = SeriesLog::default();
        log.push(&Point {
            gauges: vec![f64::NAN],
            ..Point::default()
        });
        let nan = log.points().next().expect("one point").gauges[0];
        assert_eq!(nan.to_bits(), f64::NAN.to_bits());
    }

    #[test]
    fn an_hour_of_a_soak_holds_under_a_third_of_a_kib_a_second() {
        let mut rng = SmallRng::seed_from_u64(16);
        let mut log = SeriesLog::default();
        let mut plain = 0;
        for s in 0..3_600 {
            let p = soak_point(&mut rng, s);
            // What the same point took as a `Point` (its vectors' heap
            // bytes and the slot of a Vec<Point>), allocator overhead aside.
            plain += std::mem::size_of::<Point>()
                + p.hists.len() * std::mem::size_of::<IntervalStats>()
                + p.counters.len() * 8
                + p.gauges.len() * 8;
            log.push(&p);
        }
        let compact = log.heap_bytes();
        assert!(
            compact <= 3_600 * 320,
            "{compact} bytes for an hour, {} a second",
            compact / 3_600
        );
        assert!(
            compact * 3 < plain,
            "{compact} bytes against {plain} as Points"
        );
    }
}
