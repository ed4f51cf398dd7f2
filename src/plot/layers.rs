//! The series of each kind of figure, as [`Layer`]s drawn by [`super::draw::panel`].

use std::ops::Range;

use plotters::coord::ranged1d::Ranged;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::data::{Densities, DensityCurve, Epoch, Histograms, Prediction, Sensitivity, Training};
use super::draw::{
    along, draw_line, draw_markers, err, padded, panel, panel_with, set_legend, span, Chart, Layer,
    Points, XTicks,
};
use super::style::{self, Model, Theme};
use super::sweep::{SweepFigure, SweepPanel};
use super::PlotError;
use crate::stats::MeanSd;

/// `(from, to, count)` of one bin.
type Bar = (f64, f64, f64);

struct Bars<'f>(&'f Histograms);

impl Bars<'_> {
    /// `(from, to, count)` of the non-empty bins of each model.
    fn bars(&self) -> Vec<(Model, Vec<Bar>)> {
        let h = self.0;
        h.series
            .iter()
            .map(|(m, counts)| {
                let bars = counts
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| **c > 0)
                    .map(|(i, c)| {
                        let (a, b) = h.edges(i);
                        (a, b, *c as f64)
                    })
                    .collect();
                (*m, bars)
            })
            .collect()
    }
}

impl Layer for Bars<'_> {
    fn labels(&self) -> Vec<String> {
        self.0
            .series
            .iter()
            .map(|(m, _)| m.name().to_string())
            .collect()
    }

    fn occupied(&self) -> Vec<(f64, f64)> {
        // a bar covers its column: sample it top to bottom, edge to edge
        self.bars()
            .into_iter()
            .flat_map(|(_, bars)| bars)
            .flat_map(|(a, b, c)| {
                (0..=8).flat_map(move |i| {
                    let y = c * i as f64 / 8.0;
                    [(a, y), (0.5 * (a + b), y), (b, y)]
                })
            })
            .collect()
    }

    fn draw<'a, DB, Y>(&self, chart: &mut Chart<'a, DB, Y>, floor: f64) -> Result<(), PlotError>
    where
        DB: DrawingBackend + 'a,
        DB::ErrorType: 'static,
        Y: Ranged<ValueType = f64>,
    {
        for (model, bars) in self.bars() {
            let colour = model.colour();
            let fill = colour.mix(0.45).filled();
            chart
                .draw_series(
                    bars.iter()
                        .map(|&(a, b, c)| Rectangle::new([(a, floor), (b, c)], fill)),
                )
                .map_err(err)?
                .label(model.name())
                .legend(move |(x, y)| {
                    Polygon::new(
                        vec![
                            (x + 8, y - 6),
                            (x + 24, y - 6),
                            (x + 24, y + 6),
                            (x + 8, y + 6),
                        ],
                        colour.mix(0.6).filled(),
                    )
                });
            let edge = colour.stroke_width(1);
            chart
                .draw_series(
                    bars.iter()
                        .map(|&(a, b, c)| Rectangle::new([(a, floor), (b, c)], edge)),
                )
                .map_err(err)?;
        }
        Ok(())
    }
}

pub(super) fn histogram<DB>(
    area: &DrawingArea<DB, Shift>,
    h: &Histograms,
    t: Theme,
    log: bool,
) -> Result<(), PlotError>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let top = h
        .series
        .iter()
        .flat_map(|(_, c)| c.iter().copied())
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let (y, y_desc) = if log {
        (0.5..top * 2.0, "eigenvalues per bin (log scale)")
    } else {
        (0.0..top * 1.08, "eigenvalues per bin")
    };
    let x = padded(h.lo, h.hi, 0.03);
    panel(
        area,
        &Bars(h),
        t,
        (x, y),
        log,
        ("λ (Hessian eigenvalue)", y_desc),
    )
}

struct Curves<'f> {
    d: &'f Densities,
    /// Densities below it are drawn at it (the bottom of a log axis).
    floor: f64,
}

impl Curves<'_> {
    fn points(&self, s: &DensityCurve) -> Vec<(f64, f64)> {
        s.grid
            .iter()
            .zip(&s.density)
            .filter(|(x, v)| x.is_finite() && v.is_finite())
            .map(|(x, v)| (*x, v.max(self.floor)))
            .collect()
    }
}

impl Layer for Curves<'_> {
    fn labels(&self) -> Vec<String> {
        let curves = self.d.series.iter().map(|s| s.model.name().to_string());
        let ritz = self
            .d
            .series
            .iter()
            .filter(|s| !s.ritz.is_empty())
            .map(|s| format!("{} Ritz values", s.model.name()));
        curves.chain(ritz).collect()
    }

    fn occupied(&self) -> Vec<(f64, f64)> {
        self.d
            .series
            .iter()
            .flat_map(|s| along(&self.points(s)))
            .collect()
    }

    fn draw<'a, DB, Y>(&self, chart: &mut Chart<'a, DB, Y>, floor: f64) -> Result<(), PlotError>
    where
        DB: DrawingBackend + 'a,
        DB::ErrorType: 'static,
        Y: Ranged<ValueType = f64>,
    {
        for s in &self.d.series {
            draw_line(
                chart,
                s.model,
                &self.points(s),
                None,
                2,
                s.model.name(),
                false,
            )?;
        }
        // the Ritz extremes on the axis, each model with its marker
        for s in self.d.series.iter().filter(|s| !s.ritz.is_empty()) {
            let pts: Vec<(f64, f64)> = s.ritz.iter().map(|v| (*v, floor)).collect();
            draw_markers(chart, s.model, &pts)?;
            let anno = chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
                .map_err(err)?;
            let label = format!("{} Ritz values", s.model.name());
            set_legend(anno.label(label), s.model, None, false, true);
        }
        Ok(())
    }
}

pub(super) fn density<DB>(
    area: &DrawingArea<DB, Shift>,
    d: &Densities,
    t: Theme,
    log: bool,
) -> Result<(), PlotError>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let top = d
        .series
        .iter()
        .flat_map(|s| s.density.iter().copied())
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    let top = if top > 0.0 { top } else { 1.0 };
    let (y, y_desc) = if log {
        (top * 1e-6..top * 2.0, "spectral density (log scale)")
    } else {
        (0.0..top * 1.08, "spectral density")
    };
    let (lo, hi) = span(
        d.series
            .iter()
            .flat_map(|s| s.grid.iter().chain(&s.ritz).copied()),
    );
    let layer = Curves { d, floor: y.start };
    panel(
        area,
        &layer,
        t,
        (padded(lo, hi, 0.02), y),
        log,
        ("λ (Hessian eigenvalue)", y_desc),
    )
}

/// One line of means with ± sd bars: its model, its line style and legend label.
struct SpreadLine<'f> {
    model: Model,
    style_index: usize,
    label: String,
    points: &'f [(f64, MeanSd)],
}

/// Lines of means over seeds, each with its model's marker at every point and an error bar
/// of ± one sample sd exactly where a point has two seeds or more (the sensitivity and the
/// sweep figures).
struct Spread<'f>(Vec<SpreadLine<'f>>);

impl<'f> Spread<'f> {
    fn of_sensitivity(s: &'f Sensitivity) -> Spread<'f> {
        Spread(
            s.lines
                .iter()
                .map(|l| SpreadLine {
                    model: l.model,
                    style_index: l.style_index,
                    label: l.label(s.by_granularity),
                    points: &l.points,
                })
                .collect(),
        )
    }

    fn of_sweep(p: &'f SweepPanel) -> Spread<'f> {
        Spread(
            p.lines
                .iter()
                .map(|l| SpreadLine {
                    model: l.model,
                    style_index: l.style_index,
                    label: l.label(),
                    points: &l.points,
                })
                .collect(),
        )
    }

    /// `[lo, hi]` of the means and their bars, down to 0 at least (S and Var(λ) are read
    /// from 0).
    fn y_span(&self) -> (f64, f64) {
        let sd = |m: &MeanSd| if m.n > 1 { m.sd } else { 0.0 };
        let (lo, hi) = span(
            self.0
                .iter()
                .flat_map(|l| l.points.iter())
                .flat_map(|(_, m)| [m.mean - sd(m), m.mean + sd(m)]),
        );
        (lo.min(0.0), hi)
    }

    fn x_span(&self) -> (f64, f64) {
        span(self.0.iter().flat_map(|l| l.points.iter().map(|(x, _)| *x)))
    }
}

impl Layer for Spread<'_> {
    fn labels(&self) -> Vec<String> {
        self.0.iter().map(|l| l.label.clone()).collect()
    }

    fn occupied(&self) -> Vec<(f64, f64)> {
        let mut out = Vec::new();
        for line in &self.0 {
            let xy: Vec<(f64, f64)> = line.points.iter().map(|(r, m)| (*r, m.mean)).collect();
            out.extend(along(&xy));
            for (r, m) in line.points.iter().filter(|(_, m)| m.n > 1) {
                out.extend(along(&[(*r, m.mean - m.sd), (*r, m.mean + m.sd)]));
            }
        }
        out
    }

    fn draw<'a, DB, Y>(&self, chart: &mut Chart<'a, DB, Y>, _floor: f64) -> Result<(), PlotError>
    where
        DB: DrawingBackend + 'a,
        DB::ErrorType: 'static,
        Y: Ranged<ValueType = f64>,
    {
        for line in &self.0 {
            let xy: Vec<(f64, f64)> = line.points.iter().map(|(r, m)| (*r, m.mean)).collect();
            let dash = style::dash(line.style_index);
            draw_line(chart, line.model, &xy, dash, 2, &line.label, true)?;
            draw_markers(chart, line.model, &xy)?;
            // ± sd across seeds, only where there are several
            let bar = line.model.colour().stroke_width(1);
            let bars = line.points.iter().filter(|(_, m)| m.n > 1).map(|(r, m)| {
                ErrorBar::new_vertical(*r, m.mean - m.sd, m.mean, m.mean + m.sd, bar, 8)
            });
            chart.draw_series(bars).map_err(err)?;
        }
        Ok(())
    }
}

pub(super) fn sensitivity<DB>(
    area: &DrawingArea<DB, Shift>,
    s: &Sensitivity,
    t: Theme,
) -> Result<(), PlotError>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let layer = Spread::of_sensitivity(s);
    let (xlo, xhi) = layer.x_span();
    let (ylo, yhi) = layer.y_span();
    let axes = (padded(xlo, xhi, 0.05), padded(ylo, yhi, 0.08));
    let descs = ("pruning ratio", "S = (L_after − L_before) / L_before");
    panel(area, &layer, t, axes, false, descs)
}

/// Var(λ) (left) and S (right) against the swept value, on one x axis.
pub(super) fn sweep<DB>(
    area: &DrawingArea<DB, Shift>,
    f: &SweepFigure,
    t: Theme,
) -> Result<(), PlotError>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let layers: Vec<Spread<'_>> = f.panels.iter().map(Spread::of_sweep).collect();
    let x = match &f.categories {
        // value i at x = i, half a slot of room at each end
        Some(c) => -0.5..(c.len() as f64 - 0.5),
        None => {
            let (lo, hi) = span(layers.iter().flat_map(|l| {
                let (a, b) = l.x_span();
                [a, b]
            }));
            padded(lo, hi, 0.06)
        }
    };
    let all_whole = f
        .panels
        .iter()
        .flat_map(|p| p.lines.iter().flat_map(|l| l.points.iter()))
        .all(|(x, _)| x.fract() == 0.0);
    let ticks = match &f.categories {
        Some(c) => XTicks::Named(c),
        None if all_whole => XTicks::Whole,
        None => XTicks::Numbers,
    };
    let areas = area.split_evenly((1, layers.len().max(1)));
    for ((layer, p), a) in layers.iter().zip(&f.panels).zip(&areas) {
        let (lo, hi) = layer.y_span();
        let axes = (x.clone(), padded(lo, hi, 0.08));
        let descs = (f.axis.as_str(), p.y_desc.as_str());
        panel_with(a, layer, t, axes, false, descs, ticks)?;
    }
    Ok(())
}

struct Scatter<'f> {
    p: &'f Prediction,
    /// The diagonal from `(lo, lo)` to `(hi, hi)`, in the theme's reference colour.
    range: Range<f64>,
    reference: RGBColor,
}

impl Layer for Scatter<'_> {
    fn labels(&self) -> Vec<String> {
        let models = self.p.series.iter().map(|(m, _)| m.name().to_string());
        std::iter::once("predicted = measured".to_string())
            .chain(models)
            .collect()
    }

    fn occupied(&self) -> Vec<(f64, f64)> {
        let (a, b) = (self.range.start, self.range.end);
        let mut out = along(&[(a, a), (b, b)]);
        out.extend(
            self.p
                .series
                .iter()
                .flat_map(|(_, pts)| pts.iter().copied()),
        );
        out
    }

    fn draw<'a, DB, Y>(&self, chart: &mut Chart<'a, DB, Y>, _floor: f64) -> Result<(), PlotError>
    where
        DB: DrawingBackend + 'a,
        DB::ErrorType: 'static,
        Y: Ranged<ValueType = f64>,
    {
        let (a, b) = (self.range.start, self.range.end);
        let reference = self.reference;
        let diagonal = LineSeries::new([(a, a), (b, b)], reference.stroke_width(1));
        chart
            .draw_series(diagonal)
            .map_err(err)?
            .label("predicted = measured")
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 32, y)], reference.stroke_width(1))
            });
        for (model, pts) in &self.p.series {
            draw_markers(chart, *model, pts)?;
            let anno = chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
                .map_err(err)?;
            set_legend(anno.label(model.name()), *model, None, false, true);
        }
        Ok(())
    }
}

pub(super) fn prediction<DB>(
    area: &DrawingArea<DB, Shift>,
    p: &Prediction,
    t: Theme,
) -> Result<(), PlotError>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let (lo, hi) = span(
        p.series
            .iter()
            .flat_map(|(_, pts)| pts.iter().flat_map(|(a, b)| [*a, *b])),
    );
    let range = padded(lo.min(0.0), hi.max(0.0), 0.05);
    let layer = Scatter {
        p,
        range: range.clone(),
        reference: t.reference(),
    };
    let descs = (
        "measured ΔL = L_after − L_before",
        "predicted ΔL = g·Δθ + ½ Δθᵀ H Δθ",
    );
    panel(area, &layer, t, (range.clone(), range), false, descs)
}

struct History<'f> {
    tr: &'f Training,
    pick: fn(&Epoch) -> (f64, f64),
}

impl History<'_> {
    /// `(model, train, eval)`, as `(epoch, value)` points.
    fn curves(&self) -> Vec<(Model, Points, Points)> {
        self.tr
            .series
            .iter()
            .map(|(m, epochs)| {
                let train = epochs.iter().map(|e| (e.epoch, (self.pick)(e).0)).collect();
                let eval = epochs.iter().map(|e| (e.epoch, (self.pick)(e).1)).collect();
                (*m, train, eval)
            })
            .collect()
    }
}

impl Layer for History<'_> {
    fn labels(&self) -> Vec<String> {
        self.tr
            .series
            .iter()
            .flat_map(|(m, _)| [format!("{} train", m.name()), format!("{} eval", m.name())])
            .collect()
    }

    fn occupied(&self) -> Vec<(f64, f64)> {
        self.curves()
            .into_iter()
            .flat_map(|(_, train, eval)| along(&train).into_iter().chain(along(&eval)))
            .collect()
    }

    /// Train solid with the model's markers, eval dashed.
    fn draw<'a, DB, Y>(&self, chart: &mut Chart<'a, DB, Y>, _floor: f64) -> Result<(), PlotError>
    where
        DB: DrawingBackend + 'a,
        DB::ErrorType: 'static,
        Y: Ranged<ValueType = f64>,
    {
        for (model, train, eval) in self.curves() {
            let name = model.name();
            draw_line(
                chart,
                model,
                &train,
                None,
                2,
                &format!("{name} train"),
                true,
            )?;
            draw_markers(chart, model, &train)?;
            draw_line(
                chart,
                model,
                &eval,
                style::dash(1),
                2,
                &format!("{name} eval"),
                false,
            )?;
        }
        Ok(())
    }
}

pub(super) fn training<DB>(
    area: &DrawingArea<DB, Shift>,
    tr: &Training,
    t: Theme,
    log: bool,
) -> Result<(), PlotError>
where
    DB: DrawingBackend,
    DB::ErrorType: 'static,
{
    let panels = area.split_evenly((1, 2));
    let epochs = tr
        .series
        .iter()
        .flat_map(|(_, e)| e.iter().map(|e| e.epoch));
    let (elo, ehi) = span(epochs);
    let x = padded(elo, ehi, 0.03);
    let values = |pick: fn(&Epoch) -> (f64, f64)| {
        tr.series
            .iter()
            .flat_map(|(_, e)| e.iter().flat_map(move |e| <[f64; 2]>::from(pick(e))))
            .collect::<Vec<f64>>()
    };
    let loss: fn(&Epoch) -> (f64, f64) = |e| (e.train_loss, e.eval_loss);
    let accuracy: fn(&Epoch) -> (f64, f64) = |e| (e.train_accuracy, e.eval_accuracy);
    let losses = values(loss);
    let (y, y_desc) = if log {
        let (lo, hi) = span(losses.iter().copied().filter(|v| *v > 0.0));
        (lo / 1.15..hi * 1.15, "loss (log scale)")
    } else {
        let (lo, hi) = span(losses.iter().copied());
        (padded(lo, hi, 0.08), "loss")
    };
    let layer = History { tr, pick: loss };
    panel(
        &panels[0],
        &layer,
        t,
        (x.clone(), y),
        log,
        ("epoch", y_desc),
    )?;
    let (lo, hi) = span(values(accuracy).into_iter());
    let y = padded(lo, hi, 0.08);
    let y = y.start.max(0.0)..y.end.min(1.0);
    let layer = History { tr, pick: accuracy };
    panel(&panels[1], &layer, t, (x, y), false, ("epoch", "accuracy"))
}
