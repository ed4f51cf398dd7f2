//! Numbers as a person reads them: the one formatter behind the CLI's tables, the notebook's
//! narrow columns and the diff's significant digits. Each caller passes a [`NumberStyle`].

/// Which whole numbers are written without a decimal point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whole {
    /// Like any other number: `0.0000`, `259.000`.
    Decimals,
    /// Zero as `0`; other whole numbers with their decimals.
    BareZero,
    /// Whole numbers below 10⁹ as integers: `0`, `12`, `123456`.
    Integers,
}

/// Which numbers [`format_number`] writes in fixed point rather than scientific notation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fixed {
    /// `lo ≤ |x| < hi`.
    Between(f64, f64),
    /// The decimal exponent `⌊log₁₀|x|⌋` lies in `lo..=hi`. As computed, the logarithm of a
    /// number one ulp below a power of ten is that power, so such a number counts as the
    /// power (where [`Fixed::Between`] counts it below): the two rules differ only there.
    Exponents(i32, i32),
    /// Every number.
    Always,
}

/// How [`format_number`] writes a number: fixed point inside a range of magnitudes, with as
/// many decimals as every limit allows; scientific notation outside it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NumberStyle {
    /// Where fixed point is used; scientific notation elsewhere.
    pub fixed: Fixed,
    /// Most decimals in fixed point.
    pub decimals: usize,
    /// Fixed point keeps to this many significant digits.
    pub significant: Option<usize>,
    /// Fixed point keeps within this many characters (sign and point included) when it can.
    pub fit: Option<usize>,
    /// Decimals of the mantissa in scientific notation (`1.5e-7` has 1).
    pub mantissa: usize,
    pub whole: Whole,
    /// Right-aligned in at least this many columns (0: as long as it is).
    pub width: usize,
}

impl NumberStyle {
    /// A table column of 10: four decimals for `1e-3 ≤ |x| < 1e5`, else `1.234e-5`
    /// (the CLI's summary).
    pub const COLUMN: NumberStyle = NumberStyle {
        fixed: Fixed::Between(1e-3, 1e5),
        decimals: 4,
        significant: None,
        fit: None,
        mantissa: 3,
        whole: Whole::Decimals,
        width: 10,
    };

    /// At most 7 characters: as many decimals as fit (four at most) for `1e-3 ≤ |x| < 1e4`,
    /// else `6.5e12`; zero as `0` (the notebook's columns).
    pub const NARROW: NumberStyle = NumberStyle {
        fixed: Fixed::Between(1e-3, 1e4),
        decimals: 4,
        significant: None,
        fit: Some(7),
        mantissa: 1,
        whole: Whole::BareZero,
        width: 0,
    };

    /// `digits` significant digits (at least 1), scientific below `1e-4` and from `1e10`,
    /// whole numbers as integers (the diff's values).
    pub const fn significant(digits: usize) -> NumberStyle {
        let digits = if digits == 0 { 1 } else { digits };
        NumberStyle {
            fixed: Fixed::Exponents(-4, 9),
            decimals: usize::MAX,
            significant: Some(digits),
            fit: None,
            mantissa: digits - 1,
            whole: Whole::Integers,
            width: 0,
        }
    }

    /// Always fixed point with `decimals` decimals.
    pub const fn fixed(decimals: usize) -> NumberStyle {
        NumberStyle {
            fixed: Fixed::Always,
            decimals,
            significant: None,
            fit: None,
            mantissa: 0,
            whole: Whole::Decimals,
            width: 0,
        }
    }

    /// The same, right-aligned in `width` columns.
    pub const fn width(self, width: usize) -> NumberStyle {
        NumberStyle { width, ..self }
    }

    /// Decimals in fixed point for a number of decimal exponent `exp`.
    fn decimals_at(&self, exp: i32, negative: bool) -> usize {
        let int_digits = (exp + 1).max(1) as usize;
        let mut d = self.decimals;
        if let Some(s) = self.significant {
            d = d.min((s as i64 - 1 - exp as i64).max(0) as usize);
        }
        if let Some(w) = self.fit {
            d = d.min(w.saturating_sub(int_digits + usize::from(negative) + 1));
        }
        d
    }
}

/// `x` written in `style`; `NaN`, `inf` and `-inf` as such.
pub fn format_number(x: f64, style: NumberStyle) -> String {
    let s = bare(x, style);
    format!("{s:>w$}", w = style.width)
}

/// A number in `style`, or `-` for none.
pub fn opt(x: Option<f64>, style: NumberStyle) -> String {
    x.map_or_else(|| "-".into(), |x| format_number(x, style))
}

fn bare(x: f64, style: NumberStyle) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x == 0.0 && style.whole != Whole::Decimals {
        return "0".into();
    }
    if style.whole == Whole::Integers && x.fract() == 0.0 && x.abs() < 1e9 {
        return format!("{x:.0}");
    }
    let a = x.abs();
    let exp = if x == 0.0 {
        0
    } else {
        a.log10().floor() as i32
    };
    let fixed = x == 0.0
        || match style.fixed {
            Fixed::Between(lo, hi) => (lo..hi).contains(&a),
            Fixed::Exponents(lo, hi) => (lo..=hi).contains(&exp),
            Fixed::Always => true,
        };
    if !fixed {
        return format!("{:.*e}", style.mantissa, x);
    }
    let decimals = style.decimals_at(exp, x < 0.0);
    format!("{x:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(x: f64) -> String {
        format_number(x, NumberStyle::COLUMN)
    }

    fn narrow(x: f64) -> String {
        format_number(x, NumberStyle::NARROW)
    }

    fn sig(x: f64, d: usize) -> String {
        format_number(x, NumberStyle::significant(d))
    }

    #[test]
    fn a_column_is_ten_wide() {
        assert_eq!(column(0.6230336546344531), "    0.6230");
        assert_eq!(column(0.0), "    0.0000");
        assert_eq!(column(-0.0), "   -0.0000");
        assert_eq!(column(12345.678), "12345.6780");
        assert_eq!(column(123456.0), "   1.235e5");
        assert_eq!(column(-0.00012), " -1.200e-4");
        assert_eq!(column(f64::NAN), "       NaN");
        assert_eq!(column(f64::NEG_INFINITY), "      -inf");
    }

    #[test]
    fn narrow_numbers_fit_seven_characters() {
        assert_eq!(narrow(0.6230336546344531), "0.6230");
        assert_eq!(narrow(-0.004381916321145905), "-0.0044");
        assert_eq!(narrow(-0.0009589522041690406), "-9.6e-4");
        assert_eq!(narrow(2.635974921556083), "2.6360");
        assert_eq!(narrow(6479530781963.239), "6.5e12");
        assert_eq!(narrow(259.0), "259.000");
        assert_eq!(narrow(-1234.5678), "-1234.6");
        assert_eq!(narrow(0.0), "0");
        assert_eq!(narrow(f64::INFINITY), "inf");
        for x in [
            1e-9, -1e-9, 1234.5678, -9999.0, 0.01, -0.0123456, 1e300, -1e-300,
        ] {
            assert!(narrow(x).len() <= 9, "{x} -> {}", narrow(x));
        }
    }

    #[test]
    fn significant_digits() {
        assert_eq!(sig(0.012345678, 3), "0.0123");
        assert_eq!(sig(123456.0, 3), "123456");
        assert_eq!(sig(1.5e-7, 2), "1.5e-7");
        assert_eq!(sig(12.0, 5), "12");
        assert_eq!(sig(-0.0, 3), "0");
        assert_eq!(sig(2.5e10, 3), "2.50e10");
        assert_eq!(sig(2.71, 0), "3");
        assert_eq!(sig(f64::NAN, 3), "NaN");
    }

    #[test]
    fn fixed_and_none() {
        assert_eq!(opt(Some(0.123456), NumberStyle::fixed(4)), "0.1235");
        assert_eq!(opt(Some(1e7), NumberStyle::fixed(4)), "10000000.0000");
        assert_eq!(opt(None, NumberStyle::fixed(4)), "-");
        assert_eq!(format_number(1.5, NumberStyle::fixed(2).width(6)), "  1.50");
    }
}
