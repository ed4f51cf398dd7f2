//! Figures for papers: spectra, SLQ densities, sensitivity curves, ΔL predictions and
//! training curves from a record, and Var(λ) and S against the swept value of a sweep, as SVG
//! or PNG. Reads records only (never re-runs).
//!
//! Two steps: [`figure_of`] turns a [`Source`] into a [`data::Figure`] (the numbers drawn,
//! nothing drawn yet), and [`render`] draws a figure with plotters into SVG or PNG bytes, from
//! the same drawing code for both. Text is measured and drawn with the DejaVu Sans bundled in
//! `assets/fonts` (no system fonts, fontconfig or freetype). [`plot_file`] (a record) and
//! [`plot_source`] (any source) do both and write the file atomically.
//!
//! A sweep figure ([`sweep`]) is drawn from a [`Source::Sweep`]: the front end reads the
//! folder with `sweep::load`, the loader of `sweep report` (`sweep` sits above this layer, so
//! plot does not import it), into a [`SweepInput`]. [`check_sweep_path`] first refuses a
//! record given where a sweep folder is wanted.

pub mod data;
mod draw;
mod layers;
pub mod style;
pub mod sweep;

use std::path::{Path, PathBuf};
use std::str::FromStr;

use plotters::prelude::{BitMapBackend, IntoDrawingArea, SVGBackend};

pub use data::{figure, Figure};
pub use style::Theme;
pub use sweep::{SweepInput, SweepPoint, SweepSelect};

use crate::record::{self, Record, RecordError};

/// What a figure shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Residual and plain eigenvalue histograms (dense) or SLQ densities (Lanczos).
    Spectrum,
    /// S against the pruning ratio, one line per model and method.
    Sensitivity,
    /// Predicted ΔL against measured ΔL, every pruning row.
    Prediction,
    /// Loss and accuracy per epoch, train and eval, both models.
    Training,
    /// Var(λ) and S against the swept value (a sweep folder).
    Sweep,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Spectrum,
        Kind::Sensitivity,
        Kind::Prediction,
        Kind::Training,
        Kind::Sweep,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Kind::Spectrum => "spectrum",
            Kind::Sensitivity => "sensitivity",
            Kind::Prediction => "prediction",
            Kind::Training => "training",
            Kind::Sweep => "sweep",
        }
    }

    /// `--log` has a meaning for this kind (positive values on the y axis).
    pub fn takes_log(self) -> bool {
        matches!(self, Kind::Spectrum | Kind::Training)
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn kind_list() -> String {
    Kind::ALL.map(Kind::name).join(", ")
}

impl FromStr for Kind {
    type Err = PlotError;
    fn from_str(s: &str) -> Result<Kind, PlotError> {
        Kind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| PlotError::UnknownKind(s.to_string()))
    }
}

/// The file format, from the output's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Svg,
    Png,
}

impl Format {
    /// `.svg` or `.png` (any case); anything else is an error naming the path.
    pub fn of(path: &Path) -> Result<Format, PlotError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("svg") => Ok(Format::Svg),
            Some("png") => Ok(Format::Png),
            _ => Err(PlotError::Extension(path.to_path_buf())),
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Svg => "svg",
            Format::Png => "png",
        }
    }
}

/// How to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub kind: Kind,
    /// Log scale on the y axis: counts or density (spectrum), loss (training).
    pub log: bool,
    /// Pixels (SVG: user units).
    pub width: u32,
    pub height: u32,
    pub theme: Theme,
    /// The sweep figure's axis and S (`--axis`, `--ratio`, `--method`, `--granularity`);
    /// empty for every other kind.
    pub sweep: SweepSelect,
}

impl Options {
    pub const DEFAULT_WIDTH: u32 = 800;
    pub const DEFAULT_HEIGHT: u32 = 500;
    /// Smallest and largest side accepted.
    pub const MIN_SIDE: u32 = 200;
    pub const MAX_SIDE: u32 = 8000;

    pub fn new(kind: Kind) -> Options {
        Options {
            kind,
            log: false,
            width: Self::DEFAULT_WIDTH,
            height: Self::DEFAULT_HEIGHT,
            theme: Theme::Light,
            sweep: SweepSelect::default(),
        }
    }

    /// The size, `--log` and the sweep flags make sense for the kind.
    pub fn check(&self) -> Result<(), PlotError> {
        for (name, v) in [("width", self.width), ("height", self.height)] {
            if !(Self::MIN_SIDE..=Self::MAX_SIDE).contains(&v) {
                return Err(PlotError::Size {
                    name,
                    value: v,
                    min: Self::MIN_SIDE,
                    max: Self::MAX_SIDE,
                });
            }
        }
        if self.log && !self.kind.takes_log() {
            return Err(PlotError::Log(self.kind));
        }
        if self.kind != Kind::Sweep {
            if let Some(flag) = self.sweep.flags().first() {
                return Err(PlotError::SweepOnly {
                    flag,
                    kind: self.kind,
                });
            }
        }
        if let Some(r) = self.sweep.ratio {
            if !(r > 0.0 && r < 1.0) {
                return Err(PlotError::Ratio(r));
            }
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error("unknown figure kind `{0}`: choose one of {list}", list = kind_list())]
    UnknownKind(String),
    #[error("{}: figures are written as .svg or .png; give --out a name ending in one of them", .0.display())]
    Extension(PathBuf),
    #[error("--{name} {value}: choose between {min} and {max} pixels")]
    Size {
        name: &'static str,
        value: u32,
        min: u32,
        max: u32,
    },
    #[error("--log applies to the spectrum and training figures, not to `{0}` (its values can be negative)")]
    Log(Kind),
    #[error(
        "{flag} applies to --kind sweep only (it chooses the S drawn against the swept \
         value), not to `{kind}`; leave it out"
    )]
    SweepOnly { flag: &'static str, kind: Kind },
    #[error("--ratio {0}: a pruning ratio is between 0 and 1 (e.g. 0.3)")]
    Ratio(f64),
    #[error(
        "{}: not a sweep ({why}); --kind sweep plots the folder `resprune-tui sweep` wrote \
         (the one holding sweep.toml), or that sweep.toml",
        path.display()
    )]
    NotASweep { path: PathBuf, why: String },
    #[error(
        "{}: a record, not a sweep; --kind sweep plots a sweep folder (the one holding \
         sweep.toml). Plot this record with --kind spectrum, sensitivity, prediction or training",
        .0.display()
    )]
    RecordNotSweep(PathBuf),
    #[error("{0}: a sweep; --kind {1} plots one record: give it one of the sweep's records (NAME.toml in its folder)")]
    SweepNotRecord(String, Kind),
    #[error("sweep {0} has no points")]
    EmptySweep(String),
    #[error(
        "sweep {sweep}: {count} of {total} points are not done: {points}. Finish the sweep \
         (`resprune-tui sweep CONFIG --out DIR` again resumes it) and plot again"
    )]
    SweepUnfinished {
        sweep: String,
        count: usize,
        total: usize,
        points: String,
    },
    #[error("sweep {sweep}: point {point}: {what}, so there is no sweep figure{why}")]
    SweepPoint {
        sweep: String,
        point: String,
        what: String,
        /// Why the record may lack it, with a leading `; `.
        why: String,
    },
    #[error("{flag} {value}: {what}; choose one of {available}")]
    Choice {
        flag: &'static str,
        value: String,
        what: String,
        available: String,
    },
    #[error("{}: is a folder; --kind {kind} plots one record file (a .toml the tool wrote)", .path.display())]
    Folder { path: PathBuf, kind: Kind },
    #[error("{record}: {what}, so it has no {kind} figure{why}")]
    Missing {
        record: String,
        kind: Kind,
        what: String,
        /// Why the record may lack it (an interrupted or failed run), with a leading `; `.
        why: String,
    },
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("cannot write the figure {}: {source}", .path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("drawing the figure failed: {0}")]
    Draw(String),
}

/// What a figure is drawn from: one record, or the points of a sweep.
#[derive(Debug)]
pub enum Source {
    Record {
        /// Names the record in the title: its file stem, or its config name.
        label: String,
        record: Box<Record>,
    },
    /// A sweep folder as the front end read it (`sweep::load`).
    Sweep(Box<SweepInput>),
}

/// `path` given to `--kind sweep` is not a record (a record is refused with a clear error
/// before the sweep's loader says it is not a manifest). Anything else passes: the loader
/// says what it lacks.
pub fn check_sweep_path(path: &Path) -> Result<(), PlotError> {
    if path.is_file() && record::load(path).is_ok() {
        return Err(PlotError::RecordNotSweep(path.to_path_buf()));
    }
    Ok(())
}

/// Reads the record a record kind draws. A sweep folder is not read here (see the module
/// docs): for `sweep`, a record is refused, and anything else is not a sweep to this layer.
pub fn open(path: &Path, kind: Kind) -> Result<Source, PlotError> {
    if kind == Kind::Sweep {
        check_sweep_path(path)?;
        return Err(PlotError::NotASweep {
            path: path.to_path_buf(),
            why: "plot::open reads records; a front end reads a sweep with sweep::load and \
                  draws it with plot::plot_source"
                .into(),
        });
    }
    if path.is_dir() {
        return Err(PlotError::Folder {
            path: path.to_path_buf(),
            kind,
        });
    }
    let record = record::load(path)?;
    Ok(Source::Record {
        label: label_of(path, &record),
        record: Box::new(record),
    })
}

/// The name a record goes by in titles: its file stem, else its config name.
pub fn label_of(path: &Path, record: &Record) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .map(str::to_string)
        .unwrap_or_else(|| record.config.name.clone())
}

/// Draws `fig` as SVG or PNG bytes of `opts.width` × `opts.height`.
pub fn render(fig: &Figure, opts: &Options, format: Format) -> Result<Vec<u8>, PlotError> {
    style::register_fonts()?;
    let size = (opts.width, opts.height);
    match format {
        Format::Svg => {
            let mut svg = String::new();
            {
                let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
                draw::draw(&root, fig, opts)?;
                root.present().map_err(draw::err)?;
            }
            Ok(svg.into_bytes())
        }
        Format::Png => {
            let (w, h) = (opts.width as usize, opts.height as usize);
            let mut rgb = vec![0u8; w * h * 3];
            {
                let root = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
                draw::draw(&root, fig, opts)?;
                root.present().map_err(draw::err)?;
            }
            encode_png(&rgb, opts.width, opts.height)
        }
    }
}

fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, PlotError> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, width, height);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut w = enc
        .write_header()
        .map_err(|e| PlotError::Draw(e.to_string()))?;
    w.write_image_data(rgb)
        .map_err(|e| PlotError::Draw(e.to_string()))?;
    w.finish().map_err(|e| PlotError::Draw(e.to_string()))?;
    Ok(out)
}

/// The figure of `opts.kind` from `source`.
pub fn figure_of(source: &Source, opts: &Options) -> Result<Figure, PlotError> {
    match (source, opts.kind) {
        (Source::Record { label, record }, _) => figure(record, label, opts),
        (Source::Sweep(input), Kind::Sweep) => sweep::figure(input, &opts.sweep),
        (Source::Sweep(input), kind) => Err(PlotError::SweepNotRecord(input.name.clone(), kind)),
    }
}

/// The output's format, once `opts` are checked: what [`plot_file`] and [`plot_source`]
/// check before anything is read (a front end loading a sweep calls it first too).
pub fn prepare(out: &Path, opts: &Options) -> Result<Format, PlotError> {
    let format = Format::of(out)?;
    opts.check()?;
    Ok(format)
}

/// `resprune-tui plot RECORD --kind K --out FILE`: reads the record, draws, writes `out`
/// atomically (a temporary file beside it, then a rename: never half a figure). The
/// extension and options are checked before anything is read.
pub fn plot_file(input: &Path, out: &Path, opts: &Options) -> Result<PathBuf, PlotError> {
    prepare(out, opts)?;
    let source = open(input, opts.kind)?;
    plot_source(&source, out, opts)
}

/// Draws `source` as `opts` say and writes `out` atomically.
pub fn plot_source(source: &Source, out: &Path, opts: &Options) -> Result<PathBuf, PlotError> {
    let format = prepare(out, opts)?;
    let fig = figure_of(source, opts)?;
    let bytes = render(&fig, opts, format)?;
    write(out, &bytes)?;
    Ok(out.to_path_buf())
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), PlotError> {
    record::write_atomic(path, bytes).map_err(|source| PlotError::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The notebook's `p`: the figure of `opts.kind` as `<record stem>-<kind>.svg` and `.png`
/// beside the record at `path`. Returns the two paths written.
pub fn write_beside(
    path: &Path,
    record: &Record,
    opts: &Options,
) -> Result<Vec<PathBuf>, PlotError> {
    opts.check()?;
    let kind = opts.kind;
    let fig = figure(record, &label_of(path, record), opts)?;
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("record");
    let folder = record::folder_of(path);
    let mut written = Vec::new();
    for format in [Format::Svg, Format::Png] {
        let out = folder.join(format!("{stem}-{}.{}", kind.name(), format.extension()));
        write(&out, &render(&fig, opts, format)?)?;
        written.push(out);
    }
    Ok(written)
}
