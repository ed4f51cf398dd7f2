//! Drawing a [`Figure`] with plotters on any backend (SVG string or RGB buffer), so the SVG
//! and the PNG of a figure come from the same code.

use std::ops::Range;

use plotters::chart::SeriesAnno;
use plotters::coord::combinators::IntoLogRange;
use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;

use super::data::Figure;
use super::layers;
use super::style::{Marker, Model, Theme, FAMILY};
use super::{Options, PlotError};

pub(super) type Points = Vec<(f64, f64)>;

pub(super) type Chart<'a, DB, Y> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Y>>;

pub(super) fn err<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> PlotError {
    PlotError::Draw(e.to_string())
}

fn font(t: Theme, size: f64) -> TextStyle<'static> {
    (FAMILY, size).into_font().color(&t.foreground())
}

/// A tick label: a few significant digits, no trailing zeros.
pub fn tick(v: f64) -> String {
    if v == 0.0 || v.abs() < 1e-12 {
        return "0".into();
    }
    let s = crate::frontend::format_number(v, crate::frontend::NumberStyle::significant(4));
    let trim = |m: &str| {
        if m.contains('.') {
            m.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            m.to_string()
        }
    };
    match s.split_once('e') {
        Some((mantissa, exp)) => format!("{}e{exp}", trim(mantissa)),
        None => trim(&s),
    }
}

/// `[lo, hi]` widened by `pad` of its span on each side (a unit around a single value).
pub(super) fn padded(lo: f64, hi: f64, pad: f64) -> Range<f64> {
    let span = hi - lo;
    if span.is_nan() || span <= 0.0 || !span.is_finite() {
        let half = 0.5 * lo.abs().max(1.0);
        return (lo - half)..(hi + half);
    }
    (lo - pad * span)..(hi + pad * span)
}

pub(super) fn draw<DB>(
    root: &DrawingArea<DB, Shift>,
    fig: &Figure,
    opts: &Options,
) -> Result<(), PlotError>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let t = opts.theme;
    root.fill(&t.background()).map_err(err)?;
    // room above the title: ab_glyph draws glyphs a little above where an SVG viewer does
    let body = root
        .margin(8, 0, 0, 0)
        .titled(fig.title(), font(t, 20.0))
        .map_err(err)?;
    match fig {
        Figure::Histogram(h) => layers::histogram(&body, h, t, opts.log),
        Figure::Density(d) => layers::density(&body, d, t, opts.log),
        Figure::Sensitivity(s) => layers::sensitivity(&body, s, t),
        Figure::Prediction(p) => layers::prediction(&body, p, t),
        Figure::Training(tr) => layers::training(&body, tr, t, opts.log),
        Figure::Sweep(f) => layers::sweep(&body, f, t),
    }
}

/// Margins and label areas of every chart, in pixels.
const MARGIN: u32 = 10;
const MARGIN_RIGHT: u32 = 24;
const X_LABELS: u32 = 50;
const Y_LABELS: u32 = 74;
/// The legend: gap to the plot's edge, room for the sample, text size, row height.
const LEGEND_MARGIN: i32 = 10;
const LEGEND_SAMPLE: i32 = 40;
const LEGEND_FONT: f64 = 14.0;
const LEGEND_ROW: i32 = 21;

fn chart<'a, DB, YS>(
    area: &'a DrawingArea<DB, Shift>,
    x: Range<f64>,
    y: YS,
) -> Result<Chart<'a, DB, YS::CoordDescType>, PlotError>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
    YS: AsRangedCoord<Value = f64>,
{
    ChartBuilder::on(area)
        .margin(MARGIN)
        .margin_right(MARGIN_RIGHT)
        .x_label_area_size(X_LABELS)
        .y_label_area_size(Y_LABELS)
        .build_cartesian_2d(x, y)
        .map_err(err)
}

/// The series of one chart, drawn on a linear or a logarithmic y axis.
pub(super) trait Layer {
    /// Legend labels, in the order the series are drawn.
    fn labels(&self) -> Vec<String>;
    /// Points in data coordinates that the legend should not cover.
    fn occupied(&self) -> Vec<(f64, f64)>;
    /// Draws the series; `floor` is the bottom of the y axis.
    fn draw<'a, DB, Y>(&self, chart: &mut Chart<'a, DB, Y>, floor: f64) -> Result<(), PlotError>
    where
        DB: DrawingBackend + 'a,
        DB::ErrorType: 'static,
        Y: Ranged<ValueType = f64>;
}

/// The legend box in pixels, roughly as plotters lays it out.
fn legend_size(labels: &[String]) -> (i32, i32) {
    let chars = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0) as f64;
    let w = (chars * LEGEND_FONT * 0.62) as i32 + LEGEND_SAMPLE + 24;
    (w, LEGEND_ROW * labels.len() as i32 + 16)
}

/// The four corners a legend may take, as `[x0, x1] × [y0, y1]` in pixels of the plot.
fn corners(
    xr: Range<i32>,
    yr: Range<i32>,
    (w, h): (i32, i32),
) -> [(SeriesLabelPosition, Range<i32>, Range<i32>); 4] {
    let m = LEGEND_MARGIN;
    let (left, right) = (xr.start + m..xr.start + m + w, xr.end - m - w..xr.end - m);
    let (top, bottom) = (yr.start + m..yr.start + m + h, yr.end - m - h..yr.end - m);
    [
        (SeriesLabelPosition::UpperRight, right.clone(), top.clone()),
        (SeriesLabelPosition::UpperLeft, left.clone(), top),
        (SeriesLabelPosition::LowerRight, right, bottom.clone()),
        (SeriesLabelPosition::LowerLeft, left, bottom),
    ]
}

fn covered(pixels: &[(i32, i32)], xs: &Range<i32>, ys: &Range<i32>) -> usize {
    let pad = 4;
    pixels
        .iter()
        .filter(|(x, y)| {
            (xs.start - pad..=xs.end + pad).contains(x)
                && (ys.start - pad..=ys.end + pad).contains(y)
        })
        .count()
}

/// `y` raised at the top, when every corner of the plot holds data, until the legend fits
/// above the data (matplotlib users do this by hand). `log`: `y` is drawn on a log scale.
fn headroom(
    area: (u32, u32),
    layer: &impl Layer,
    x: &Range<f64>,
    y: Range<f64>,
    log: bool,
) -> Range<f64> {
    let pw = area
        .0
        .saturating_sub(Y_LABELS + MARGIN + MARGIN_RIGHT)
        .max(1) as f64;
    let ph = area.1.saturating_sub(X_LABELS + 2 * MARGIN).max(1) as f64;
    let f = |v: f64| {
        if log {
            v.max(f64::MIN_POSITIVE).log10()
        } else {
            v
        }
    };
    let (y0, y1) = (f(y.start), f(y.end));
    let pixels: Vec<(i32, i32)> = layer
        .occupied()
        .into_iter()
        .filter(|(a, b)| a.is_finite() && b.is_finite())
        .map(|(a, b)| {
            let u = (a - x.start) / (x.end - x.start);
            let v = (f(b) - y0) / (y1 - y0);
            ((u * pw) as i32, ((1.0 - v) * ph) as i32)
        })
        .collect();
    let size = legend_size(&layer.labels());
    let free = corners(0..pw as i32, 0..ph as i32, size)
        .iter()
        .any(|(_, xs, ys)| covered(&pixels, xs, ys) == 0);
    if free || layer.labels().is_empty() {
        return y;
    }
    let top = layer
        .occupied()
        .into_iter()
        .filter(|(_, b)| b.is_finite())
        .map(|(_, b)| f(b))
        .fold(f64::NEG_INFINITY, f64::max);
    // the data below the legend's band, with a few pixels to spare
    let band = (size.1 + LEGEND_MARGIN + 8) as f64 / ph;
    if !top.is_finite() || band >= 0.8 {
        return y;
    }
    let new_top = y0 + (top - y0) / (1.0 - band);
    if new_top <= y1 {
        return y;
    }
    let new_top = if log { 10f64.powf(new_top) } else { new_top };
    y.start..new_top
}

/// One chart on `area`: axes, grid, `layer`'s series and the legend in the emptiest corner.
pub(super) fn panel<DB, L: Layer>(
    area: &DrawingArea<DB, Shift>,
    layer: &L,
    t: Theme,
    axes: (Range<f64>, Range<f64>),
    log: bool,
    descs: (&str, &str),
) -> Result<(), PlotError>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    panel_with(area, layer, t, axes, log, descs, XTicks::Numbers)
}

/// What the x axis's tick labels say.
#[derive(Debug, Clone, Copy)]
pub(super) enum XTicks<'a> {
    /// Every tick its number.
    Numbers,
    /// Whole numbers only (a swept depth or width: 1.5 is no value of it).
    Whole,
    /// Value `i` at `x = i` is named `names[i]` (an axis of words).
    Named(&'a [String]),
}

/// [`panel`], with the x axis's tick labels as `ticks` say.
pub(super) fn panel_with<DB, L: Layer>(
    area: &DrawingArea<DB, Shift>,
    layer: &L,
    t: Theme,
    (x, y): (Range<f64>, Range<f64>),
    log: bool,
    (x_desc, y_desc): (&str, &str),
    ticks: XTicks<'_>,
) -> Result<(), PlotError>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let y = headroom(area.dim_in_pixel(), layer, &x, y, log);
    let floor = y.start;
    let descs = (x_desc, y_desc);
    if log {
        let mut c = chart(area, x, y.log_scale())?;
        mesh(&mut c, t, descs, ticks)?;
        layer.draw(&mut c, floor)?;
        legend(&mut c, t, layer)
    } else {
        let mut c = chart(area, x, y)?;
        mesh(&mut c, t, descs, ticks)?;
        layer.draw(&mut c, floor)?;
        legend(&mut c, t, layer)
    }
}

/// Draws the legend in the corner of the plot where it covers the fewest of the layer's
/// points, upper right first on a tie.
fn legend<'a, DB, Y>(
    chart: &mut Chart<'a, DB, Y>,
    t: Theme,
    layer: &impl Layer,
) -> Result<(), PlotError>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    Y: Ranged<ValueType = f64>,
{
    let labels = layer.labels();
    if labels.is_empty() {
        return Ok(());
    }
    let (xr, yr) = chart.plotting_area().get_pixel_range();
    let pixels: Vec<(i32, i32)> = layer
        .occupied()
        .iter()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .map(|p| chart.backend_coord(p))
        .collect();
    let pos = corners(xr, yr, legend_size(&labels))
        .into_iter()
        .min_by_key(|(_, xs, ys)| covered(&pixels, xs, ys))
        .map(|(p, _, _)| p)
        .unwrap_or(SeriesLabelPosition::UpperRight);
    chart
        .configure_series_labels()
        .position(pos)
        .margin(LEGEND_MARGIN)
        .legend_area_size(LEGEND_SAMPLE)
        .background_style(t.background().mix(0.9))
        .border_style(t.foreground())
        .label_font(font(t, LEGEND_FONT))
        .draw()
        .map_err(err)
}

/// `v` when it is a whole number (up to rounding), else `None`.
fn whole(v: f64) -> Option<f64> {
    let i = v.round();
    ((v - i).abs() <= 1e-9 * i.abs().max(1.0)).then_some(i)
}

/// The label of the tick at `v`: plotters puts ticks at round numbers, and with `Whole` or
/// `Named` only the whole ones are values of the axis (the others are left blank).
fn x_tick(ticks: XTicks<'_>, v: f64) -> String {
    match ticks {
        XTicks::Numbers => tick(v),
        XTicks::Whole => whole(v).map(tick).unwrap_or_default(),
        XTicks::Named(names) => whole(v)
            .filter(|i| *i >= 0.0)
            .and_then(|i| names.get(i as usize).cloned())
            .unwrap_or_default(),
    }
}

fn mesh<'a, DB, Y>(
    chart: &mut Chart<'a, DB, Y>,
    t: Theme,
    (x_desc, y_desc): (&str, &str),
    ticks: XTicks<'_>,
) -> Result<(), PlotError>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let fmt = |v: &f64| tick(*v);
    let x_fmt = |v: &f64| x_tick(ticks, *v);
    // names 0..k over a span of k: whole steps are the only round ones that fit k + 1
    let x_labels = match ticks {
        XTicks::Named(names) => names.len() + 1,
        _ => 8,
    };
    chart
        .configure_mesh()
        .x_desc(x_desc)
        .y_desc(y_desc)
        .axis_desc_style(font(t, 16.0))
        .label_style(font(t, 14.0))
        .axis_style(t.foreground())
        .bold_line_style(t.grid())
        .max_light_lines(0)
        .x_labels(x_labels)
        .y_labels(7)
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&fmt)
        .draw()
        .map_err(err)
}

/// `points` joined by straight lines, sampled every tenth of a segment (what a legend must
/// not cover).
pub(super) fn along(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out: Vec<(f64, f64)> = points.first().copied().into_iter().collect();
    for w in points.windows(2) {
        let ((x0, y0), (x1, y1)) = (w[0], w[1]);
        out.extend((1..=10).map(|k| {
            let f = k as f64 / 10.0;
            (x0 + f * (x1 - x0), y0 + f * (y1 - y0))
        }));
    }
    out
}

/// Sets the legend sample of a series: a line (solid or dashed) and/or the model's marker.
pub(super) fn set_legend<'a, DB: DrawingBackend + 'a>(
    anno: &mut SeriesAnno<'a, DB>,
    model: Model,
    dash: Option<(u32, u32)>,
    line: bool,
    with_marker: bool,
) {
    let stroke = model.colour().stroke_width(2);
    let fill = model.colour().filled();
    let seg = vec![(0, 0), (32, 0)];
    let mk = with_marker.then(|| model.marker());
    match (line, dash, mk) {
        (false, _, Some(Marker::Circle)) => {
            anno.legend(move |(x, y)| Circle::new((x + 16, y), 4, fill));
        }
        (false, _, Some(Marker::Triangle)) | (false, _, None) => {
            anno.legend(move |(x, y)| TriangleMarker::new((x + 16, y), 6, fill));
        }
        (true, None, None) => {
            anno.legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 32, y)], stroke));
        }
        (true, None, Some(Marker::Circle)) => {
            anno.legend(move |at| {
                EmptyElement::at(at)
                    + PathElement::new(seg.clone(), stroke)
                    + Circle::new((16, 0), 4, fill)
            });
        }
        (true, None, Some(Marker::Triangle)) => {
            anno.legend(move |at| {
                EmptyElement::at(at)
                    + PathElement::new(seg.clone(), stroke)
                    + TriangleMarker::new((16, 0), 6, fill)
            });
        }
        (true, Some((d, g)), None) => {
            anno.legend(move |at| {
                EmptyElement::at(at)
                    + DashedPathElement::new(seg.clone(), d as i32, g as i32, stroke)
            });
        }
        (true, Some((d, g)), Some(Marker::Circle)) => {
            anno.legend(move |at| {
                EmptyElement::at(at)
                    + DashedPathElement::new(seg.clone(), d as i32, g as i32, stroke)
                    + Circle::new((16, 0), 4, fill)
            });
        }
        (true, Some((d, g)), Some(Marker::Triangle)) => {
            anno.legend(move |at| {
                EmptyElement::at(at)
                    + DashedPathElement::new(seg.clone(), d as i32, g as i32, stroke)
                    + TriangleMarker::new((16, 0), 6, fill)
            });
        }
    }
}

/// A model's markers at data points.
pub(super) fn draw_markers<'a, DB, Y>(
    chart: &mut Chart<'a, DB, Y>,
    model: Model,
    points: &[(f64, f64)],
) -> Result<(), PlotError>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    Y: Ranged<ValueType = f64>,
{
    let style = model.colour().filled();
    match model.marker() {
        Marker::Circle => chart
            .draw_series(points.iter().map(|p| Circle::new(*p, 4, style)))
            .map(|_| ())
            .map_err(err),
        Marker::Triangle => chart
            .draw_series(points.iter().map(|p| TriangleMarker::new(*p, 6, style)))
            .map(|_| ())
            .map_err(err),
    }
}

/// A line through `points`, solid or dashed, labelled in the legend.
pub(super) fn draw_line<'a, DB, Y>(
    chart: &mut Chart<'a, DB, Y>,
    model: Model,
    points: &[(f64, f64)],
    dash: Option<(u32, u32)>,
    width: u32,
    label: &str,
    with_marker: bool,
) -> Result<(), PlotError>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    Y: Ranged<ValueType = f64>,
{
    let style = model.colour().stroke_width(width);
    let series = match dash {
        None => chart
            .draw_series(LineSeries::new(points.iter().copied(), style))
            .map_err(err)?,
        Some((d, g)) => chart
            .draw_series(DashedLineSeries::new(
                points.iter().copied(),
                d as i32,
                g as i32,
                style,
            ))
            .map_err(err)?,
    };
    set_legend(series.label(label), model, dash, true, with_marker);
    Ok(())
}

/// The smallest and largest finite value (`(0, 1)` when there is none).
pub(super) fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if lo.is_finite() {
        (lo, hi)
    } else {
        (0.0, 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_short_and_parse_back() {
        for (v, s) in [
            (0.0, "0"),
            (0.5, "0.5"),
            (-0.005, "-0.005"),
            (2.0, "2"),
            (1000.0, "1000"),
            (0.1 + 0.2, "0.3"),
            (1.5e-6, "1.5e-6"),
            (1e-5, "1e-5"),
            (2.5e12, "2.5e12"),
        ] {
            assert_eq!(tick(v), s);
            assert!((s.parse::<f64>().unwrap() - v).abs() <= 1e-3 * v.abs());
        }
    }

    #[test]
    fn names_and_whole_numbers_label_whole_ticks_only() {
        let c = ["synthetic".to_string(), "breast_cancer".to_string()];
        let named = XTicks::Named(&c);
        assert_eq!(x_tick(named, 0.0), "synthetic");
        assert_eq!(x_tick(named, 1.0 + 1e-12), "breast_cancer");
        for v in [0.5, -1.0, 2.0, -0.5] {
            assert_eq!(x_tick(named, v), "", "{v}");
        }
        assert_eq!(x_tick(XTicks::Whole, 4.0), "4");
        assert_eq!(x_tick(XTicks::Whole, 16.0 - 1e-13), "16");
        assert_eq!(x_tick(XTicks::Whole, 2.5), "");
        assert_eq!(x_tick(XTicks::Numbers, 2.5), "2.5");
    }

    #[test]
    fn padding_widens_a_range_and_a_point() {
        assert_eq!(padded(0.0, 10.0, 0.1), -1.0..11.0);
        assert_eq!(padded(2.0, 2.0, 0.1), 1.0..3.0);
        assert_eq!(span([3.0, f64::NAN, -1.0].into_iter()), (-1.0, 3.0));
        assert_eq!(span(std::iter::empty()), (0.0, 1.0));
    }
}
