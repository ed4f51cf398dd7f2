//! Colours by role, behind methods (`border(focused)`, `residual()`, ...). The four built-in
//! themes are the files in `themes/`, compiled in; user themes are read from
//! `<config dir>/themes/*.toml` and may leave roles out (they fall back to `dark`).

use std::path::{Path, PathBuf};
use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

use crate::model::Variant;

/// The built-in themes, in the order `t` cycles through them.
pub const BUILTIN: [(&str, &str); 4] = [
    ("dark", include_str!("../../themes/dark.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
    ("monochrome", include_str!("../../themes/monochrome.toml")),
];

pub const DEFAULT: &str = "dark";
pub const MONOCHROME: &str = "monochrome";

#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    text: Color,
    dim: Color,
    border: Color,
    focus: Color,
    title: Color,
    residual: Color,
    plain: Color,
    good: Color,
    bad: Color,
    warn: Color,
    selection: Color,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    name: Option<String>,
    text: Option<String>,
    dim: Option<String>,
    border: Option<String>,
    focus: Option<String>,
    title: Option<String>,
    residual: Option<String>,
    plain: Option<String>,
    good: Option<String>,
    bad: Option<String>,
    warn: Option<String>,
    selection: Option<String>,
}

fn fg(c: Color) -> Style {
    Style::default().fg(c)
}

impl Theme {
    /// Parses a theme file; roles it leaves out come from `base`.
    pub fn parse(src: &str, default_name: &str, base: &Theme) -> Result<Theme, String> {
        let f: ThemeFile = toml::from_str(src).map_err(|e| e.message().trim().to_string())?;
        let pick = |role: &str, v: Option<String>, dflt: Color| -> Result<Color, String> {
            match v {
                None => Ok(dflt),
                Some(s) => Color::from_str(&s).map_err(|_| {
                    format!("`{role}`: `{s}` is not a colour (name, #rrggbb or 0-255)")
                }),
            }
        };
        Ok(Theme {
            name: f.name.unwrap_or_else(|| default_name.to_string()),
            text: pick("text", f.text, base.text)?,
            dim: pick("dim", f.dim, base.dim)?,
            border: pick("border", f.border, base.border)?,
            focus: pick("focus", f.focus, base.focus)?,
            title: pick("title", f.title, base.title)?,
            residual: pick("residual", f.residual, base.residual)?,
            plain: pick("plain", f.plain, base.plain)?,
            good: pick("good", f.good, base.good)?,
            bad: pick("bad", f.bad, base.bad)?,
            warn: pick("warn", f.warn, base.warn)?,
            selection: pick("selection", f.selection, base.selection)?,
        })
    }

    /// A theme with no colour: the last resort, and the base of the built-in `dark`.
    pub fn plain_monochrome(name: &str) -> Theme {
        let r = Color::Reset;
        Theme {
            name: name.into(),
            text: r,
            dim: r,
            border: r,
            focus: r,
            title: r,
            residual: r,
            plain: r,
            good: r,
            bad: r,
            warn: r,
            selection: r,
        }
    }

    /// The built-in theme called `name`.
    pub fn builtin(name: &str) -> Option<Theme> {
        let base = Theme::plain_monochrome(name);
        BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(n, src)| Theme::parse(src, n, &base).ok())
    }

    /// True when the theme has no colours, so styles fall back to bold/reverse/underline.
    pub fn is_mono(&self) -> bool {
        self.residual == self.plain && self.focus == self.border
    }

    pub fn text(&self) -> Style {
        fg(self.text)
    }

    pub fn dim(&self) -> Style {
        let s = fg(self.dim);
        if self.is_mono() {
            s.add_modifier(Modifier::DIM)
        } else {
            s
        }
    }

    pub fn border(&self, focused: bool) -> Style {
        if focused {
            fg(self.focus).add_modifier(Modifier::BOLD)
        } else {
            fg(self.border)
        }
    }

    pub fn title(&self) -> Style {
        fg(self.title).add_modifier(Modifier::BOLD)
    }

    pub fn residual(&self) -> Style {
        fg(self.residual)
    }

    pub fn plain(&self) -> Style {
        let s = fg(self.plain);
        if self.is_mono() {
            s.add_modifier(Modifier::ITALIC)
        } else {
            s
        }
    }

    pub fn variant(&self, v: Variant) -> Style {
        match v {
            Variant::Residual => self.residual(),
            Variant::Plain => self.plain(),
        }
    }

    pub fn good(&self) -> Style {
        fg(self.good)
    }

    pub fn bad(&self) -> Style {
        fg(self.bad).add_modifier(Modifier::BOLD)
    }

    pub fn warn(&self) -> Style {
        fg(self.warn)
    }

    /// The highlighted row of a table or list.
    pub fn selected(&self) -> Style {
        if self.selection == Color::Reset {
            Style::default().add_modifier(Modifier::REVERSED)
        } else {
            Style::default()
                .bg(self.selection)
                .add_modifier(Modifier::BOLD)
        }
    }

    /// A value that stands out among its peers (the larger S of a pair).
    pub fn emphasis(&self) -> Style {
        self.warn().add_modifier(Modifier::BOLD)
    }
}

/// Where user themes live: `<config dir>/themes`.
pub fn user_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "resprune-tui").map(|d| d.config_dir().join("themes"))
}

/// The built-in themes, then the user's (a user theme with a built-in name replaces it).
/// Each problem (unreadable or bad file) is returned as a message; the bad file is skipped.
pub fn load_all(user: Option<&Path>) -> (Vec<Theme>, Vec<String>) {
    let mut warnings = Vec::new();
    let mono = Theme::plain_monochrome(MONOCHROME);
    let mut themes: Vec<Theme> = BUILTIN
        .iter()
        .map(|(n, src)| Theme::parse(src, n, &mono).unwrap_or_else(|_| mono.clone()))
        .collect();
    let base = themes[0].clone();
    let Some(dir) = user else {
        return (themes, warnings);
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    for path in files {
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("theme")
            .to_string();
        let parsed = std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|src| Theme::parse(&src, &stem, &base));
        match parsed {
            Ok(t) => match themes.iter_mut().find(|x| x.name == t.name) {
                Some(slot) => *slot = t,
                None => themes.push(t),
            },
            Err(e) => warnings.push(format!("theme {}: {e}; using the default", path.display())),
        }
    }
    (themes, warnings)
}

/// Which theme to start with: `--theme NAME` wins, then `NO_COLOR` (monochrome), then `dark`.
/// An unknown name is reported and the default used.
pub fn choose(
    themes: &[Theme],
    requested: Option<&str>,
    no_color: bool,
) -> (usize, Option<String>) {
    let find = |n: &str| themes.iter().position(|t| t.name == n);
    let default = find(DEFAULT).unwrap_or(0);
    match requested {
        Some(name) => match find(name) {
            Some(i) => (i, None),
            None => {
                let names: Vec<&str> = themes.iter().map(|t| t.name.as_str()).collect();
                (
                    if no_color {
                        find(MONOCHROME).unwrap_or(default)
                    } else {
                        default
                    },
                    Some(format!(
                        "no theme `{name}` (have: {}); using the default",
                        names.join(", ")
                    )),
                )
            }
        },
        None if no_color => (find(MONOCHROME).unwrap_or(default), None),
        None => (default, None),
    }
}

/// `NO_COLOR` present and not empty (<https://no-color.org>).
pub fn no_color_env() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse_and_differ() {
        let (themes, warnings) = load_all(None);
        assert!(warnings.is_empty(), "{warnings:?}");
        let names: Vec<&str> = themes.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["dark", "light", "high-contrast", "monochrome"]);
        assert!(themes[3].is_mono());
        assert!(!themes[0].is_mono());
        assert_eq!(themes[0].residual().fg, Some(Color::LightMagenta));
        assert_ne!(themes[0].residual(), themes[0].plain());
        // monochrome still tells the selection apart
        assert!(themes[3]
            .selected()
            .add_modifier
            .contains(Modifier::REVERSED));
    }

    #[test]
    fn user_themes_override_and_bad_ones_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("solar.toml"), "residual = \"#ff8800\"\n").unwrap();
        std::fs::write(
            dir.path().join("broken.toml"),
            "residual = \"not-a-colour\"\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("typo.toml"), "residul = \"red\"\n").unwrap();
        let (themes, warnings) = load_all(Some(dir.path()));
        let solar = themes.iter().find(|t| t.name == "solar").unwrap();
        assert_eq!(solar.residual().fg, Some(Color::Rgb(0xff, 0x88, 0)));
        // the rest falls back to dark
        assert_eq!(solar.plain().fg, Some(Color::LightBlue));
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings
            .iter()
            .any(|w| w.contains("broken.toml") && w.contains("not a colour")));
        assert!(warnings
            .iter()
            .any(|w| w.contains("typo.toml") && w.contains("residul")));
        assert!(!themes.iter().any(|t| t.name == "broken"));
    }

    #[test]
    fn choice_follows_flag_then_no_color() {
        let (themes, _) = load_all(None);
        assert_eq!(choose(&themes, None, false), (0, None));
        assert_eq!(choose(&themes, None, true).0, 3);
        assert_eq!(choose(&themes, Some("light"), true), (1, None));
        let (i, warn) = choose(&themes, Some("neon"), false);
        assert_eq!(i, 0);
        assert!(warn.unwrap().contains("no theme `neon`"));
    }
}
