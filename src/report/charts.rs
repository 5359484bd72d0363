//! The charts of `report.html` and of the capacity search's
//! `capacity.html`, drawn with plotters' SVG backend into strings that the
//! page inlines: time charts ([`time_chart`]), percentile spectra
//! ([`spectrum_chart`]) and the capacity curve ([`curve_chart`]), in one
//! size, palette and axis style.
//!
//! plotters is built without its `ttf` / `ab_glyph` features: it then sizes
//! text with a built-in estimate and the SVG backend writes every label as
//! a `<text>` element (escaped) that the browser renders with its own
//! sans-serif font. No system font library is needed to build or run, and
//! nothing is embedded. Legends are HTML under each chart (see
//! [`legend_html`]), so they never cover the data.
//!
//! Long series are downsampled for drawing with [`downsample`]: the lowest
//! and the highest point of every pixel column, so a one-second spike in an
//! hour-long run still shows.

// Re-exported: axis labels read like the rest of the report.
use crate::report::json::PhaseEntry;
pub use crate::units::format::{clock, number};
use plotters::prelude::*;
// The prelude's `Color` trait, shadowed by this module's `Color` struct.
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::Color as _;

/// Size of every chart, px (the page scales it to its width).
pub const WIDTH: u32 = 1120;
pub const HEIGHT: u32 = 280;
/// Columns a time series is downsampled to: about the plotting area's width.
pub const COLUMNS: usize = 1000;

/// An RGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Color(pub u8, pub u8, pub u8);

impl Color {
    /// `#rrggbb`, for the HTML legend.
    pub fn hex(self) -> String {
        format!("#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
    fn rgb(self) -> RGBColor {
        RGBColor(self.0, self.1, self.2)
    }
}

/// Colours for series, in order; distinguishable and printable.
pub const PALETTE: [Color; 8] = [
    Color(31, 119, 180),
    Color(214, 39, 40),
    Color(44, 160, 44),
    Color(255, 127, 14),
    Color(148, 103, 189),
    Color(140, 86, 75),
    Color(227, 119, 194),
    Color(23, 190, 207),
];

/// A wide, light line another runs over (the offered load under the
/// achieved one, connected agents under registered ones).
pub const LIGHT: Color = Color(160, 190, 225);

/// Number of data lines (polylines in a series colour, not axes or ticks)
/// in an SVG drawn here.
pub fn drawn_lines(svg: &str) -> usize {
    let colours: Vec<String> = PALETTE
        .iter()
        .chain([&LIGHT])
        .map(|c| format!("stroke=\"#{:02X}{:02X}{:02X}\"", c.0, c.1, c.2))
        .collect();
    svg.split("<polyline")
        .skip(1)
        .filter(|element| {
            let tag = &element[..element.find("/>").unwrap_or(element.len())];
            colours.iter().any(|c| tag.contains(c.as_str()))
        })
        .count()
}

/// How an axis's values read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// A plain number: `1.2k`, `3M`.
    Number,
    /// Milliseconds.
    Millis,
    /// Percent.
    Percent,
}

impl Scale {
    fn label(self, value: f64) -> String {
        match self {
            Scale::Number => number(value),
            Scale::Millis => format!("{} ms", number(value)),
            Scale::Percent => format!("{}%", number(value)),
        }
    }
}

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Line {
    /// For the legend (escaped there).
    pub label: String,
    /// `(x, y)` in x order; a NaN `y` is a gap (no data in that interval).
    pub points: Vec<(f64, f64)>,
    pub color: Color,
    /// Stroke width, px.
    pub width: u32,
    /// Drawn against the right-hand axis.
    pub right_axis: bool,
}

impl Line {
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>, color: Color) -> Line {
        Line {
            label: label.into(),
            points,
            color,
            width: 1,
            right_axis: false,
        }
    }
    pub fn width(mut self, width: u32) -> Line {
        self.width = width;
        self
    }
    pub fn right(mut self) -> Line {
        self.right_axis = true;
        self
    }
}

/// A chart over the run's time line, phases shaded and named.
pub struct TimeChart<'a> {
    pub lines: Vec<Line>,
    pub phases: &'a [PhaseEntry],
    /// Right end of the x axis, seconds.
    pub x_end: f64,
    pub y_desc: &'a str,
    pub y_scale: Scale,
    /// Description and scale of the right-hand axis, for lines with
    /// `right_axis`.
    pub y2: Option<(&'a str, Scale)>,
    /// Vertical marks with a label: fault actions and disruptions.
    pub marks: &'a [crate::report::events::Mark],
}

/// Highest finite y of `lines` (of one axis), with headroom; at least 1.
fn y_top<'l>(lines: impl Iterator<Item = &'l Line>) -> f64 {
    let max = lines
        .flat_map(|l| l.points.iter().map(|p| p.1))
        .filter(|y| y.is_finite())
        .fold(0.0f64, f64::max);
    if max <= 0.0 {
        1.0
    } else {
        max * 1.08
    }
}

/// `points` split at NaN y values into drawable runs.
fn segments(points: &[(f64, f64)]) -> impl Iterator<Item = &[(f64, f64)]> {
    points.split(|p| !p.1.is_finite()).filter(|s| !s.is_empty())
}

/// Reduce `points` (in x order) to at most about two per column over the
/// x range: per column the lowest and the highest point, in x order, so
/// spikes and dips survive. Gaps (NaN y) are kept as gaps. Series short
/// enough are returned as they are.
pub fn downsample(points: &[(f64, f64)], columns: usize) -> Vec<(f64, f64)> {
    let columns = columns.max(1);
    if points.len() <= 2 * columns {
        return points.to_vec();
    }
    let x0 = points[0].0;
    let span = (points[points.len() - 1].0 - x0).max(f64::MIN_POSITIVE);
    let column = |x: f64| (((x - x0) / span * columns as f64) as usize).min(columns - 1);
    let mut out = Vec::with_capacity(2 * columns + 16);
    let mut i = 0;
    while i < points.len() {
        if !points[i].1.is_finite() {
            // One gap marker per run of missing points.
            if out.last().is_some_and(|p: &(f64, f64)| p.1.is_finite()) {
                out.push(points[i]);
            }
            i += 1;
            continue;
        }
        let col = column(points[i].0);
        let (mut low, mut high) = (i, i);
        let mut j = i + 1;
        while j < points.len() && points[j].1.is_finite() && column(points[j].0) == col {
            if points[j].1 < points[low].1 {
                low = j;
            }
            if points[j].1 > points[high].1 {
                high = j;
            }
            j += 1;
        }
        let (first, second) = (low.min(high), low.max(high));
        out.push(points[first]);
        if second != first {
            out.push(points[second]);
        }
        i = j;
    }
    out
}

/// Every chart's grid and labels: 13 px sans-serif, light grid lines, grey
/// axes (a macro: plotters' mesh builder is generic over the coordinates).
macro_rules! house_style {
    ($mesh:expr) => {
        $mesh
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 13))
            .bold_line_style(RGBColor(225, 225, 225))
            .light_line_style(RGBColor(244, 244, 244))
            .axis_style(RGBColor(150, 150, 150))
            .draw()
            .map_err(err)
    };
}

type Svg = anyhow::Result<String>;

fn err(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing a chart: {e}")
}

/// Draw a [`TimeChart`] as an SVG document.
pub fn time_chart(chart: &TimeChart) -> Svg {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        // plotters puts ticks on 1 / 2 / 5 × 10^k units; in seconds that
        // reads badly past a few minutes (8:20, 16:40), so longer runs are
        // drawn in minutes (ticks on 5, 10, 20 minutes…), labelled as clocks.
        let unit = if chart.x_end > 240.0 { 60.0 } else { 1.0 };
        let x_end = chart.x_end.max(1.0) / unit;
        let y1 = y_top(chart.lines.iter().filter(|l| !l.right_axis));
        let y2 = y_top(chart.lines.iter().filter(|l| l.right_axis));
        let mut builder = ChartBuilder::on(&root);
        builder
            .margin(8)
            .margin_right(if chart.y2.is_some() { 8 } else { 24 })
            .x_label_area_size(34)
            .y_label_area_size(78);
        if chart.y2.is_some() {
            builder.right_y_label_area_size(78);
        }
        let mut ctx = builder
            .build_cartesian_2d(0f64..x_end, 0f64..y1)
            .map_err(err)?
            .set_secondary_coord(0f64..x_end, 0f64..y2);
        let y_format = |v: &f64| chart.y_scale.label(*v);
        let x_format = |v: &f64| clock(*v * unit);
        // Short runs: no more labels than whole units, so no label repeats
        // (`clock` shows whole seconds / minutes).
        let x_labels = (x_end.floor() as usize + 1).clamp(2, 14);
        house_style!(ctx
            .configure_mesh()
            .x_labels(x_labels)
            .y_labels(6)
            .x_label_formatter(&x_format)
            .y_label_formatter(&y_format)
            .y_desc(chart.y_desc))?;
        if let Some((desc, scale)) = chart.y2 {
            let y2_format = move |v: &f64| scale.label(*v);
            ctx.configure_secondary_axes()
                .y_labels(6)
                .y_label_formatter(&y2_format)
                .y_desc(desc)
                .label_style(("sans-serif", 13))
                .axis_desc_style(("sans-serif", 13))
                .axis_style(RGBColor(150, 150, 150))
                .draw()
                .map_err(err)?;
        }
        // Phases: alternating bands, a boundary line and the name.
        let plot_px = ctx.plotting_area().dim_in_pixel().0 as f64;
        for (index, phase) in chart.phases.iter().enumerate() {
            let (start, end) = (
                (phase.start_s / unit).max(0.0),
                (phase.end_s / unit).min(x_end),
            );
            if end <= start {
                continue;
            }
            let band = if index % 2 == 0 {
                RGBAColor(0, 60, 160, 0.05)
            } else {
                RGBAColor(0, 0, 0, 0.0)
            };
            ctx.draw_series(std::iter::once(Rectangle::new(
                [(start, 0.0), (end, y1)],
                band.filled(),
            )))
            .map_err(err)?;
            if start > 0.0 {
                ctx.draw_series(std::iter::once(PathElement::new(
                    vec![(start, 0.0), (start, y1)],
                    RGBColor(160, 170, 190).stroke_width(1),
                )))
                .map_err(err)?;
            }
            // The naive text estimate is ~7 px per character at 13 px.
            let room = ((end - start) / x_end * plot_px / 7.0) as usize;
            if let Some(name) = fit(&phase.name, room.saturating_sub(1)) {
                ctx.draw_series(std::iter::once(Text::new(
                    name,
                    (start, y1),
                    ("sans-serif", 13)
                        .into_font()
                        .color(&RGBColor(80, 90, 110))
                        .pos(Pos::new(HPos::Left, VPos::Top)),
                )))
                .map_err(err)?;
            }
        }
        // Marks: a red vertical line and its label, staggered down the
        // plot so that marks close together stay readable.
        for (index, mark) in chart.marks.iter().enumerate() {
            let x = mark.at_s / unit;
            if !(0.0..=x_end).contains(&x) {
                continue;
            }
            ctx.draw_series(std::iter::once(PathElement::new(
                vec![(x, 0.0), (x, y1)],
                RGBColor(200, 40, 40).stroke_width(1),
            )))
            .map_err(err)?;
            let y = y1 * (0.92 - 0.08 * (index % 4) as f64);
            let room = ((x_end - x) / x_end * plot_px / 6.5) as usize;
            if let Some(label) = fit(&mark.label, room.saturating_sub(1)) {
                ctx.draw_series(std::iter::once(Text::new(
                    label,
                    (x, y),
                    ("sans-serif", 12)
                        .into_font()
                        .color(&RGBColor(170, 30, 30))
                        .pos(Pos::new(HPos::Left, VPos::Center)),
                )))
                .map_err(err)?;
            }
        }
        for line in &chart.lines {
            let mut points = downsample(&line.points, COLUMNS);
            for point in &mut points {
                point.0 /= unit;
            }
            let style = line.color.rgb().stroke_width(line.width);
            for segment in segments(&points) {
                if line.right_axis {
                    ctx.draw_secondary_series(LineSeries::new(segment.iter().copied(), style))
                        .map_err(err)?;
                } else {
                    ctx.draw_series(LineSeries::new(segment.iter().copied(), style))
                        .map_err(err)?;
                }
            }
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// `text` cut to at most `room` characters (with an ellipsis); None when
/// not even three fit.
fn fit(text: &str, room: usize) -> Option<String> {
    let n = text.chars().count();
    if n <= room {
        Some(format!(" {text}"))
    } else if room >= 3 {
        Some(format!(
            " {}…",
            text.chars().take(room - 1).collect::<String>()
        ))
    } else {
        None
    }
}

/// x of a percentile on the spectrum's axis: 1 / (1 - p), p in [0, 1).
pub fn spectrum_x(quantile: f64) -> f64 {
    1.0 / (1.0 - quantile)
}

/// The percentile an x of the spectrum's axis stands for: `90%`, `99.9%`.
pub fn spectrum_label(x: f64) -> String {
    if x <= 1.0 {
        return "0%".into();
    }
    let percent = 100.0 * (1.0 - 1.0 / x);
    let decimals = (x.log10().round() as i32 - 2).max(0) as usize;
    format!("{percent:.decimals$}%")
}

/// A latency percentile spectrum as HdrHistogram's plotter draws it: x =
/// percentile on a log scale of 1 / (1 - p) (0%, 90%, 99%, 99.9%…), y =
/// latency in ms. `x_end` is the right end of the x axis (a power of ten).
pub fn spectrum_chart(lines: &[Line], x_end: f64) -> Svg {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT + 40)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let y = y_top(lines.iter());
        let mut ctx = ChartBuilder::on(&root)
            .margin(8)
            .margin_right(32)
            .x_label_area_size(34)
            .y_label_area_size(78)
            .build_cartesian_2d((1f64..x_end.max(10.0)).log_scale(), 0f64..y)
            .map_err(err)?;
        let x_format = |v: &f64| spectrum_label(*v);
        let y_format = |v: &f64| Scale::Millis.label(*v);
        house_style!(ctx
            .configure_mesh()
            .x_labels(8)
            .y_labels(8)
            .x_label_formatter(&x_format)
            .y_label_formatter(&y_format)
            .x_desc("percentile")
            .y_desc("latency"))?;
        for line in lines {
            let style = line.color.rgb().stroke_width(line.width);
            for segment in segments(&line.points) {
                ctx.draw_series(LineSeries::new(segment.iter().copied(), style))
                    .map_err(err)?;
            }
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// A scatter of measured points joined in x order, with labelled vertical
/// markers: the capacity search's curve (achieved load against p95).
pub struct Curve<'a> {
    /// `(x, y in ms, passed)`: a passing point is filled, a failing one
    /// hollow.
    pub points: Vec<(f64, f64, bool)>,
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    /// `(x, label, colour)`: a vertical line across the plot, its label at
    /// the top.
    pub markers: Vec<(f64, &'a str, Color)>,
}

/// Colours of a [`Curve`]'s passing and failing points.
pub const PASS: Color = PALETTE[2];
pub const FAIL: Color = PALETTE[1];

/// Draw a [`Curve`] as an SVG document.
pub fn curve_chart(curve: &Curve) -> Svg {
    let x_end = curve.points.iter().map(|p| p.0).fold(1.0, f64::max) * 1.1;
    let y_end = curve.points.iter().map(|p| p.1).fold(1.0, f64::max) * 1.15;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT + 140)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut ctx = ChartBuilder::on(&root)
            .margin(8)
            .margin_right(24)
            .x_label_area_size(40)
            .y_label_area_size(78)
            .build_cartesian_2d(0f64..x_end, 0f64..y_end)
            .map_err(err)?;
        let x_format = |v: &f64| number(*v);
        let y_format = |v: &f64| Scale::Millis.label(*v);
        house_style!(ctx
            .configure_mesh()
            .x_label_formatter(&x_format)
            .y_label_formatter(&y_format)
            .x_desc(curve.x_desc)
            .y_desc(curve.y_desc))?;
        let mut sorted = curve.points.clone();
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        ctx.draw_series(LineSeries::new(
            sorted.iter().map(|p| (p.0, p.1)),
            RGBColor(120, 120, 120).stroke_width(1),
        ))
        .map_err(err)?;
        ctx.draw_series(curve.points.iter().map(|&(x, y, pass)| {
            if pass {
                Circle::new((x, y), 5, PASS.rgb().filled())
            } else {
                Circle::new((x, y), 5, FAIL.rgb().stroke_width(2))
            }
        }))
        .map_err(err)?;
        for &(x, label, color) in &curve.markers {
            ctx.draw_series(LineSeries::new(
                [(x, 0.0), (x, y_end)],
                color.rgb().stroke_width(2),
            ))
            .map_err(err)?;
            ctx.draw_series([Text::new(
                label.to_string(),
                (x, y_end * 0.96),
                ("sans-serif", 13).into_font().color(&color.rgb()),
            )])
            .map_err(err)?;
        }
        root.present().map_err(err)?;
    }
    Ok(svg)
}

/// The legend of a chart's lines, as HTML (labels escaped).
pub fn legend_html(lines: &[Line], escape: impl Fn(&str) -> String) -> String {
    let mut out = String::from("<div class=\"legend\">");
    for line in lines {
        out.push_str(&format!(
            "<span><i style=\"background:{}\"></i>{}</span>",
            line.color.hex(),
            escape(&line.label)
        ));
    }
    out.push_str("</div>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsample_keeps_spikes_and_bounds_the_size() {
        let mut points: Vec<(f64, f64)> = (0..3600).map(|i| (i as f64, 10.0)).collect();
        points[1234].1 = 900.0;
        points[2000].1 = 0.5;
        let small = downsample(&points, 500);
        assert!(small.len() <= 1000, "{}", small.len());
        assert!(small.contains(&(1234.0, 900.0)), "spike kept");
        assert!(small.contains(&(2000.0, 0.5)), "dip kept");
        assert!(small.windows(2).all(|w| w[0].0 < w[1].0), "x order kept");
        assert_eq!(small.first(), Some(&(0.0, 10.0)));
        // Short series are untouched.
        assert_eq!(downsample(&points[..100], 500), points[..100].to_vec());
    }

    #[test]
    fn downsample_keeps_gaps() {
        let mut points: Vec<(f64, f64)> = (0..3000).map(|i| (i as f64, 1.0)).collect();
        for p in &mut points[1000..1500] {
            p.1 = f64::NAN;
        }
        let small = downsample(&points, 100);
        let runs: Vec<usize> = segments(&small).map(|s| s.len()).collect();
        assert_eq!(runs.len(), 2, "{small:?}");
    }

    #[test]
    fn spectrum_axis_reads_as_percentiles() {
        assert_eq!(spectrum_label(1.0), "0%");
        assert_eq!(spectrum_label(10.0), "90%");
        assert_eq!(spectrum_label(100.0), "99%");
        assert_eq!(spectrum_label(1000.0), "99.9%");
        assert_eq!(spectrum_label(10_000.0), "99.99%");
        assert!((spectrum_x(0.99) - 100.0).abs() < 1e-9);
    }

    #[test]
    fn axis_numbers_and_clock() {
        assert_eq!(number(0.0), "0");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(12.5), "12.5");
        assert_eq!(number(1500.0), "1.5k");
        assert_eq!(number(2_000_000.0), "2M");
        assert_eq!(clock(65.0), "1:05");
        assert_eq!(clock(3725.0), "1:02:05");
    }

    #[test]
    fn a_time_chart_is_an_svg_with_lines_phases_and_labels() {
        let phases = [
            PhaseEntry {
                name: "warm-up".into(),
                start_s: 0.0,
                end_s: 30.0,
                model: None,
            },
            PhaseEntry {
                name: "<b>spike</b>".into(),
                start_s: 30.0,
                end_s: 60.0,
                model: None,
            },
        ];
        let points: Vec<(f64, f64)> = (1..=60).map(|i| (i as f64, (i * i) as f64)).collect();
        let svg = time_chart(&TimeChart {
            lines: vec![
                Line::new("a", points.clone(), PALETTE[0]),
                Line::new("b", points, PALETTE[1]).right(),
            ],
            phases: &phases,
            x_end: 60.0,
            y_desc: "requests/s",
            y_scale: Scale::Number,
            y2: Some(("users", Scale::Number)),
            marks: &[crate::report::events::Mark {
                at_s: 45.0,
                label: "action kill-hub".into(),
            }],
        })
        .unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        assert_eq!(drawn_lines(&svg), 2);
        assert!(svg.contains("warm-up"));
        assert!(
            svg.contains("&lt;b&gt;spike&lt;/b&gt;"),
            "phase names escaped"
        );
        assert!(!svg.contains("<b>"));
        assert!(svg.contains("requests/s"));
        assert!(svg.contains("action kill-hub"), "the mark is labelled");
    }
}
