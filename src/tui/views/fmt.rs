//! Number formatting for narrow columns. Formatting only: every value comes from a record.

/// At most 7 characters: fixed with as many decimals as fit, scientific when tiny or huge.
pub fn num(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    let a = x.abs();
    if x == 0.0 {
        return "0".into();
    }
    if (1e-3..1e4).contains(&a) {
        let int_digits = (a.log10().floor() as i32 + 1).max(1) as usize;
        let sign = usize::from(x < 0.0);
        let decimals = 7usize.saturating_sub(int_digits + sign + 1).min(4);
        format!("{x:.decimals$}")
    } else {
        format!("{x:.1e}")
    }
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
    fn numbers_fit_seven_columns() {
        assert_eq!(num(0.6230336546344531), "0.6230");
        assert_eq!(num(-0.004381916321145905), "-0.0044");
        assert_eq!(num(-0.0009589522041690406), "-9.6e-4");
        assert_eq!(num(2.635974921556083), "2.6360");
        assert_eq!(num(6479530781963.239), "6.5e12");
        assert_eq!(num(259.0), "259.000");
        assert_eq!(num(0.0), "0");
        for x in [
            1e-9, -1e-9, 1234.5678, -9999.0, 0.01, -0.0123456, 1e300, -1e-300,
        ] {
            assert!(num(x).len() <= 9, "{x} -> {}", num(x));
        }
        assert_eq!(pct(0.08636363636363636), "8.6%");
        assert_eq!(date("2026-11-28T15:56:17Z"), "2026-11-28 15:56");
    }
}
