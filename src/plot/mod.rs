//! Figures for papers: spectra, SLQ densities, sensitivity curves, ΔL predictions and
//! training curves from a record, as SVG or PNG. Reads records only (never re-runs).
//!
//! Two steps: [`figure`] turns a record into a [`data::Figure`] (the numbers drawn, nothing
//! drawn yet), and [`render`] draws a figure with plotters into SVG or PNG bytes, from the same
//! drawing code for both. Text is measured and drawn with the DejaVu Sans bundled in
//! `assets/fonts` (no system fonts, fontconfig or freetype). [`plot_file`] does both and writes
//! the file atomically.
//!
//! A sweep figure (a trend across the points of a sweep folder) is one more [`Source`] and one
//! more [`data::Figure`]; until sweeps exist, `--kind sweep` says the input is not a sweep.

pub mod data;
mod draw;
mod layers;
pub mod style;

use std::path::{Path, PathBuf};
use std::str::FromStr;

use plotters::prelude::{BitMapBackend, IntoDrawingArea, SVGBackend};

pub use data::{figure, Figure};
pub use style::Theme;

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
        }
    }

    /// The size and `--log` make sense for the kind.
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
        "{}: not a sweep (a folder of sweep points with a manifest); this version of \
         resprune-tui has no sweeps yet. Plot one record with --kind spectrum, sensitivity, \
         prediction or training",
        .0.display()
    )]
    NotASweep(PathBuf),
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

/// What a figure is drawn from: one record (a sweep folder once sweeps exist).
#[derive(Debug)]
pub enum Source {
    Record {
        /// Names the record in the title: its file stem, or its config name.
        label: String,
        record: Box<Record>,
    },
}

/// Reads the input of `kind`: a record file, or (for `sweep`) a sweep folder.
pub fn open(path: &Path, kind: Kind) -> Result<Source, PlotError> {
    if kind == Kind::Sweep {
        // src/sweep does not exist yet: nothing is a sweep
        return Err(PlotError::NotASweep(path.to_path_buf()));
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
    match source {
        Source::Record { label, record } => figure(record, label, opts),
    }
}

/// `resprune-tui plot INPUT --kind K --out FILE`: reads the input, draws, writes `out`
/// atomically (a temporary file beside it, then a rename: never half a figure). The
/// extension and options are checked before anything is read.
pub fn plot_file(input: &Path, out: &Path, opts: &Options) -> Result<PathBuf, PlotError> {
    let format = Format::of(out)?;
    opts.check()?;
    let source = open(input, opts.kind)?;
    let fig = figure_of(&source, opts)?;
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
