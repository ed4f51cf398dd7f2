//! Every eigenvalue of a symmetric tridiagonal matrix `T` without its vectors: the root-free
//! implicit QL/QR algorithm of Pal, Walker and Kahan (the algorithm of LAPACK's `dsterf`),
//! the second half of [`super::DenseHessian::eigenvalues`] after faer's Householder
//! tridiagonalisation.
//!
//! Why not faer's own values-only path: faer 0.24's `qr_algorithm` rescans the whole
//! unreduced block with one `hypot` per off-diagonal entry at every QR sweep, O(n²) `hypot`
//! calls in all; on the article's Hessians (n = 682) faer's whole values-only solve takes
//! 20.4–20.7 ms, 13.0–13.2 ms of it the tridiagonalisation. Here a sweep costs a handful of
//! multiplications and three divisions per entry and no square root, and the deflation scan
//! stops at the first negligible entry: 3.1–3.4 ms on those `T`s (the whole solve 16.5–17.1
//! ms), 6.4 ms on a random tridiagonal of that size (`cargo bench --bench curvature --
//! 'tridiagonal/|article_682/.*/(eigenvalues|eigenvalues_faer|eigenvalues_of_t|tridiagonalisation)$'`).
//!
//! The algorithm. The off-diagonal entries are squared once (`e²` is all a root-free sweep
//! needs). A block is split off wherever `|eᵢ| ≤ ε √|dᵢ| √|dᵢ₊₁|`; each block is scaled into
//! a safe range, then iterated with Wilkinson's shift from its end with the smaller
//! diagonal entry (QL from the top, QR from the bottom, so a graded matrix is chased in the
//! direction that keeps its small entries accurate), deflating an eigenvalue whenever
//! `eᵢ² ≤ ε² |dᵢ dᵢ₊₁|` and a trailing 2×2 block directly. At most 30 sweeps per eigenvalue on
//! average, as in LAPACK; past that it reports no convergence rather than a wrong answer.
//!
//! Error. Implicit QR with these deflation criteria is backward stable: the computed
//! eigenvalues are exact for some `T + E` with `‖E‖₂ ≤ p(n) ε ‖T‖₂`, so each is within about
//! `n ε ‖T‖` of a true one (Weyl) — the same bound as faer's path, checked against exact
//! spectra and against faer in the tests below (tolerances stated there).

/// Machine precision as LAPACK's `dlamch('E')`: half an ulp of 1.
const EPS: f64 = f64::EPSILON / 2.0;

/// The total sweeps allowed, per eigenvalue.
const MAX_SWEEPS: usize = 30;

/// Why [`eigenvalues`] gave no answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TridiagonalError {
    /// An entry is NaN or infinite (every comparison with a NaN is false, so the iteration
    /// would otherwise take it for negligible and return finite, wrong eigenvalues).
    #[error("the tridiagonal matrix has a non-finite entry (NaN or infinity)")]
    NotFinite,
    /// The implicit QL/QR iteration did not converge within [`MAX_SWEEPS`] sweeps per
    /// eigenvalue.
    #[error(
        "the tridiagonal QR iteration did not converge ({unconverged} off-diagonal entries left)"
    )]
    NoConvergence {
        /// Off-diagonal entries not yet zero, in this block and the ones not reached (as
        /// LAPACK's `info`).
        unconverged: usize,
    },
}

/// Overwrites `d` (the diagonal, `n` entries) with the eigenvalues of the symmetric
/// tridiagonal matrix whose subdiagonal is `e` (`n − 1` entries, destroyed), ascending.
///
/// # Panics
/// If `d` has two or more entries and `e.len() + 1 != d.len()` (with fewer, `e` is not read).
pub fn eigenvalues(d: &mut [f64], e: &mut [f64]) -> Result<(), TridiagonalError> {
    let n = d.len();
    if n <= 1 {
        return match d.first() {
            Some(x) if !x.is_finite() => Err(TridiagonalError::NotFinite),
            _ => Ok(()),
        };
    }
    assert_eq!(
        e.len(),
        n - 1,
        "a tridiagonal of {n} has {} subdiagonal entries",
        n - 1
    );
    if !d.iter().chain(e.iter()).all(|x| x.is_finite()) {
        return Err(TridiagonalError::NotFinite);
    }
    let eps2 = EPS * EPS;
    let safe_min = f64::MIN_POSITIVE;
    let scale_max = (1.0 / safe_min).sqrt() / 3.0;
    let scale_min = safe_min.sqrt() / eps2;
    let max_sweeps = MAX_SWEEPS * n;
    let mut sweeps = 0;
    let mut first = 0;
    while first < n {
        if first > 0 {
            e[first - 1] = 0.0;
        }
        // the block first..=last ends at the first negligible off-diagonal entry
        let mut last = first;
        while last < n - 1 {
            if e[last].abs() <= d[last].abs().sqrt() * d[last + 1].abs().sqrt() * EPS {
                e[last] = 0.0;
                break;
            }
            last += 1;
        }
        let (top, bottom) = (first, last);
        first = last + 1;
        if top == bottom {
            continue;
        }
        let norm = (top..=bottom)
            .map(|i| d[i].abs())
            .chain((top..bottom).map(|i| e[i].abs()))
            .fold(0.0f64, f64::max);
        if norm == 0.0 {
            continue;
        }
        let scale = if norm > scale_max {
            scale_max / norm
        } else if norm < scale_min {
            scale_min / norm
        } else {
            1.0
        };
        if scale != 1.0 {
            d[top..=bottom].iter_mut().for_each(|x| *x *= scale);
            e[top..bottom].iter_mut().for_each(|x| *x *= scale);
        }
        e[top..bottom].iter_mut().for_each(|x| *x *= *x);
        let done = if d[bottom].abs() >= d[top].abs() {
            ql(
                &mut d[top..=bottom],
                &mut e[top..bottom],
                &mut sweeps,
                max_sweeps,
            )
        } else {
            qr(
                &mut d[top..=bottom],
                &mut e[top..bottom],
                &mut sweeps,
                max_sweeps,
            )
        };
        if scale != 1.0 {
            d[top..=bottom].iter_mut().for_each(|x| *x /= scale);
        }
        if !done {
            return Err(TridiagonalError::NoConvergence {
                unconverged: e.iter().filter(|x| **x != 0.0).count(),
            });
        }
    }
    d.sort_by(f64::total_cmp);
    Ok(())
}

/// Wilkinson's shift for the leading (QL) or trailing (QR) 2×2 block `[[p, √e2], [√e2, q]]`
/// of an unreduced block: the eigenvalue of it nearer `p`.
fn shift(p: f64, q: f64, e2: f64) -> f64 {
    let root = e2.sqrt();
    let sigma = (q - p) / (2.0 * root);
    let r = sigma.hypot(1.0);
    p - root / (sigma + r.copysign(sigma))
}

/// QL sweeps on one unreduced block (`e` squared), deflating from the top.
/// `false` when the sweep budget ran out.
fn ql(d: &mut [f64], e2: &mut [f64], sweeps: &mut usize, max_sweeps: usize) -> bool {
    let eps2 = EPS * EPS;
    let end = d.len() - 1;
    let mut l = 0;
    while l <= end {
        let mut m = l;
        while m < end && e2[m].abs() > eps2 * (d[m] * d[m + 1]).abs() {
            m += 1;
        }
        if m < end {
            e2[m] = 0.0;
        }
        if m == l {
            // d[l] is an eigenvalue
            l += 1;
            continue;
        }
        if m == l + 1 {
            let (a, b) = eig2(d[l], e2[l].sqrt(), d[l + 1]);
            d[l] = a;
            d[l + 1] = b;
            e2[l] = 0.0;
            l += 2;
            continue;
        }
        if *sweeps == max_sweeps {
            return false;
        }
        *sweeps += 1;
        let sigma = shift(d[l], d[l + 1], e2[l]);
        let (mut c, mut s) = (1.0, 0.0);
        let mut gamma = d[m] - sigma;
        let mut p = gamma * gamma;
        for i in (l..m).rev() {
            let bb = e2[i];
            let r = p + bb;
            if i != m - 1 {
                e2[i + 1] = s * r;
            }
            let old_c = c;
            c = p / r;
            s = bb / r;
            let old_gamma = gamma;
            let alpha = d[i];
            gamma = c * (alpha - sigma) - s * old_gamma;
            d[i + 1] = old_gamma + (alpha - gamma);
            p = if c != 0.0 {
                gamma * gamma / c
            } else {
                old_c * bb
            };
        }
        e2[l] = s * p;
        d[l] = sigma + gamma;
    }
    true
}

/// QR sweeps on one unreduced block (`e` squared), deflating from the bottom: the mirror of
/// [`ql`], for blocks whose last diagonal entry is the smaller.
fn qr(d: &mut [f64], e2: &mut [f64], sweeps: &mut usize, max_sweeps: usize) -> bool {
    let eps2 = EPS * EPS;
    // `l` counts down from the bottom; `l + 1` avoids unsigned underflow past the top
    let mut l = d.len();
    while l > 0 {
        let li = l - 1;
        let mut m = li;
        while m > 0 && e2[m - 1].abs() > eps2 * (d[m] * d[m - 1]).abs() {
            m -= 1;
        }
        if m > 0 {
            e2[m - 1] = 0.0;
        }
        if m == li {
            l -= 1;
            continue;
        }
        if m + 1 == li {
            let (a, b) = eig2(d[li], e2[li - 1].sqrt(), d[li - 1]);
            d[li] = a;
            d[li - 1] = b;
            e2[li - 1] = 0.0;
            l -= 2;
            continue;
        }
        if *sweeps == max_sweeps {
            return false;
        }
        *sweeps += 1;
        let sigma = shift(d[li], d[li - 1], e2[li - 1]);
        let (mut c, mut s) = (1.0, 0.0);
        let mut gamma = d[m] - sigma;
        let mut p = gamma * gamma;
        for i in m..li {
            let bb = e2[i];
            let r = p + bb;
            if i != m {
                e2[i - 1] = s * r;
            }
            let old_c = c;
            c = p / r;
            s = bb / r;
            let old_gamma = gamma;
            let alpha = d[i + 1];
            gamma = c * (alpha - sigma) - s * old_gamma;
            d[i] = old_gamma + (alpha - gamma);
            p = if c != 0.0 {
                gamma * gamma / c
            } else {
                old_c * bb
            };
        }
        e2[li - 1] = s * p;
        d[li] = sigma + gamma;
    }
    true
}

/// The eigenvalues of `[[a, b], [b, c]]`, the larger in magnitude first, computed so that
/// the smaller keeps its relative accuracy (as LAPACK's `dlae2`).
fn eig2(a: f64, b: f64, c: f64) -> (f64, f64) {
    let sum = a + c;
    let diff = (a - c).abs();
    let tb = (2.0 * b).abs();
    let (big, small) = if a.abs() > c.abs() { (a, c) } else { (c, a) };
    let rt = if diff > tb {
        diff * (1.0 + (tb / diff).powi(2)).sqrt()
    } else if diff < tb {
        tb * (1.0 + (diff / tb).powi(2)).sqrt()
    } else {
        tb * std::f64::consts::SQRT_2
    };
    if sum == 0.0 {
        return (0.5 * rt, -0.5 * rt);
    }
    let rt1 = if sum < 0.0 {
        0.5 * (sum - rt)
    } else {
        0.5 * (sum + rt)
    };
    // the product of the eigenvalues is a·c − b², formed without cancellation
    let rt2 = (big / rt1) * small - (b / rt1) * b;
    (rt1, rt2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn solve(d: &[f64], e: &[f64]) -> Vec<f64> {
        let (mut d, mut e) = (d.to_vec(), e.to_vec());
        eigenvalues(&mut d, &mut e).unwrap();
        d
    }

    /// faer's values-only path on the same tridiagonal: the oracle these replace.
    fn faer_values(d: &[f64], e: &[f64]) -> Vec<f64> {
        use faer::dyn_stack::{MemBuffer, MemStack};
        use faer::linalg::evd;
        let n = d.len();
        let dd = faer::Col::<f64>::from_fn(n, |i| d[i]);
        let ee = faer::Col::<f64>::from_fn(n, |i| if i + 1 < n { e[i] } else { 0.0 });
        let mut s = faer::diag::Diag::<f64>::zeros(n);
        let scratch = evd::self_adjoint_evd_scratch::<f64>(
            n,
            evd::ComputeEigenvectors::No,
            faer::Par::Seq,
            Default::default(),
        );
        evd::tridiagonal_self_adjoint_evd(
            dd.as_diagonal(),
            ee.as_diagonal(),
            s.as_mut(),
            None,
            faer::Par::Seq,
            MemStack::new(&mut MemBuffer::new(scratch)),
            Default::default(),
        )
        .unwrap();
        s.column_vector().iter().copied().collect()
    }

    fn norm(d: &[f64], e: &[f64]) -> f64 {
        d.iter().chain(e).fold(0.0f64, |m, x| m.max(x.abs()))
    }

    #[test]
    fn the_second_difference_matrix_has_its_exact_spectrum() {
        // tridiag(-1, 2, -1) of order n: λ_k = 2 − 2 cos(kπ / (n + 1)), k = 1..n
        for n in [3, 10, 97, 682] {
            let got = solve(&vec![2.0; n], &vec![-1.0; n - 1]);
            for (k, g) in got.iter().enumerate() {
                let exact =
                    2.0 - 2.0 * ((k + 1) as f64 * std::f64::consts::PI / (n + 1) as f64).cos();
                // backward stable: within n ε ‖T‖ (‖T‖ ≤ 4), and the cosine itself to ε
                assert!(
                    (g - exact).abs() <= 4.0 * n as f64 * f64::EPSILON,
                    "n {n}, k {k}: {g} vs {exact}"
                );
            }
        }
    }

    #[test]
    fn a_diagonal_matrix_returns_its_diagonal_sorted_exactly() {
        let d = [3.0, -1.0, 0.0, 2.5, -7.0, 1e-300];
        let got = solve(&d, &[0.0; 5]);
        let mut want = d.to_vec();
        want.sort_by(f64::total_cmp);
        assert_eq!(got, want);
    }

    #[test]
    fn small_orders_and_the_zero_matrix() {
        assert_eq!(solve(&[], &[]), Vec::<f64>::new());
        assert_eq!(solve(&[4.0], &[]), vec![4.0]);
        let close = |got: Vec<f64>, want: [f64; 2]| {
            assert!(
                got.iter()
                    .zip(&want)
                    .all(|(g, w)| (g - w).abs() <= 4.0 * f64::EPSILON * 3.0),
                "{got:?} vs {want:?}"
            )
        };
        // [[2, 1], [1, 2]]: 1 and 3
        close(solve(&[2.0, 2.0], &[1.0]), [1.0, 3.0]);
        // [[0, b], [b, 0]]: ±b
        close(solve(&[0.0, 0.0], &[3.0]), [-3.0, 3.0]);
        assert_eq!(solve(&[0.0; 4], &[0.0; 3]), vec![0.0; 4]);
    }

    #[test]
    fn random_tridiagonals_agree_with_faer() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        for &n in &[2, 3, 5, 17, 64, 300, 682] {
            let d: Vec<f64> = (0..n).map(|_| rng.gen_range(-2.0..2.0)).collect();
            let e: Vec<f64> = (0..n - 1).map(|_| rng.gen_range(-1.0..1.0)).collect();
            let ours = solve(&d, &e);
            let theirs = faer_values(&d, &e);
            // two backward-stable solvers: each within ~n ε ‖T‖ of the truth; 4n ε ‖T‖ between
            let tol = 4.0 * n as f64 * f64::EPSILON * norm(&d, &e);
            for (a, b) in ours.iter().zip(&theirs) {
                assert!((a - b).abs() <= tol, "n {n}: {a} vs {b} (tol {tol:e})");
            }
            // the trace is invariant: Σλ = Σd, each λ within the backward error above (so
            // the sum within n times it, the worst case; typically far inside)
            let (sl, sd): (f64, f64) = (ours.iter().sum(), d.iter().sum());
            assert!(
                (sl - sd).abs() <= tol * n as f64,
                "n {n}: trace {sl} vs {sd}"
            );
        }
    }

    #[test]
    fn extreme_scales_come_back_scaled() {
        // the same matrix at 1e-280 and 1e280: the safe-range scaling must make them exact
        // multiples of the unit-scale answer (to the same backward error)
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let n = 40;
        let d: Vec<f64> = (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let e: Vec<f64> = (0..n - 1).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let unit = solve(&d, &e);
        for s in [1e-280, 1e280] {
            let ds: Vec<f64> = d.iter().map(|x| x * s).collect();
            let es: Vec<f64> = e.iter().map(|x| x * s).collect();
            let got = solve(&ds, &es);
            for (g, u) in got.iter().zip(&unit) {
                assert!(
                    (g / s - u).abs() <= 4.0 * n as f64 * f64::EPSILON,
                    "scale {s:e}: {} vs {u}",
                    g / s
                );
            }
        }
    }

    #[test]
    fn a_graded_matrix_keeps_its_small_eigenvalues_in_either_direction() {
        // diagonal graded over 12 decades, small coupling: chased from either end (the
        // reversed matrix takes the other of QL / QR), the answers agree to the backward error
        let n = 25;
        let d: Vec<f64> = (0..n).map(|i| 10f64.powf(-(i as f64) / 2.0)).collect();
        let e: Vec<f64> = (0..n - 1)
            .map(|i| 1e-3 * 10f64.powf(-(i as f64) / 2.0))
            .collect();
        let down = solve(&d, &e);
        let (mut dr, mut er) = (d.clone(), e.clone());
        dr.reverse();
        er.reverse();
        let up = solve(&dr, &er);
        let tol = 4.0 * n as f64 * f64::EPSILON * norm(&d, &e);
        for (a, b) in down.iter().zip(&up) {
            assert!((a - b).abs() <= tol, "{a} vs {b}");
        }
        // and the tiny ones keep their relative accuracy: chased either way they agree to
        // 100 ε of themselves (not merely of ‖T‖), and the smallest sits at its diagonal
        // entry 10^-12 up to the coupling's second-order shift (~(1e-3)² relative)
        for (a, b) in down.iter().zip(&up) {
            assert!(
                (a - b).abs() <= 100.0 * f64::EPSILON * a.abs(),
                "{a} vs {b}"
            );
        }
        let smallest = d[n - 1];
        assert!(
            (down[0] - smallest).abs() <= 1e-5 * smallest,
            "{} vs {smallest}",
            down[0]
        );
    }

    #[test]
    fn a_non_finite_entry_is_refused_not_deflated() {
        for (d, e) in [
            (vec![1.0, 2.0, 3.0], vec![f64::NAN, 1.0]),
            (vec![1.0, f64::INFINITY, 3.0], vec![0.5, 1.0]),
            (vec![1.0, 2.0], vec![f64::NEG_INFINITY]),
        ] {
            let (mut d, mut e) = (d, e);
            assert_eq!(
                eigenvalues(&mut d, &mut e),
                Err(TridiagonalError::NotFinite)
            );
        }
        assert_eq!(
            eigenvalues(&mut [f64::NAN], &mut []),
            Err(TridiagonalError::NotFinite)
        );
    }

    #[test]
    fn a_split_matrix_is_solved_block_by_block() {
        // two independent blocks joined by an exact zero: the union of their spectra
        let got = solve(&[2.0, 2.0, 2.0, 5.0, 5.0], &[1.0, 1.0, 0.0, 2.0]);
        let s2 = std::f64::consts::SQRT_2;
        let want = [2.0 - s2, 2.0, 3.0, 2.0 + s2, 7.0];
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-14 * 7.0, "{got:?}");
        }
    }
}
