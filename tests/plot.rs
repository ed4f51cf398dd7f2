//! Figures (`resprune-tui plot`): what the SVG holds (series, legend, axis titles, bar
//! positions, error bars), what the PNG holds (size, plotted pixels inside, background
//! outside), the sweep figure over tiny sweeps run here, and the errors that leave nothing
//! behind.

use std::path::{Path, PathBuf};

use resprune::config::{Granularity, PruneMethod};
use resprune::plot::{
    self, style, Figure, Format, Kind, Options, PlotError, Source, SweepInput, SweepSelect, Theme,
};
use resprune::record::{self, Record, Status};

mod common;

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/v0.1")
        .join(name)
}

fn fixture(name: &str) -> Record {
    record::load(&fixture_path(name)).unwrap()
}

fn render(rec: &Record, opts: &Options, format: Format) -> Vec<u8> {
    let fig = plot::figure(rec, "test-record", opts).unwrap();
    plot::render(&fig, opts, format).unwrap()
}

fn svg(rec: &Record, opts: &Options) -> String {
    String::from_utf8(render(rec, opts, Format::Svg)).unwrap()
}

/// The SVG parsed, with the questions the tests ask of it.
struct Svg<'a> {
    doc: roxmltree::Document<'a>,
}

impl<'a> Svg<'a> {
    fn parse(text: &'a str) -> Svg<'a> {
        let doc = roxmltree::Document::parse(text).expect("the SVG is well-formed XML");
        assert_eq!(doc.root_element().tag_name().name(), "svg");
        Svg { doc }
    }

    fn elements(&self, tag: &str) -> Vec<roxmltree::Node<'_, 'a>> {
        self.doc
            .descendants()
            .filter(|n| n.is_element() && n.tag_name().name() == tag)
            .collect()
    }

    /// Every text, trimmed.
    fn texts(&self) -> Vec<String> {
        self.elements("text")
            .iter()
            .map(|n| n.text().unwrap_or("").trim().to_string())
            .collect()
    }

    fn count_text(&self, s: &str) -> usize {
        self.texts().iter().filter(|t| *t == s).count()
    }

    /// Elements of `tag` whose `attr` is `value`.
    fn with(&self, tag: &str, attr: &str, value: &str) -> Vec<roxmltree::Node<'_, 'a>> {
        self.elements(tag)
            .into_iter()
            .filter(|n| n.attribute(attr) == Some(value))
            .collect()
    }

    /// Polylines of `colour` through at least `points` points: solid data lines (legend
    /// samples, axes and the dashes of a dashed line have two to four).
    fn data_lines(&self, colour: &str, points: usize) -> usize {
        self.with("polyline", "stroke", colour)
            .iter()
            .filter(|n| n.attribute("points").unwrap().split_whitespace().count() >= points)
            .count()
    }

    /// Polylines of `colour` spanning at least `px` pixels across: solid data lines (a dash
    /// of a dashed line is a few pixels long, and may bend round a data point).
    fn long_lines(&self, colour: &str, px: f64) -> usize {
        self.with("polyline", "stroke", colour)
            .iter()
            .filter(|n| {
                let xs: Vec<f64> = n
                    .attribute("points")
                    .unwrap()
                    .split_whitespace()
                    .map(|p| p.split(',').next().unwrap().parse().unwrap())
                    .collect();
                let (lo, hi) = xs
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
                        (a.min(*x), b.max(*x))
                    });
                hi - lo >= px
            })
            .count()
    }

    /// The x axis as drawn: `value = a + b * pixel`, from the tick labels under the axis
    /// (numeric, centred, no rotation).
    fn x_axis(&self) -> (f64, f64) {
        let ticks: Vec<(f64, f64)> = self
            .elements("text")
            .iter()
            .filter(|n| n.attribute("text-anchor") == Some("middle"))
            .filter(|n| n.attribute("transform").is_none())
            .filter_map(|n| {
                let v: f64 = n.text()?.trim().parse().ok()?;
                Some((n.attribute("x")?.parse().ok()?, v))
            })
            .collect();
        assert!(ticks.len() >= 2, "x tick labels: {ticks:?}");
        let (p0, v0) = ticks[0];
        let (p1, v1) = ticks[ticks.len() - 1];
        let b = (v1 - v0) / (p1 - p0);
        (v0 - b * p0, b)
    }
}

fn attr(n: &roxmltree::Node<'_, '_>, a: &str) -> f64 {
    n.attribute(a).unwrap().parse().unwrap()
}

fn hex(c: plotters::style::RGBColor) -> String {
    style::hex(c)
}

/// A complete record whose two models have exactly two eigenvalues each.
fn two_eigenvalue_record() -> Record {
    let mut r = fixture("article-dense.toml");
    r.residual.spectrum.as_mut().unwrap().eigenvalues = vec![-1.0, 3.0];
    r.plain.spectrum.as_mut().unwrap().eigenvalues = vec![0.0, 2.0];
    r
}

#[test]
fn two_eigenvalues_put_their_bars_where_they_are() {
    let r = two_eigenvalue_record();
    let opts = Options::new(Kind::Spectrum);
    let Figure::Histogram(h) = plot::figure(&r, "two", &opts).unwrap() else {
        panic!("a dense record draws histograms");
    };
    assert_eq!((h.lo, h.hi), (-1.0, 3.0), "one range over both models");
    for (_, counts) in &h.series {
        assert_eq!(counts.iter().sum::<u64>(), 2);
    }

    let text = svg(&r, &opts);
    let s = Svg::parse(&text);
    let (a, b) = s.x_axis();
    let to_value = |px: f64| a + b * px;
    for (colour, values) in [
        (hex(style::RESIDUAL), [-1.0, 3.0]),
        (hex(style::PLAIN), [0.0, 2.0]),
    ] {
        // filled bars; the legend's swatch is a polygon, the outlines are unfilled rects
        let bars = s.with("rect", "fill", &colour);
        assert_eq!(bars.len(), 2, "{colour}: one bar per eigenvalue");
        let mut spans: Vec<(f64, f64)> = bars
            .iter()
            .map(|n| {
                let x = attr(n, "x");
                (to_value(x), to_value(x + attr(n, "width")))
            })
            .collect();
        spans.sort_by(|p, q| p.0.total_cmp(&q.0));
        let bin = (h.hi - h.lo) / h.bins() as f64;
        let px = b.abs() * 1.5; // the pixel rounding of an edge
        for ((from, to), v) in spans.iter().zip(values) {
            assert!(
                *from - px <= v && v <= *to + px,
                "{colour}: bar [{from}, {to}] does not hold λ = {v}"
            );
            assert!((to - from - bin).abs() < 2.0 * px, "a bar is one bin wide");
        }
        // the bars stand as high as their counts: both are 1, so equally high
        let heights: Vec<f64> = bars.iter().map(|n| attr(n, "height")).collect();
        assert_eq!(heights[0], heights[1]);
    }
}

#[test]
fn spectrum_svg_names_the_series_axes_and_record() {
    let r = fixture("article-dense.toml");
    let text = svg(&r, &Options::new(Kind::Spectrum));
    let s = Svg::parse(&text);
    assert_eq!(s.count_text("residual"), 1);
    assert_eq!(s.count_text("plain"), 1);
    assert_eq!(s.count_text("λ (Hessian eigenvalue)"), 1);
    assert_eq!(s.count_text("eigenvalues per bin"), 1);
    assert!(s.texts().iter().any(|t| t.starts_with("test-record:")));
    // the same colours as every other figure
    assert!(!s.with("rect", "fill", &hex(style::RESIDUAL)).is_empty());
    assert!(!s.with("rect", "fill", &hex(style::PLAIN)).is_empty());

    let log = svg(
        &r,
        &Options {
            log: true,
            ..Options::new(Kind::Spectrum)
        },
    );
    let s = Svg::parse(&log);
    assert_eq!(s.count_text("eigenvalues per bin (log scale)"), 1);
    // log ticks are powers of ten
    assert!(s.count_text("100") == 1 && s.count_text("10") == 1);
}

#[test]
fn lanczos_spectrum_is_the_slq_density_with_the_ritz_extremes_marked() {
    let r = fixture("article-lanczos.toml");
    let opts = Options::new(Kind::Spectrum);
    let Figure::Density(d) = plot::figure(&r, "lz", &opts).unwrap() else {
        panic!("a Lanczos record draws densities");
    };
    let text = svg(&r, &opts);
    let s = Svg::parse(&text);
    for label in [
        "residual",
        "plain",
        "residual Ritz values",
        "plain Ritz values",
        "spectral density",
        "λ (Hessian eigenvalue)",
    ] {
        assert_eq!(s.count_text(label), 1, "{label}");
    }
    // one density curve per model
    assert_eq!(s.data_lines(&hex(style::RESIDUAL), 100), 1);
    assert_eq!(s.data_lines(&hex(style::PLAIN), 100), 1);
    // residual Ritz values are circles, plain ones triangles, plus one in each legend entry
    let ritz = |m: style::Model| d.series.iter().find(|c| c.model == m).unwrap().ritz.len();
    assert!(ritz(style::Model::Residual) >= 2);
    let circles = s.with("circle", "fill", &hex(style::RESIDUAL)).len();
    assert_eq!(circles, ritz(style::Model::Residual) + 1);
    let triangles = s.with("polygon", "fill", &hex(style::PLAIN)).len();
    assert_eq!(triangles, ritz(style::Model::Plain) + 1);
}

/// Vertical error-bar segments of a colour: plotters draws each bar as three `<line>`s.
fn error_segments(s: &Svg<'_>, colour: &str) -> usize {
    s.with("line", "stroke", colour).len()
}

#[test]
fn sensitivity_has_a_line_per_model_and_method_and_error_bars_exactly_with_replicates() {
    // one seed, one method: two solid lines, no error bars
    let dense = fixture("article-dense.toml");
    let text = svg(&dense, &Options::new(Kind::Sensitivity));
    let s = Svg::parse(&text);
    assert_eq!(s.count_text("residual, magnitude"), 1);
    assert_eq!(s.count_text("plain, magnitude"), 1);
    assert_eq!(s.count_text("pruning ratio"), 1);
    assert_eq!(s.count_text("S = (L_after − L_before) / L_before"), 1);
    assert_eq!(s.data_lines(&hex(style::RESIDUAL), 5), 1);
    assert_eq!(s.data_lines(&hex(style::PLAIN), 5), 1);
    assert_eq!(error_segments(&s, &hex(style::RESIDUAL)), 0);
    assert_eq!(error_segments(&s, &hex(style::PLAIN)), 0);

    // two seeds, three methods: six lines in the legend, a bar at every point
    let lz = fixture("article-lanczos.toml");
    assert_eq!(lz.pairs().len(), 2);
    let opts = Options::new(Kind::Sensitivity);
    let Figure::Sensitivity(f) = plot::figure(&lz, "lz", &opts).unwrap() else {
        panic!()
    };
    assert_eq!(f.lines.len(), 6);
    let text = svg(&lz, &opts);
    let s = Svg::parse(&text);
    for m in ["residual", "plain"] {
        for method in ["magnitude", "obd", "curvature_gated"] {
            assert_eq!(s.count_text(&format!("{m}, {method}")), 1, "{m}, {method}");
        }
    }
    let points = |m: style::Model| -> usize {
        f.lines
            .iter()
            .filter(|l| l.model == m)
            .map(|l| l.points.len())
            .sum()
    };
    assert_eq!(points(style::Model::Residual), 15);
    assert_eq!(
        error_segments(&s, &hex(style::RESIDUAL)),
        3 * points(style::Model::Residual)
    );
    assert_eq!(
        error_segments(&s, &hex(style::PLAIN)),
        3 * points(style::Model::Plain)
    );
    // the means and spreads are those of the record's summary
    let row = &lz.summary.as_ref().unwrap().residual.pruning[0];
    let line = f
        .lines
        .iter()
        .find(|l| l.model == style::Model::Residual && l.method == row.method)
        .unwrap();
    let (_, m) = line.points.iter().find(|(r, _)| *r == row.ratio).unwrap();
    assert!((m.mean - row.sensitivity.mean).abs() < 1e-12);
    assert!((m.sd - row.sensitivity.sd).abs() < 1e-12);

    // the same record without its replicate: no error bars
    let mut one = lz.clone();
    one.replicates.clear();
    one.summary = None;
    let text = svg(&one, &opts);
    let s = Svg::parse(&text);
    assert_eq!(error_segments(&s, &hex(style::RESIDUAL)), 0);
    assert_eq!(error_segments(&s, &hex(style::PLAIN)), 0);
}

#[test]
fn sensitivity_has_a_line_per_method_and_granularity_labelled_with_both() {
    // the one-seed dense record, its rows again at 2:4 with S raised by 1
    let mut r = fixture("article-dense.toml");
    for v in [&mut r.residual, &mut r.plain] {
        let extra: Vec<_> = v
            .pruning
            .iter()
            .map(|row| {
                let mut row = row.clone();
                row.granularity = Granularity::NOfM { n: 2, m: 4 };
                row.sensitivity += 1.0;
                row
            })
            .collect();
        v.pruning.extend(extra);
    }
    let opts = Options::new(Kind::Sensitivity);
    let Figure::Sensitivity(f) = plot::figure(&r, "g", &opts).unwrap() else {
        panic!()
    };
    assert!(f.by_granularity);
    assert_eq!(
        f.lines.len(),
        4,
        "2 models × (magnitude at 2 granularities)"
    );
    for model in style::Model::BOTH {
        let line = |g: Granularity| {
            f.lines
                .iter()
                .find(|l| l.model == model && l.granularity == g)
                .unwrap()
        };
        let (u, nm) = (
            line(Granularity::Unstructured),
            line(Granularity::NOfM { n: 2, m: 4 }),
        );
        assert_eq!(
            (u.style_index, nm.style_index),
            (0, 1),
            "its own line style"
        );
        let rows = match model {
            style::Model::Residual => &r.residual.pruning,
            style::Model::Plain => &r.plain.pruning,
        };
        // each line holds its own rows: the 2:4 line is the unstructured one raised by 1
        let unstructured = rows
            .iter()
            .filter(|row| row.granularity == Granularity::Unstructured);
        assert_eq!(u.points.len(), unstructured.clone().count());
        for ((x, a), ((y, b), row)) in u.points.iter().zip(nm.points.iter().zip(unstructured)) {
            assert_eq!((*x, *y), (row.ratio, row.ratio));
            assert_eq!(a.mean, row.sensitivity);
            assert!((b.mean - (row.sensitivity + 1.0)).abs() < 1e-12);
        }
    }
    let text = svg(&r, &opts);
    let s = Svg::parse(&text);
    for m in ["residual", "plain"] {
        for g in ["unstructured", "2:4"] {
            let label = format!("{m}, magnitude · {g}");
            assert_eq!(s.count_text(&label), 1, "{label}");
        }
        assert_eq!(s.count_text(&format!("{m}, magnitude")), 0);
    }
    // the unstructured lines solid through every ratio, the 2:4 ones dashed
    assert_eq!(s.data_lines(&hex(style::RESIDUAL), 5), 1);
    assert_eq!(s.data_lines(&hex(style::PLAIN), 5), 1);
}

#[test]
fn prediction_and_training_name_their_series_and_axes() {
    let r = fixture("article-lanczos.toml");
    let text = svg(&r, &Options::new(Kind::Prediction));
    let s = Svg::parse(&text);
    for label in [
        "predicted = measured",
        "residual",
        "plain",
        "measured ΔL = L_after − L_before",
    ] {
        assert_eq!(s.count_text(label), 1, "{label}");
    }
    assert!(s.texts().iter().any(|t| t.starts_with("predicted ΔL")));
    // a residual circle per pruning row of every seed, and one in the legend
    let rows: usize = r.pairs().iter().map(|(_, res, _)| res.pruning.len()).sum();
    let circles = s.with("circle", "fill", &hex(style::RESIDUAL)).len();
    assert_eq!(circles, rows + 1);

    let text = svg(&r, &Options::new(Kind::Training));
    let s = Svg::parse(&text);
    // two panels, each with its legend
    for label in [
        "residual train",
        "residual eval",
        "plain train",
        "plain eval",
    ] {
        assert_eq!(s.count_text(label), 2, "{label}");
    }
    assert_eq!(s.count_text("loss"), 1);
    assert_eq!(s.count_text("accuracy"), 1);
    assert_eq!(s.count_text("epoch"), 2);
    // train curves are solid polylines through every epoch: loss and accuracy of each model
    let epochs = r.residual.history.len();
    assert_eq!(s.data_lines(&hex(style::RESIDUAL), epochs), 2);
    assert_eq!(s.data_lines(&hex(style::PLAIN), epochs), 2);
}

fn decode(png_bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let dec = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

#[test]
fn png_has_the_requested_size_data_inside_and_background_outside() {
    for (kind, theme) in [
        (Kind::Spectrum, Theme::Light),
        (Kind::Sensitivity, Theme::Dark),
        (Kind::Training, Theme::Light),
    ] {
        let r = fixture("article-lanczos.toml");
        let opts = Options {
            width: 640,
            height: 360,
            theme,
            ..Options::new(kind)
        };
        let (w, h, rgb) = decode(&render(&r, &opts, Format::Png));
        assert_eq!((w, h), (640, 360));
        let bg = theme.background();
        let at = |x: u32, y: u32| {
            let i = 3 * (y * w + x) as usize;
            (rgb[i], rgb[i + 1], rgb[i + 2])
        };
        let is_bg = |x, y| at(x, y) == (bg.0, bg.1, bg.2);
        // outside the plot: a 3-pixel frame around the image is background
        for x in 0..w {
            for y in (0..3).chain(h - 3..h) {
                assert!(is_bg(x, y), "{kind}: ({x}, {y}) is not background");
            }
        }
        for y in 0..h {
            for x in (0..3).chain(w - 3..w) {
                assert!(is_bg(x, y), "{kind}: ({x}, {y}) is not background");
            }
        }
        // inside: the middle of the image holds the series' colours
        let series = |x, y| {
            let (r, g, b) = at(x, y);
            [style::RESIDUAL, style::PLAIN]
                .iter()
                .any(|c| (r, g, b) == (c.0, c.1, c.2))
        };
        let plotted = (w / 8..w * 7 / 8)
            .flat_map(|x| (h / 8..h * 7 / 8).map(move |y| (x, y)))
            .filter(|&(x, y)| series(x, y))
            .count();
        assert!(plotted > 100, "{kind}: {plotted} pixels of series colour");
        // the title is set in the bundled font: glyph pixels in the band above the plot
        let title = (w / 4..w * 3 / 4)
            .flat_map(|x| (8..32).map(move |y| (x, y)))
            .filter(|&(x, y)| !is_bg(x, y))
            .count();
        assert!(title > 200, "{kind}: {title} title pixels");
    }
}

#[test]
fn plot_file_writes_svg_and_png_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture_path("article-dense.toml");
    for ext in ["svg", "png", "SVG"] {
        let out = dir.path().join(format!("fig.{ext}"));
        let written = plot::plot_file(&input, &out, &Options::new(Kind::Sensitivity)).unwrap();
        assert_eq!(written, out);
        let bytes = std::fs::read(&out).unwrap();
        if ext == "png" {
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        } else {
            Svg::parse(std::str::from_utf8(&bytes).unwrap());
        }
    }
    // the title names the record file
    let text = std::fs::read_to_string(dir.path().join("fig.svg")).unwrap();
    assert!(text.contains("article-dense: pruning sensitivity"));
    // only the figures are there: no temporary file left
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["fig.SVG", "fig.png", "fig.svg"]);
}

/// Files in `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn bad_input_is_a_clear_error_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let dense = fixture_path("article-dense.toml");
    let opts = |k| Options::new(k);

    // an unknown kind names the ones there are
    let e = "histogram".parse::<Kind>().unwrap_err().to_string();
    assert!(e.contains("`histogram`"), "{e}");
    assert!(
        e.contains("spectrum, sensitivity, prediction, training, sweep"),
        "{e}"
    );

    // an extension other than .svg/.png, checked before the input is read
    let e = plot::plot_file(
        Path::new("no-such-record.toml"),
        &d.join("fig.pdf"),
        &opts(Kind::Spectrum),
    )
    .unwrap_err();
    assert!(matches!(e, PlotError::Extension(_)), "{e}");
    assert!(e.to_string().contains(".svg or .png"), "{e}");
    let e = plot::plot_file(&dense, &d.join("fig"), &opts(Kind::Spectrum)).unwrap_err();
    assert!(matches!(e, PlotError::Extension(_)), "{e}");

    // a record that lacks what the kind needs: an interrupted run with no spectrum
    let mut r = fixture("article-dense.toml");
    r.status = Status::Interrupted;
    r.error = Some("cancelled during training".into());
    r.residual.spectrum = None;
    r.plain.spectrum = None;
    r.residual.pruning.clear();
    r.plain.pruning.clear();
    let cut = d.join("cut.toml");
    record::save_as(&r, &cut).unwrap();
    let out = d.join("spectrum.svg");
    std::fs::write(&out, "an older figure").unwrap();
    for kind in [Kind::Spectrum, Kind::Sensitivity, Kind::Prediction] {
        let e = plot::plot_file(&cut, &out, &opts(kind)).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, PlotError::Missing { .. }), "{msg}");
        assert!(msg.starts_with("cut: "), "{msg}");
        assert!(msg.contains(&format!("no {kind} figure")), "{msg}");
        assert!(
            msg.contains("interrupted (cancelled during training)"),
            "{msg}"
        );
    }
    // the training curves it has still plot
    plot::plot_file(&cut, &d.join("training.svg"), &opts(Kind::Training)).unwrap();
    // what was there before a failed plot is untouched
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "an older figure");

    // an unwritable output path
    let e = plot::plot_file(
        &dense,
        &d.join("no/such/folder/f.png"),
        &opts(Kind::Training),
    )
    .unwrap_err();
    assert!(matches!(e, PlotError::Write { .. }), "{e}");
    assert!(e.to_string().contains("no/such/folder/f.png"), "{e}");

    // --kind sweep: a record is refused as one, a folder without a manifest is not a sweep
    let e = plot::plot_file(&dense, &d.join("s.svg"), &opts(Kind::Sweep)).unwrap_err();
    assert!(matches!(e, PlotError::RecordNotSweep(_)), "{e}");
    assert!(e.to_string().contains("a record, not a sweep"), "{e}");
    let e = resprune::cli::sweep_for_plot(&dense).unwrap_err();
    assert!(matches!(e, PlotError::RecordNotSweep(_)), "{e}");
    let e = resprune::cli::sweep_for_plot(d).unwrap_err();
    assert!(matches!(e, PlotError::NotASweep { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("not a sweep") && msg.contains("sweep.toml"),
        "{msg}"
    );
    // the sweep flags belong to --kind sweep
    let with_ratio = Options {
        sweep: SweepSelect {
            ratio: Some(0.3),
            ..SweepSelect::default()
        },
        ..opts(Kind::Sensitivity)
    };
    let e = plot::plot_file(&dense, &d.join("s.svg"), &with_ratio).unwrap_err();
    assert!(
        matches!(
            e,
            PlotError::SweepOnly {
                flag: "--ratio",
                kind: Kind::Sensitivity
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with("--ratio applies to --kind sweep only"),
        "{e}"
    );
    // a folder for a record kind
    let e = plot::plot_file(d, &d.join("s.svg"), &opts(Kind::Spectrum)).unwrap_err();
    assert!(matches!(e, PlotError::Folder { .. }), "{e}");

    // --log where values can be negative; sizes out of range
    let e = plot::plot_file(
        &dense,
        &d.join("s.svg"),
        &Options {
            log: true,
            ..opts(Kind::Sensitivity)
        },
    )
    .unwrap_err();
    assert!(matches!(e, PlotError::Log(Kind::Sensitivity)), "{e}");
    let e = plot::plot_file(
        &dense,
        &d.join("s.svg"),
        &Options {
            width: 10,
            ..opts(Kind::Spectrum)
        },
    )
    .unwrap_err();
    assert!(e.to_string().contains("--width 10"), "{e}");

    // nothing but the record, the old figure and the one that succeeded
    assert_eq!(listing(d), ["cut.toml", "spectrum.svg", "training.svg"]);
}

#[test]
fn write_beside_puts_both_formats_next_to_the_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("article-x.toml");
    std::fs::copy(fixture_path("article-lanczos.toml"), &path).unwrap();
    let r = record::load(&path).unwrap();
    let written = plot::write_beside(&path, &r, &Options::new(Kind::Spectrum)).unwrap();
    assert_eq!(
        written,
        [
            dir.path().join("article-x-spectrum.svg"),
            dir.path().join("article-x-spectrum.png")
        ]
    );
    assert_eq!(
        listing(dir.path()),
        [
            "article-x-spectrum.png",
            "article-x-spectrum.svg",
            "article-x.toml"
        ]
    );
}

#[test]
fn the_cli_plots_and_reports_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_resprune-tui");
    let dense = fixture_path("article-dense.toml");
    let out = dir.path().join("s.png");
    let run = |args: &[&str]| std::process::Command::new(bin).args(args).output().unwrap();
    let o = run(&[
        "plot",
        dense.to_str().unwrap(),
        "--kind",
        "spectrum",
        "--out",
        out.to_str().unwrap(),
        "--width",
        "400",
        "--height",
        "300",
        "--theme",
        "dark",
        "--log",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        format!("wrote {}", out.display())
    );
    let (w, h, rgb) = decode(&std::fs::read(&out).unwrap());
    assert_eq!((w, h), (400, 300));
    let bg = Theme::Dark.background();
    assert_eq!(&rgb[..3], &[bg.0, bg.1, bg.2]);

    for (args, needle) in [
        (vec!["--kind", "pie"], "unknown figure kind `pie`"),
        (
            vec!["--kind", "spectrum", "--theme", "monochrome"],
            "light or dark",
        ),
        (
            vec!["--kind", "sensitivity", "--ratio", "0.3"],
            "--ratio applies to --kind sweep only",
        ),
        (
            vec!["--kind", "training", "--method", "obd"],
            "--method applies to --kind sweep only",
        ),
        (vec!["--kind", "sweep"], "a record, not a sweep"),
        (
            vec!["--kind", "sweep", "--method", "best"],
            "--method: unknown variant `best`",
        ),
    ] {
        let mut all = vec!["plot", dense.to_str().unwrap(), "--out", "x.svg"];
        all.extend(args);
        let o = run(&all);
        assert_eq!(o.status.code(), Some(1));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "{err}");
    }
}

#[test]
fn the_notebook_writes_the_focused_panes_figure_beside_the_record() {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    use resprune::tui::app::{Level, Pane};
    use resprune::tui::msg::{Cmd, ListEntry, Msg};
    use resprune::tui::{App, Setup};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("article-x.toml");
    std::fs::copy(fixture_path("article-dense.toml"), &path).unwrap();
    let mut a = App::new(Setup::defaults(dir.path().to_path_buf()));
    a.update(Msg::Listed {
        records: vec![ListEntry {
            path: path.clone(),
            record: Ok(Box::new(record::load(&path).unwrap())),
        }],
        configs: vec![],
        open: None,
    });
    let key = |a: &mut App, code| a.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
    assert_eq!(key(&mut a, KeyCode::Enter), None, "opens the record");
    let status = |a: &App| a.status.as_ref().map(|s| (s.level, s.text.clone()));

    // the model pane has no figure
    assert_eq!(a.focus, Pane::Model);
    assert_eq!(key(&mut a, KeyCode::Char('p')), None);
    assert!(status(&a).unwrap().1.contains("no figure"));

    // spectrum, with the pane's log counts: both files beside the record
    key(&mut a, KeyCode::Tab);
    key(&mut a, KeyCode::Tab);
    assert_eq!(a.focus, Pane::Spectrum);
    key(&mut a, KeyCode::Char('L'));
    let Some(Cmd::Plot {
        path: p,
        record: r,
        options,
    }) = key(&mut a, KeyCode::Char('p'))
    else {
        panic!("p asks for a figure");
    };
    assert_eq!(p, path);
    assert_eq!((options.kind, options.log), (Kind::Spectrum, true));
    let answer = resprune::tui::plot_msg(&p, &r, &options);
    assert_eq!(a.update(answer), None);
    let (level, text) = status(&a).unwrap();
    assert_eq!(level, Level::Info);
    let svg = dir.path().join("article-x-spectrum.svg");
    let png = dir.path().join("article-x-spectrum.png");
    assert!(text.contains(&svg.display().to_string()), "{text}");
    assert!(text.contains(&png.display().to_string()), "{text}");
    let s = std::fs::read_to_string(&svg).unwrap();
    assert!(Svg::parse(&s).count_text("eigenvalues per bin (log scale)") == 1);
    assert_eq!(
        decode(&std::fs::read(&png).unwrap()).0,
        Options::DEFAULT_WIDTH
    );

    // pruning pane: the sensitivity figure; a failure is said in the status line
    key(&mut a, KeyCode::Tab);
    assert_eq!(a.focus, Pane::Pruning);
    let Some(Cmd::Plot { options, .. }) = key(&mut a, KeyCode::Char('p')) else {
        panic!()
    };
    assert_eq!(options.kind, Kind::Sensitivity);
    a.update(Msg::Plotted(Err("disk full".into())));
    let (level, text) = status(&a).unwrap();
    assert_eq!(
        (level, text.as_str()),
        (Level::Error, "no figure: disk full")
    );
}

/// A sweep along depth on tiny synthetic data: three points of two seeds, a second or so.
fn depth_sweep() -> String {
    common::tiny_sweep("tiny-depth", 4, "\"model.depth\" = [1, 2, 3]")
}

/// Runs the sweep of `config` with `sets` into `dir/name` through the binary.
fn run_sweep(dir: &Path, name: &str, config: &str, sets: &[&str]) -> PathBuf {
    let cfg = dir.join(format!("{name}.config.toml"));
    std::fs::write(&cfg, config).unwrap();
    let out = dir.join(name);
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_resprune-tui"));
    c.arg("sweep")
        .arg(&cfg)
        .arg("--out")
        .arg(&out)
        .args(["--quiet", "--jobs", "1"]);
    for s in sets {
        c.args(["--set", s]);
    }
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

fn sweep_figure(input: &SweepInput, sel: SweepSelect) -> Result<Figure, PlotError> {
    let opts = Options {
        sweep: sel,
        ..Options::new(Kind::Sweep)
    };
    plot::figure_of(&Source::Sweep(Box::new(input.clone())), &opts)
}

fn sweep_svg(input: &SweepInput, sel: SweepSelect) -> String {
    let opts = Options {
        sweep: sel,
        ..Options::new(Kind::Sweep)
    };
    let fig = plot::figure_of(&Source::Sweep(Box::new(input.clone())), &opts).unwrap();
    String::from_utf8(plot::render(&fig, &opts, Format::Svg).unwrap()).unwrap()
}

fn cli_plot(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_resprune-tui"))
        .arg("plot")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn the_sweep_figure_draws_var_and_s_against_the_swept_key_with_the_spread_across_seeds() {
    let d = tempfile::tempdir().unwrap();
    let dir = run_sweep(d.path(), "depth", &depth_sweep(), &[]);
    let input = resprune::cli::sweep_for_plot(&dir).unwrap();
    assert_eq!(input.points.len(), 3);
    let Figure::Sweep(f) = sweep_figure(&input, SweepSelect::default()).unwrap() else {
        panic!("a sweep draws the sweep figure");
    };
    assert_eq!(f.axis, "model.depth");
    assert_eq!(f.categories, None);
    // the defaults: the middle of the ratios [0.2, 0.4] (the lower of the two middle ones),
    // the only method, unstructured
    assert_eq!(
        (f.ratio, f.method, f.granularity),
        (0.2, PruneMethod::Magnitude, Granularity::Unstructured)
    );
    assert_eq!(f.seeds, (2, 2));
    assert_eq!(f.panels.len(), 2);

    // the numbers are the sweep report's: per point, mean and sd over the two seeds
    let report = resprune::sweep::load(&dir).unwrap().report();
    for (panel, metric) in f.panels.iter().zip(["Var(λ)", "S@0.2"]) {
        assert_eq!(panel.lines.len(), 2, "residual and plain");
        for line in &panel.lines {
            assert!(line.within.is_empty());
            let xs: Vec<f64> = line.points.iter().map(|p| p.0).collect();
            assert_eq!(xs, [1.0, 2.0, 3.0]);
            for ((_, m), row) in line.points.iter().zip(&report.rows) {
                let cell = row.cells.iter().find(|c| c.metric == metric).unwrap();
                let want = match line.model {
                    style::Model::Residual => cell.residual.unwrap(),
                    style::Model::Plain => cell.plain.unwrap(),
                };
                assert_eq!(m.n, 2);
                assert!(
                    (m.mean - want.mean).abs() <= 1e-12 * want.mean.abs(),
                    "{metric}"
                );
                assert!((m.sd - want.sd).abs() <= 1e-12 * want.sd.abs().max(1e-300));
            }
        }
    }
    // and, for one point, straight from its record: Var(λ) of the residual model over seeds
    let r = input.points[1].record.as_ref().unwrap();
    let v: Vec<f64> = r
        .pairs()
        .iter()
        .map(|(_, res, _)| res.spectrum.as_ref().unwrap().stats.variance)
        .collect();
    let mean = (v[0] + v[1]) / 2.0;
    let sd = (v[0] - v[1]).abs() / 2f64.sqrt();
    let (_, m) = f.panels[0].lines[0].points[1];
    assert!((m.mean - mean).abs() <= 1e-12 * mean.abs());
    assert!((m.sd - sd).abs() <= 1e-9 * sd.max(1e-300));

    let text = sweep_svg(&input, SweepSelect::default());
    let s = Svg::parse(&text);
    // two panels, each with its legend and axes
    assert_eq!(s.count_text("residual"), 2);
    assert_eq!(s.count_text("plain"), 2);
    assert_eq!(s.count_text("model.depth"), 2);
    assert_eq!(s.count_text("Var(λ)"), 1);
    assert_eq!(s.count_text("S at ratio 0.2, magnitude"), 1);
    assert_eq!(
        s.count_text("tiny-depth: Var(λ) and S against model.depth (mean ± sd over 2 seeds)"),
        1
    );
    // 2 models × 2 panels: a solid line through the 3 points each, in the models' colours
    assert_eq!(s.data_lines(&hex(style::RESIDUAL), 3), 2);
    assert_eq!(s.data_lines(&hex(style::PLAIN), 3), 2);
    // residual circles, plain triangles: one per point per panel and one per legend
    assert_eq!(
        s.with("circle", "fill", &hex(style::RESIDUAL)).len(),
        3 * 2 + 2
    );
    assert_eq!(
        s.with("polygon", "fill", &hex(style::PLAIN)).len(),
        3 * 2 + 2
    );
    // an error bar (three segments) at every point of every line: two seeds each
    assert_eq!(error_segments(&s, &hex(style::RESIDUAL)), 3 * 3 * 2);
    assert_eq!(error_segments(&s, &hex(style::PLAIN)), 3 * 3 * 2);

    // --ratio picks S at another ratio
    let sel = SweepSelect {
        ratio: Some(0.4),
        ..SweepSelect::default()
    };
    let text = sweep_svg(&input, sel);
    assert_eq!(Svg::parse(&text).count_text("S at ratio 0.4, magnitude"), 1);

    // through the binary, as a PNG of the requested size
    let png = d.path().join("depth.png");
    let o = cli_plot(&[
        dir.to_str().unwrap(),
        "--kind",
        "sweep",
        "--out",
        png.to_str().unwrap(),
        "--width",
        "900",
        "--height",
        "420",
        "--ratio",
        "0.4",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (w, h, rgb) = decode(&std::fs::read(&png).unwrap());
    assert_eq!((w, h), (900, 420));
    let series = rgb
        .chunks(3)
        .filter(|p| {
            [style::RESIDUAL, style::PLAIN]
                .iter()
                .any(|c| **p == [c.0, c.1, c.2])
        })
        .count();
    assert!(series > 200, "{series} pixels of series colour");
}

/// Depth × width, for lines per combination of the other key.
const GRID_SWEEP: &str = r#"
name = "tiny-grid"
threads = 1
[data]
samples = 40
features = 4
eval_fraction = 0.0
[train]
epochs = 2
[hessian]
method = "dense"
[prune]
ratios = [0.2, 0.4]
[sweep]
"model.depth" = [1, 2]
"model.width" = [3, 4, 5]
"#;

#[test]
fn a_sweep_of_two_keys_draws_a_line_per_value_of_the_other_and_one_seed_has_no_error_bars() {
    let d = tempfile::tempdir().unwrap();
    let dir = run_sweep(d.path(), "grid", GRID_SWEEP, &["replicates=1"]);
    let input = resprune::cli::sweep_for_plot(&dir).unwrap();
    assert_eq!(input.points.len(), 6);
    // x: the innermost numeric key, model.width; a line per model and depth
    let Figure::Sweep(f) = sweep_figure(&input, SweepSelect::default()).unwrap() else {
        panic!()
    };
    assert_eq!(f.axis, "model.width");
    assert_eq!(f.seeds, (1, 1));
    for panel in &f.panels {
        assert_eq!(panel.lines.len(), 4);
        for l in &panel.lines {
            assert_eq!(
                l.points.iter().map(|p| p.0).collect::<Vec<_>>(),
                [3.0, 4.0, 5.0]
            );
            assert!(l.points.iter().all(|p| p.1.n == 1 && p.1.sd == 0.0));
        }
    }
    let text = sweep_svg(&input, SweepSelect::default());
    let s = Svg::parse(&text);
    for m in ["residual", "plain"] {
        for depth in [1, 2] {
            let label = format!("{m}, model.depth={depth}");
            assert_eq!(s.count_text(&label), 2, "{label}: in both legends");
        }
    }
    assert_eq!(s.count_text("model.width"), 2);
    assert!(s
        .texts()
        .contains(&"tiny-grid: Var(λ) and S against model.width (one seed per point)".into()));
    // the first depth's lines solid across the plot (the second dashed), 2 panels; no error
    // bars at all
    assert_eq!(s.long_lines(&hex(style::RESIDUAL), 100.0), 2);
    assert_eq!(s.long_lines(&hex(style::PLAIN), 100.0), 2);
    assert_eq!(error_segments(&s, &hex(style::RESIDUAL)), 0);
    assert_eq!(error_segments(&s, &hex(style::PLAIN)), 0);

    // --axis model.depth: a line per width
    let sel = SweepSelect {
        axis: Some("model.depth".into()),
        ..SweepSelect::default()
    };
    let Figure::Sweep(f) = sweep_figure(&input, sel.clone()).unwrap() else {
        panic!()
    };
    assert_eq!(f.axis, "model.depth");
    assert_eq!(f.panels[1].lines.len(), 6);
    let s = sweep_svg(&input, sel);
    let s = Svg::parse(&s);
    assert_eq!(s.count_text("plain, model.width=5"), 2);
}

#[test]
fn a_sweep_of_names_puts_them_on_the_x_axis() {
    // the one-key depth sweep with its depths made words: x at 0, 1, 2, named by the values
    let d = tempfile::tempdir().unwrap();
    let dir = run_sweep(d.path(), "depth", &depth_sweep(), &["replicates=1"]);
    let mut input = resprune::cli::sweep_for_plot(&dir).unwrap();
    let words = ["one", "two", "three"];
    for (p, w) in input.points.iter_mut().zip(words) {
        p.values[0].1 = toml::Value::String(w.into());
    }
    let Figure::Sweep(f) = sweep_figure(&input, SweepSelect::default()).unwrap() else {
        panic!()
    };
    assert_eq!(f.categories, Some(words.map(String::from).to_vec()));
    let xs: Vec<f64> = f.panels[0].lines[0].points.iter().map(|p| p.0).collect();
    assert_eq!(xs, [0.0, 1.0, 2.0]);
    let s = sweep_svg(&input, SweepSelect::default());
    let s = Svg::parse(&s);
    for w in words {
        assert_eq!(s.count_text(w), 2, "{w}: a tick in each panel");
    }
}

#[test]
fn the_sweep_figure_says_which_ratio_method_point_or_folder_is_wrong() {
    let d = tempfile::tempdir().unwrap();
    let dir = run_sweep(d.path(), "depth", &depth_sweep(), &[]);
    let input = resprune::cli::sweep_for_plot(&dir).unwrap();
    let err =
        |input: &SweepInput, sel: SweepSelect| sweep_figure(input, sel).unwrap_err().to_string();
    let sel = SweepSelect::default;

    // a ratio, method, granularity or key the records do not have: the ones they do
    let e = err(
        &input,
        SweepSelect {
            ratio: Some(0.3),
            ..sel()
        },
    );
    assert!(
        e.starts_with("--ratio 0.3: tiny-depth's records have no magnitude pruning at this ratio"),
        "{e}"
    );
    assert!(e.ends_with("choose one of 0.2, 0.4"), "{e}");
    let e = err(
        &input,
        SweepSelect {
            method: Some(PruneMethod::Obd),
            ..sel()
        },
    );
    assert!(
        e.starts_with("--method obd:") && e.ends_with("choose one of magnitude"),
        "{e}"
    );
    let e = err(
        &input,
        SweepSelect {
            granularity: Some(Granularity::Neuron),
            ..sel()
        },
    );
    assert!(
        e.starts_with("--granularity neuron:") && e.ends_with("choose one of unstructured"),
        "{e}"
    );
    let e = err(
        &input,
        SweepSelect {
            axis: Some("model.width".into()),
            ..sel()
        },
    );
    assert!(
        e.contains("does not sweep it; choose one of model.depth"),
        "{e}"
    );
    let e = Options {
        sweep: SweepSelect {
            ratio: Some(1.5),
            ..sel()
        },
        ..Options::new(Kind::Sweep)
    }
    .check()
    .unwrap_err();
    assert!(matches!(e, PlotError::Ratio(_)), "{e}");

    // a point without a spectrum, one without the pruning rows: named
    let mut cut = input.clone();
    let r = cut.points[1].record.as_mut().unwrap();
    r.residual.spectrum = None;
    for rep in &mut r.replicates {
        rep.residual.spectrum = None;
    }
    let e = err(&cut, sel());
    assert!(
        e.starts_with(
            "sweep tiny-depth: point model.depth=2: the residual model has no Hessian spectrum"
        ),
        "{e}"
    );
    let mut cut = input.clone();
    let r = cut.points[2].record.as_mut().unwrap();
    r.plain.pruning.clear();
    for rep in &mut r.replicates {
        rep.plain.pruning.clear();
    }
    let e = err(&cut, sel());
    assert!(
        e.starts_with(
            "sweep tiny-depth: point model.depth=3: the plain model has no magnitude pruning row at ratio 0.2"
        ),
        "{e}"
    );

    // points not done: every one named, with what to do
    let mut cut = input.clone();
    cut.points[0].done = false;
    cut.points[0].status = "pending".into();
    cut.points[0].record = None;
    cut.points[2].done = false;
    cut.points[2].status = "failed".into();
    let e = err(&cut, sel());
    assert!(
        e.starts_with("sweep tiny-depth: 2 of 3 points are not done: model.depth=1 (pending), model.depth=3 (failed)"),
        "{e}"
    );
    assert!(e.contains("resumes it"), "{e}");
    // a record gone after the manifest was written
    std::fs::remove_file(dir.join("model.depth=2.toml")).unwrap();
    let gone = resprune::cli::sweep_for_plot(&dir).unwrap();
    let e = err(&gone, sel());
    assert!(
        e.contains("model.depth=2 (its record is gone or does not load)"),
        "{e}"
    );

    // through the binary: the error, exit 1, no figure
    let out = d.path().join("s.svg");
    let o = cli_plot(&[
        dir.to_str().unwrap(),
        "--kind",
        "sweep",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("1 of 3 points are not done"), "{stderr}");
    let o = cli_plot(&[
        d.path().to_str().unwrap(),
        "--kind",
        "sweep",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("not a sweep"), "{stderr}");
    assert!(!out.exists());
    // a record kind given the sweep
    let e = plot::figure_of(
        &Source::Sweep(Box::new(input.clone())),
        &Options::new(Kind::Spectrum),
    )
    .unwrap_err();
    assert!(matches!(e, PlotError::SweepNotRecord(..)), "{e}");
}
