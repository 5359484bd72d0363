//! The HdrHistogram interval log (`metrics.hlog`): every interval, one line
//! per histogram series that recorded something, so a run's full latency
//! history lives on disk rather than in memory.
//!
//! # Format
//! The standard HdrHistogram interval log (read by `HistogramLogProcessor`,
//! HdrHistogram's plotters, and `hdrhistogram::serialization::interval_log`):
//!
//! ```text
//! #[Histogram log format version 1.3]
//! #stampede interval log: values in microseconds; Tag=metric|population|step
//! #[StartTime: 1700000000.000 (seconds since epoch)]
//! #[BaseTime: 1700000000.000 (seconds since epoch)]
//! "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
//! Tag=http.latency|shopper|browse,0.000,1.000,18431.000,HISTFAAAA…
//! ```
//!
//! - Timestamps are seconds since the run started (`BaseTime` = `StartTime`
//!   = the run's start); the interval length is the time since the previous
//!   tick. Values (and `Interval_Max`) are microseconds.
//! - Each histogram is V2 + DEFLATE, base64 (what the Java implementation
//!   writes).
//! - The tag is [`hlog_tag`]: `metric|population|step`. An interval histogram
//!   merges all phases (the phase follows from the timestamp).
//!
//! # Reading and writing outside a run
//! [`HlogWriter`] is what the aggregator streams to, and what `stampede
//! merge` writes a merged log with; [`HlogReader`] decodes a log interval by
//! interval (`stampede report` checks a log with it, `stampede merge` sums
//! the segments' logs with it). One interval is decoded at a time: a decoded
//! histogram holds its whole bucket array, so a log is never held decoded.

use super::SeriesDesc;
use base64::Engine as _;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, IntervalLogWriterError, LogEntry,
    LogIteratorError, Tag,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};
use hdrhistogram::Histogram;
use std::io::{self, Write};
use std::time::{Duration, SystemTime};

/// The interval-log tag of a histogram series: `metric|population|step`,
/// e.g. `http.latency|shopper|browse`, `generator.lag||` (empty tags stay
/// empty). Tags cannot contain spaces, commas or line breaks, and `|`
/// separates the parts, so any of those characters inside a name becomes `_`.
pub fn hlog_tag(desc: &SeriesDesc) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if matches!(c, ' ' | ',' | '\r' | '\n' | '|') {
                    '_'
                } else {
                    c
                }
            })
            .collect()
    };
    format!(
        "{}|{}|{}",
        clean(&desc.metric),
        clean(&desc.population),
        clean(&desc.step)
    )
}

/// Streams interval histograms to a sink.
///
/// `IntervalLogWriter` borrows its sink and serializer, so it cannot live in
/// a struct next to them. Its header comes from the builder and nothing else
/// is carried between lines, so a writer is built per tick over the owned
/// sink; only the first one gets the header lines.
pub struct HlogWriter {
    sink: Box<dyn Write + Send>,
    /// An interval's lines, put together before they go to the sink in one
    /// write (so the sink needs no buffer of its own).
    buf: Vec<u8>,
    /// Bytes of the sink that are the header and whole intervals.
    whole: u64,
    serializer: V2DeflateSerializer,
    started_at: SystemTime,
    header_written: bool,
    /// Per HistId, from [`hlog_tag`].
    tags: Vec<String>,
    /// The first write error, and the start of the interval it cut short;
    /// the log stops there (a hole in the middle of a log would be worse
    /// than a log that ends early).
    error: Option<(Duration, io::Error)>,
}

impl HlogWriter {
    pub fn new(
        sink: Box<dyn Write + Send>,
        started_at: SystemTime,
        series: &[SeriesDesc],
    ) -> HlogWriter {
        HlogWriter {
            sink,
            buf: Vec::new(),
            whole: 0,
            serializer: V2DeflateSerializer::new(),
            started_at,
            header_written: false,
            tags: series.iter().map(hlog_tag).collect(),
            error: None,
        }
    }

    /// The first write error, if one ended the log (the caller says so:
    /// the writer does not know the file's name).
    pub fn failure(&self) -> Option<HlogFailure<'_>> {
        self.error.as_ref().map(|(at, error)| HlogFailure {
            at: *at,
            error,
            whole_bytes: self.whole,
        })
    }

    /// Write one interval: `start` since the run's start, `length` long,
    /// one line per non-empty histogram (index = HistId).
    pub fn write_interval(
        &mut self,
        start: Duration,
        length: Duration,
        hists: &[Option<Histogram<u64>>],
    ) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.try_write_interval(start, length, hists) {
            tracing::debug!("writing the interval log failed, it stops here: {e}");
            self.error = Some((start, e));
        }
    }

    /// Write the header if no interval was written, and report the first
    /// error, if any (every interval is flushed as it is written).
    pub fn finish(mut self) -> io::Result<()> {
        if let Some((_, e)) = self.error.take() {
            return Err(e);
        }
        if !self.header_written {
            self.try_write_interval(Duration::ZERO, Duration::ZERO, &[])?;
        }
        Ok(())
    }

    fn try_write_interval(
        &mut self,
        start: Duration,
        length: Duration,
        hists: &[Option<Histogram<u64>>],
    ) -> io::Result<()> {
        self.buf.clear();
        if !self.header_written {
            IntervalLogWriterBuilder::new()
                .add_comment("[Histogram log format version 1.3]")
                .add_comment(
                    "stampede interval log: values in microseconds; Tag=metric|population|step",
                )
                .with_start_time(self.started_at)
                .with_base_time(self.started_at)
                .begin_log_with(&mut self.buf, &mut self.serializer)?;
            // The column legend, without `#` as the Java writer puts it; the
            // writer has no call for it, readers skip it.
            self.buf.extend_from_slice(LEGEND.as_bytes());
        }
        // A builder without headers writes nothing by itself.
        let mut writer =
            IntervalLogWriterBuilder::new().begin_log_with(&mut self.buf, &mut self.serializer)?;
        for (h, tag) in hists.iter().zip(&self.tags) {
            let Some(h) = h.as_ref().filter(|h| !h.is_empty()) else {
                continue;
            };
            writer
                .write_histogram(h, start, length, Tag::new(tag))
                .map_err(|e| match e {
                    IntervalLogWriterError::IoError(e) => e,
                    IntervalLogWriterError::SerializeError(e) => io::Error::other(e),
                })?;
        }
        // Once a second: a crash keeps every interval written so far.
        self.sink.write_all(&self.buf)?;
        self.sink.flush()?;
        self.header_written = true;
        self.whole += self.buf.len() as u64;
        Ok(())
    }
}

/// Why an [`HlogWriter`] stopped.
#[derive(Debug)]
pub struct HlogFailure<'a> {
    /// How far into the run the log is complete: the start of the interval
    /// the error cut short.
    pub at: Duration,
    pub error: &'a io::Error,
    /// The length of the log's header and whole intervals: a file cut to
    /// this length is a valid log (what follows may end mid-line).
    pub whole_bytes: u64,
}

/// One interval of a log, decoded.
#[derive(Debug)]
pub struct HlogInterval {
    /// The line's tag ([`hlog_tag`]); empty when the line has none.
    pub tag: String,
    /// Since the log's base time (a stampede log: the run's start).
    pub start: Duration,
    pub length: Duration,
    pub histogram: Histogram<u64>,
}

/// What is wrong with a log, and on which line (1-based).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HlogReadError {
    #[error("line {line} is not an interval log line (`Tag=…,start,length,max,histogram`, a `#` comment or the legend)")]
    Line { line: usize },
    #[error("line {line}: the histogram is not valid base64 ({detail})")]
    Base64 { line: usize, detail: String },
    #[error("line {line}: the histogram is not a valid HdrHistogram encoding ({detail})")]
    Encoding { line: usize, detail: String },
}

/// Decodes a log's intervals in order, one at a time (see the module docs).
/// After the first error it yields nothing more.
pub struct HlogReader<'a> {
    bytes: &'a [u8],
    entries: IntervalLogIterator<'a>,
    deserializer: Deserializer,
    /// `#[StartTime: …]`, since the Unix epoch, once read.
    start_time: Option<Duration>,
    failed: bool,
}

impl<'a> HlogReader<'a> {
    pub fn new(bytes: &'a [u8]) -> HlogReader<'a> {
        HlogReader {
            bytes,
            entries: IntervalLogIterator::new(bytes),
            deserializer: Deserializer::new(),
            start_time: None,
            failed: false,
        }
    }

    /// The log's `StartTime` (since the Unix epoch), once the header is read.
    pub fn start_time(&self) -> Option<Duration> {
        self.start_time
    }

    fn line_at(&self, offset: usize) -> usize {
        let end = offset.min(self.bytes.len());
        1 + self.bytes[..end].iter().filter(|&&b| b == b'\n').count()
    }

    fn next_interval(&mut self) -> Option<Result<HlogInterval, HlogReadError>> {
        loop {
            let interval = match self.entries.next()? {
                Ok(LogEntry::Interval(interval)) => interval,
                Ok(LogEntry::StartTime(t)) => {
                    self.start_time = Some(t);
                    continue;
                }
                Ok(LogEntry::BaseTime(_)) => continue,
                Err(LogIteratorError::ParseError { offset }) => {
                    return Some(Err(HlogReadError::Line {
                        line: self.line_at(offset),
                    }))
                }
            };
            let encoded = interval.encoded_histogram();
            // The encoded histogram borrows from `bytes`: its address gives
            // the line (counted only for an error message).
            let offset = (encoded.as_ptr() as usize).saturating_sub(self.bytes.as_ptr() as usize);
            let raw = match base64::engine::general_purpose::STANDARD.decode(encoded) {
                Ok(raw) => raw,
                Err(e) => {
                    return Some(Err(HlogReadError::Base64 {
                        line: self.line_at(offset),
                        detail: e.to_string(),
                    }))
                }
            };
            let histogram = match super::decode_histogram(&mut self.deserializer, &raw) {
                Ok(h) => h,
                Err(detail) => {
                    return Some(Err(HlogReadError::Encoding {
                        line: self.line_at(offset),
                        detail,
                    }))
                }
            };
            return Some(Ok(HlogInterval {
                tag: interval.tag().map_or("", |t| t.as_str()).to_owned(),
                start: interval.start_timestamp(),
                length: interval.duration(),
                histogram,
            }));
        }
    }
}

impl Iterator for HlogReader<'_> {
    type Item = Result<HlogInterval, HlogReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let next = self.next_interval();
        self.failed = matches!(next, Some(Err(_)));
        next
    }
}

const LEGEND: &str =
    "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Aggregator, Layout, Metrics};
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use hdrhistogram::serialization::Deserializer;
    use std::sync::{Arc, Mutex};

    /// A sink the test can read after the aggregator is done with it.
    #[derive(Clone, Default)]
    struct SharedBuf(Arc<Mutex<Vec<u8>>>);

    impl Write for SharedBuf {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    struct FailingSink;

    impl Write for FailingSink {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn tags_name_the_series_and_avoid_forbidden_characters() {
        let desc = |metric: &str, population: &str, step: &str| SeriesDesc {
            metric: metric.into(),
            population: population.into(),
            step: step.into(),
            kind: None,
        };
        assert_eq!(
            hlog_tag(&desc("http.latency", "shopper", "browse")),
            "http.latency|shopper|browse"
        );
        assert_eq!(hlog_tag(&desc("generator.lag", "", "")), "generator.lag||");
        let odd = hlog_tag(&desc("http.latency", "big shop", "a,b|c\n"));
        assert_eq!(odd, "http.latency|big_shop|a_b_c_");
        assert!(Tag::new(&odd).is_some());
    }

    #[test]
    fn the_log_parses_back_with_tags_times_and_counts() {
        let mut layout = Layout {
            phases: vec!["only".into()],
            ..Layout::default()
        };
        let browse = layout.add_hist("http.latency", "shopper", "browse");
        let lag = layout.add_hist("generator.lag", "", "");
        let metrics = Metrics::new(layout);
        let sink = SharedBuf::default();
        let started_at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_250);
        let mut agg = Aggregator::new(metrics.clone(), Some(Box::new(sink.clone())), started_at);

        // Interval 1: both series; interval 2: nothing; interval 3: browse only.
        metrics.with(|s| {
            for v in 1..=10 {
                s.record(browse, 0, v * 100);
            }
            s.record(lag, 0, 42);
        });
        agg.tick(Duration::from_millis(1000), &[]);
        agg.tick(Duration::from_millis(2000), &[]);
        metrics.with(|s| s.record(browse, 0, 7));
        agg.tick(Duration::from_millis(3500), &[]);
        agg.finish().unwrap();

        let bytes = sink.0.lock().unwrap().clone();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(
            text.starts_with("#[Histogram log format version 1.3]\n"),
            "{text}"
        );
        let mut header = Vec::new();
        let mut intervals = Vec::new();
        for entry in IntervalLogIterator::new(&bytes) {
            match entry.unwrap() {
                LogEntry::StartTime(t) | LogEntry::BaseTime(t) => header.push(t),
                LogEntry::Interval(h) => {
                    let raw = base64::engine::general_purpose::STANDARD
                        .decode(h.encoded_histogram())
                        .unwrap();
                    let hist: Histogram<u64> =
                        Deserializer::new().deserialize(&mut &raw[..]).unwrap();
                    intervals.push((
                        h.tag().unwrap().as_str().to_owned(),
                        h.start_timestamp(),
                        h.duration(),
                        hist.len(),
                        hist.max(),
                    ));
                }
            }
        }
        let start = Duration::from_millis(1_700_000_000_250);
        assert_eq!(header, vec![start, start]);
        let s = Duration::from_millis;
        assert_eq!(
            intervals,
            vec![
                (
                    "http.latency|shopper|browse".to_owned(),
                    s(0),
                    s(1000),
                    10,
                    1000
                ),
                ("generator.lag||".to_owned(), s(0), s(1000), 1, 42),
                (
                    "http.latency|shopper|browse".to_owned(),
                    s(2000),
                    s(1500),
                    1,
                    7
                ),
            ]
        );
    }

    #[test]
    fn a_run_without_ticks_still_writes_a_header() {
        let metrics = Metrics::new(Layout::default());
        let sink = SharedBuf::default();
        let agg = Aggregator::new(
            metrics,
            Some(Box::new(sink.clone())),
            SystemTime::UNIX_EPOCH,
        );
        agg.finish().unwrap();
        let bytes = sink.0.lock().unwrap().clone();
        let entries: Vec<_> = IntervalLogIterator::new(&bytes).collect();
        assert_eq!(entries.len(), 2, "StartTime and BaseTime");
        assert!(entries
            .iter()
            .all(|e| matches!(e, Ok(LogEntry::StartTime(_) | LogEntry::BaseTime(_)))));
    }

    #[test]
    fn a_write_error_is_reported_by_finish() {
        let mut layout = Layout::default();
        let id = layout.add_hist("http.latency", "", "");
        let metrics = Metrics::new(layout);
        let mut agg = Aggregator::new(
            metrics.clone(),
            Some(Box::new(FailingSink)),
            SystemTime::now(),
        );
        metrics.with(|s| s.record(id, 0, 1));
        // The run goes on: totals still count.
        assert_eq!(agg.tick(Duration::from_secs(1), &[]).hists[0].count, 1);
        let (totals, result) = agg.into_totals();
        assert_eq!(result.unwrap_err().to_string(), "disk full");
        assert_eq!(totals.hist(id, None).len(), 1);
    }

    /// Takes `budget` bytes, then fails as a full disk does (a short write
    /// first, then ENOSPC).
    struct FullAfter {
        budget: usize,
        taken: SharedBuf,
    }

    impl Write for FullAfter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.budget == 0 {
                return Err(io::Error::from_raw_os_error(28));
            }
            let n = buf.len().min(self.budget);
            self.budget -= n;
            self.taken.0.lock().unwrap().extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_disk_that_fills_up_ends_the_log_after_its_last_whole_interval() {
        let mut layout = Layout::default();
        let id = layout.add_hist("http.latency", "", "");
        let metrics = Metrics::new(layout);
        let started = SystemTime::now();
        // How long the header and the first interval are.
        let probe = SharedBuf::default();
        let mut agg = Aggregator::new(metrics.clone(), Some(Box::new(probe.clone())), started);
        metrics.with(|s| s.record(id, 0, 1));
        agg.tick(Duration::from_secs(1), &[]);
        let first = probe.0.lock().unwrap().len();
        drop(agg);
        // A disk with room for that and 10 bytes more.
        let taken = SharedBuf::default();
        let sink = FullAfter {
            budget: first + 10,
            taken: taken.clone(),
        };
        let mut agg = Aggregator::new(metrics.clone(), Some(Box::new(sink)), started);
        for second in 1..=3 {
            metrics.with(|s| s.record(id, 0, 1));
            agg.tick(Duration::from_secs(second), &[]);
            let failure = agg
                .hlog_failure()
                .map(|f| (f.at, f.error.raw_os_error(), f.whole_bytes));
            match second {
                1 => assert_eq!(failure, None),
                // Cut short in the interval from 1 s on; it stays so, and
                // the whole part is the header and the first interval.
                _ => assert_eq!(
                    failure,
                    Some((Duration::from_secs(1), Some(28), first as u64))
                ),
            }
        }
        assert_eq!(taken.0.lock().unwrap().len(), first + 10);
        let (totals, result) = agg.into_totals();
        assert_eq!(result.unwrap_err().raw_os_error(), Some(28));
        // The run's counts are whole.
        assert_eq!(totals.hist(id, None).len(), 3);
    }

    /// Found by the metrics_hlog fuzz target (fuzz/corpus/metrics_hlog/
    /// regress-oom-payload-length): a deflated histogram whose inner header
    /// states a payload of 3.7 GB (and whose deflate stream is cut). The
    /// hdrhistogram crate allocated that length before reading (out of
    /// memory); it is an encoding error on line 6.
    #[test]
    fn a_histogram_stating_a_huge_payload_is_an_error_not_an_allocation() {
        let log = concat!(
            "#[Histogram log format version 1.3]\n",
            "#stampede interval log: values in microseconds; Tag=metric|population|step\n",
            "#[StartTime: 1796107443.721 (seconds since epoch)]\n",
            "#[BaseTime: 1796107443.721 (seconds since epoch)]\n",
            "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n",
            "Tag=http.latency|u|list,0.000,1.003,6343.000,HISTFAAAAE54nAFDALz/HISTE+AAABsAAAAAAAAAAwAAAAAAAAABAAAAANaTpAA/8AAAAAAAAKUXAgUCnwECmQQC9wEC5wgCiw4CfwK1AQJHAikTag==\n",
        );
        let mut reader = HlogReader::new(log.as_bytes());
        match reader.next() {
            Some(Err(HlogReadError::Encoding { line: 6, detail })) => {
                assert!(detail.contains("does not inflate"), "{detail}")
            }
            other => panic!("expected an encoding error on line 6, got {other:?}"),
        }
        assert!(reader.next().is_none());
    }

    /// The same in the plain form (`summary.json`'s `hdr`), and a header cut
    /// short; valid encodings of both forms still decode to the histogram.
    #[test]
    fn decode_histogram_checks_the_stated_payload_of_both_forms() {
        use hdrhistogram::serialization::{Serializer as _, V2Serializer};
        let mut h = crate::metrics::new_histogram();
        for v in [1, 250, 4_000, 77_777] {
            h.record(v).unwrap();
        }
        let mut de = Deserializer::new();
        for deflate in [false, true] {
            let mut raw = Vec::new();
            if deflate {
                V2DeflateSerializer::new().serialize(&h, &mut raw).unwrap();
            } else {
                V2Serializer::new().serialize(&h, &mut raw).unwrap();
            }
            assert_eq!(crate::metrics::decode_histogram(&mut de, &raw).unwrap(), h);
        }
        let mut plain = Vec::new();
        V2Serializer::new().serialize(&h, &mut plain).unwrap();
        plain[4..8].copy_from_slice(&0xE000_0000u32.to_be_bytes());
        let e = crate::metrics::decode_histogram(&mut de, &plain).unwrap_err();
        assert!(e.contains("states a payload of 3758096384 bytes"), "{e}");
        // Deflated whole (a valid stream), the inner header lying.
        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(&plain).unwrap();
        let zlib = zlib.finish().unwrap();
        let mut deflated = vec![0x1c, 0x84, 0x93, 0x14];
        deflated.extend_from_slice(&(zlib.len() as u32).to_be_bytes());
        deflated.extend_from_slice(&zlib);
        let e = crate::metrics::decode_histogram(&mut de, &deflated).unwrap_err();
        assert!(e.contains("states a payload of 3758096384 bytes"), "{e}");
        assert!(crate::metrics::decode_histogram(&mut de, &plain[..6]).is_err());
        assert!(
            crate::metrics::decode_histogram(&mut de, &[0x1c, 0x84, 0x93, 0x14, 0, 0]).is_err()
        );
    }

    /// Found by the metrics_hlog fuzz target (fuzz/corpus/metrics_hlog/
    /// regress-zigzag-min, whose deflate checksum is wrong: the fuzz build's
    /// miniz_oxide skips it): a payload holding the varint `u64::MAX`,
    /// which the hdrhistogram crate decodes to `i64::MIN` and negates (a
    /// panic where overflow checks are on, as in tests and debug builds).
    /// Here in a valid deflate stream in a log, and in a plain encoding
    /// (`summary.json`'s `hdr`).
    #[test]
    fn a_count_out_of_range_is_an_error_not_an_overflow() {
        use hdrhistogram::serialization::{Serializer as _, V2Serializer};
        let mut h = crate::metrics::new_histogram();
        h.record(7).unwrap();
        let mut plain = Vec::new();
        V2Serializer::new().serialize(&h, &mut plain).unwrap();
        plain.extend_from_slice(&[0xff; 9]);
        let stated = (plain.len() - 40) as u32;
        plain[4..8].copy_from_slice(&stated.to_be_bytes());
        let e = crate::metrics::decode_histogram(&mut Deserializer::new(), &plain).unwrap_err();
        assert!(e.contains("out of range"), "{e}");

        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(&plain).unwrap();
        let zlib = zlib.finish().unwrap();
        let mut deflated = vec![0x1c, 0x84, 0x93, 0x14];
        deflated.extend_from_slice(&(zlib.len() as u32).to_be_bytes());
        deflated.extend_from_slice(&zlib);
        let log = format!(
            "#[StartTime: 1796107443.721 (seconds since epoch)]\n\
             \"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n\
             Tag=http.latency|u|list,0.000,1.003,5327.000,{}\n",
            base64::engine::general_purpose::STANDARD.encode(&deflated)
        );
        let mut reader = HlogReader::new(log.as_bytes());
        match reader.next() {
            Some(Err(HlogReadError::Encoding { line: 3, detail })) => {
                assert!(detail.contains("out of range"), "{detail}")
            }
            other => panic!("expected an encoding error on line 3, got {other:?}"),
        }
    }
}
