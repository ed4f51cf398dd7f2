//! Colours, markers, line styles and the bundled font. Residual and plain keep one colour and
//! one marker in every figure and both themes: residual blue circles, plain orange triangles.

use std::str::FromStr;
use std::sync::OnceLock;

use plotters::style::{FontStyle, RGBColor};

use super::PlotError;

/// DejaVu Sans 2.37 (Bitstream Vera licence, `assets/fonts/LICENSE-DejaVu`): every label is
/// measured and drawn with it, so no system font is needed.
static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// The family every text of a figure asks for. An SVG names it as is (a viewer with DejaVu
/// Sans uses it, one without uses its sans-serif); plotters' own default `sans-serif` is
/// registered too, for any text that keeps the default.
pub const FAMILY: &str = "DejaVu Sans, sans-serif";

/// Registers the bundled font with plotters (once per process).
pub fn register_fonts() -> Result<(), PlotError> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        [FAMILY, "sans-serif"]
            .into_iter()
            .all(|name| plotters::style::register_font(name, FontStyle::Normal, FONT).is_ok())
    });
    if ok {
        Ok(())
    } else {
        Err(PlotError::Draw("the bundled font could not be read".into()))
    }
}

/// The two models of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Model {
    Residual,
    Plain,
}

impl Model {
    pub const BOTH: [Model; 2] = [Model::Residual, Model::Plain];

    pub fn name(self) -> &'static str {
        match self {
            Model::Residual => "residual",
            Model::Plain => "plain",
        }
    }

    /// The same in every figure and theme.
    pub fn colour(self) -> RGBColor {
        match self {
            Model::Residual => RESIDUAL,
            Model::Plain => PLAIN,
        }
    }

    pub fn marker(self) -> Marker {
        match self {
            Model::Residual => Marker::Circle,
            Model::Plain => Marker::Triangle,
        }
    }
}

/// Residual: a blue readable on white and on the dark background.
pub const RESIDUAL: RGBColor = RGBColor(0x2f, 0x7f, 0xd8);
/// Plain: an orange-vermillion, told apart from the blue with any colour vision.
pub const PLAIN: RGBColor = RGBColor(0xe0, 0x62, 0x1f);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    Circle,
    Triangle,
}

/// The line of the `i`-th pruning method: solid, dashed, dotted, long dashes, ...
/// `None` is solid; `Some((dash, gap))` in pixels.
pub fn dash(i: usize) -> Option<(u32, u32)> {
    const DASHES: [Option<(u32, u32)>; 4] = [None, Some((8, 5)), Some((2, 4)), Some((14, 4))];
    DASHES[i % DASHES.len()]
}

/// Colours of the figure around the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Theme {
    /// White background (papers).
    #[default]
    Light,
    /// Dark background (slides).
    Dark,
}

impl Theme {
    pub fn name(self) -> &'static str {
        match self {
            Theme::Light => "light",
            Theme::Dark => "dark",
        }
    }

    pub fn background(self) -> RGBColor {
        match self {
            Theme::Light => RGBColor(0xff, 0xff, 0xff),
            Theme::Dark => RGBColor(0x1e, 0x1e, 0x1e),
        }
    }

    /// Text, axes, legend border.
    pub fn foreground(self) -> RGBColor {
        match self {
            Theme::Light => RGBColor(0x22, 0x22, 0x22),
            Theme::Dark => RGBColor(0xe4, 0xe4, 0xe4),
        }
    }

    /// Grid lines.
    pub fn grid(self) -> RGBColor {
        match self {
            Theme::Light => RGBColor(0xe2, 0xe2, 0xe2),
            Theme::Dark => RGBColor(0x3a, 0x3a, 0x3a),
        }
    }

    /// Reference lines (the diagonal of the prediction figure).
    pub fn reference(self) -> RGBColor {
        match self {
            Theme::Light => RGBColor(0x80, 0x80, 0x80),
            Theme::Dark => RGBColor(0xa0, 0xa0, 0xa0),
        }
    }
}

impl FromStr for Theme {
    type Err = String;
    fn from_str(s: &str) -> Result<Theme, String> {
        match s {
            "light" => Ok(Theme::Light),
            "dark" => Ok(Theme::Dark),
            other => Err(format!(
                "figure theme `{other}`: choose light or dark (notebook themes do not apply to figures)"
            )),
        }
    }
}

/// `#rrggbb`, as an SVG writes a colour.
pub fn hex(c: RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}
