//! Replicate statistics and the paired tests behind each verdict.

use serde::{Deserialize, Serialize};
use statrs::distribution::{Binomial, ContinuousCDF, DiscreteCDF, StudentsT};

/// Mean and sample standard deviation (divisor `n − 1`) of `n` values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeanSd {
    pub mean: f64,
    pub sd: f64,
    pub n: usize,
}

impl MeanSd {
    pub fn of(values: &[f64]) -> MeanSd {
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n.max(1) as f64;
        let sd = if n > 1 {
            (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
        } else {
            0.0
        };
        MeanSd { mean, sd, n }
    }
}

impl std::fmt::Display for MeanSd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.4} ± {:.4}", self.mean, self.sd)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Supported,
    Contradicted,
    Inconclusive,
}

impl Verdict {
    /// `supported`, `contradicted`, `inconclusive`, as the record writes it.
    pub fn word(self) -> &'static str {
        crate::names::serde_name(&self)
    }
}

/// Which sign of `residual − plain` the claim predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The claim says residual < plain.
    Negative,
    /// The claim says residual > plain.
    Positive,
}

/// A paired comparison across seeds of one statistic, and what it says about a claim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    /// The claim in words, e.g. `Var(λ) residual < plain`.
    pub claim: String,
    pub direction: Direction,
    /// `residual − plain`, one per seed.
    pub differences: Vec<f64>,
    pub mean: f64,
    pub sd: f64,
    pub n: usize,
    /// Seeds with a positive / negative difference (zeros count for neither).
    pub positive: usize,
    pub negative: usize,
    /// Two-sided exact sign test.
    pub sign_p: f64,
    /// Paired t statistic `mean / (sd / sqrt(n))`.
    pub t: f64,
    /// Two-sided p-value of `t` with `n − 1` degrees of freedom.
    pub t_p: f64,
    pub level: f64,
    pub verdict: Verdict,
}

/// Two-sided exact binomial sign test of `pos` successes out of `pos + neg` at p = 1/2.
pub fn sign_test(pos: usize, neg: usize) -> f64 {
    let n = (pos + neg) as u64;
    if n == 0 {
        return 1.0;
    }
    let k = pos.min(neg) as u64;
    let b = Binomial::new(0.5, n).expect("valid binomial");
    (2.0 * b.cdf(k)).min(1.0)
}

/// Paired t statistic and its two-sided p-value (`n − 1` degrees of freedom).
pub fn paired_t(diffs: &[f64]) -> (f64, f64) {
    let m = MeanSd::of(diffs);
    if m.n < 2 {
        return (f64::NAN, 1.0);
    }
    if m.sd == 0.0 {
        // identical differences: certain when non-zero, nothing to see when zero
        return if m.mean == 0.0 {
            (0.0, 1.0)
        } else {
            (m.mean.signum() * f64::INFINITY, 0.0)
        };
    }
    let t = m.mean / (m.sd / (m.n as f64).sqrt());
    let dist = StudentsT::new(0.0, 1.0, (m.n - 1) as f64).expect("valid t distribution");
    (t, 2.0 * (1.0 - dist.cdf(t.abs())))
}

/// The verdict on `claim` from paired differences `residual − plain`.
///
/// Rule (stated in docs/method.md): with at least two seeds, the paired t-test decides at
/// `level` (two-sided). Significant in the claimed direction: `supported`; significant
/// against it: `contradicted`; otherwise `inconclusive`. A significant t whose direction the
/// majority of signs does not share is also `inconclusive` (one outlier seed can carry a mean).
pub fn judge(claim: &str, direction: Direction, diffs: Vec<f64>, level: f64) -> Claim {
    let m = MeanSd::of(&diffs);
    let positive = diffs.iter().filter(|d| **d > 0.0).count();
    let negative = diffs.iter().filter(|d| **d < 0.0).count();
    let sign_p = sign_test(positive, negative);
    let (t, t_p) = paired_t(&diffs);
    let observed = if m.mean > 0.0 {
        Some(Direction::Positive)
    } else if m.mean < 0.0 {
        Some(Direction::Negative)
    } else {
        None
    };
    let majority_agrees = match observed {
        Some(Direction::Positive) => positive > negative,
        Some(Direction::Negative) => negative > positive,
        None => false,
    };
    let verdict = match observed {
        Some(d) if m.n >= 2 && t_p < level && majority_agrees => {
            if d == direction {
                Verdict::Supported
            } else {
                Verdict::Contradicted
            }
        }
        _ => Verdict::Inconclusive,
    };
    Claim {
        claim: claim.to_string(),
        direction,
        mean: m.mean,
        sd: m.sd,
        n: m.n,
        differences: diffs,
        positive,
        negative,
        sign_p,
        t,
        t_p,
        level,
        verdict,
    }
}

/// `len` equal-width bins over `[lo, hi]`: the one binner behind the stored histograms, the
/// SLQ density's histogram and the notebook's bars.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bins {
    lo: f64,
    hi: f64,
    len: usize,
}

impl Bins {
    /// At least one bin.
    pub fn new(lo: f64, hi: f64, len: usize) -> Bins {
        Bins {
            lo,
            hi,
            len: len.max(1),
        }
    }

    fn width(&self) -> f64 {
        (self.hi - self.lo) / self.len as f64
    }

    /// The bin holding `x`. Values below `lo` fall in the first bin, `hi` and above in the
    /// last; when the range is empty (`lo == hi`) or not a number, every value falls in the
    /// middle bin.
    pub fn index(&self, x: f64) -> usize {
        let width = self.width();
        if width > 0.0 {
            (((x - self.lo) / width).floor() as isize).clamp(0, self.len as isize - 1) as usize
        } else {
            self.len / 2
        }
    }

    /// The centre of bin `i`.
    pub fn centre(&self, i: usize) -> f64 {
        self.lo + (i as f64 + 0.5) * self.width()
    }

    /// The sum of the weights of the points `(x, weight)` in each bin.
    pub fn weigh<W>(&self, points: impl IntoIterator<Item = (f64, W)>) -> Vec<W>
    where
        W: Copy + Default + std::ops::AddAssign,
    {
        let mut out = vec![W::default(); self.len];
        for (x, w) in points {
            out[self.index(x)] += w;
        }
        out
    }

    /// How many of `values` fall in each bin.
    pub fn tally(&self, values: &[f64]) -> Vec<u64> {
        self.weigh(values.iter().map(|&x| (x, 1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_keep_every_value_and_clamp_the_rest_to_the_ends() {
        let b = Bins::new(-1.0, 3.0, 4);
        assert_eq!(b.tally(&[-1.0, 0.0, 0.1, 2.0]), vec![1, 2, 0, 1]);
        assert_eq!(b.tally(&[-5.0, 3.0, 9.0, f64::NAN]), vec![2, 0, 0, 2]);
        assert_eq!(b.centre(0), -0.5);
        assert_eq!(
            b.weigh([(0.5, 0.25), (0.7, 0.5)]),
            vec![0.0, 0.75, 0.0, 0.0]
        );
        // an empty range: the middle bin
        assert_eq!(Bins::new(1.0, 1.0, 3).tally(&[1.0, 1.0]), vec![0, 2, 0]);
        assert_eq!(Bins::new(0.0, 1.0, 0).tally(&[0.5]), vec![1]);
    }
}
