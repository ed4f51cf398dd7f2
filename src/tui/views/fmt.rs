//! Formatting for narrow columns. Formatting only: every value comes from a record.

use crate::frontend::{self, format_number, NumberStyle};

/// A number in at most 7 characters ([`NumberStyle::NARROW`]).
pub fn num(x: f64) -> String {
    format_number(x, NumberStyle::NARROW)
}

/// [`num`], or `-` for none.
pub fn opt(x: Option<f64>) -> String {
    frontend::opt(x, NumberStyle::NARROW)
}

/// A fraction in `[0, 1]` as a percentage with one decimal.
pub fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// `2026-11-28T15:56:17Z` as `2026-11-28 15:56`.
pub fn date(rfc3339: &str) -> String {
    let s: String = rfc3339.chars().take(16).collect();
    s.replace('T', " ")
}

pub fn duration(secs: f64) -> String {
    if secs < 1.0 {
        format!("{:.0} ms", secs * 1e3)
    } else if secs < 120.0 {
        format!("{secs:.1} s")
    } else {
        format!("{:.0} min {:.0} s", (secs / 60.0).floor(), secs % 60.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_and_dates() {
        assert_eq!(num(0.6230336546344531), "0.6230");
        assert_eq!(opt(None), "-");
        assert_eq!(pct(0.08636363636363636), "8.6%");
        assert_eq!(date("2026-11-28T15:56:17Z"), "2026-11-28 15:56");
    }
}
