//! The top-k and bottom-k eigenvectors of a dense Hessian, at little more than the cost of its
//! eigenvalues, for the pruning mechanism's span shares ([`super::mechanism()`]).
//!
//! A full eigen-decomposition with vectors costs 1.3–1.8× the values alone (faer 0.24; see
//! "Cost" below), and the mechanism wants only `top_k + bottom_k` of the `n` vectors. So the
//! basis reuses the values' own path and adds O(k n²):
//!
//! 1. Householder tridiagonalisation `H = Q T Qᵀ` (faer's `tridiag_in_place`) and the
//!    eigenvalues of `T` with no vectors (the root-free QL/QR of [`super::tridiagonal`]):
//!    exactly what [`DenseHessian::eigenvalues`] does, so the eigenvalues are the same bit for
//!    bit whether or not a basis is asked for.
//! 2. For each wanted eigenvalue `λ`, inverse iteration on the tridiagonal `T − λI` (Gaussian
//!    elimination with partial pivoting, LAPACK's `dgttrf`/`dgttrs`; pivots below
//!    `ε · ‖T‖₁` raised to that, as `dlagts` does): O(n) a solve. With `λ` accurate to rounding
//!    one solve nearly converges; it iterates until `‖T z − λ z‖ ≤ TRI_TOL · ‖T‖₁` (at least two
//!    solves, at most [`MAX_SOLVES`]). Every iterate is orthogonalised (two Gram–Schmidt passes)
//!    against all vectors already found: for eigenvalues far apart this removes only rounding,
//!    and inside a cluster it is what makes successive vectors span the cluster instead of
//!    converging to the same one (LAPACK's `dstein` does it within clusters only).
//! 3. Back-transformation `u = Q z` of the `k` vectors by the stored reflectors (faer's blocked
//!    Householder sequence): about `4 k n²` flops.
//! 4. A check on `H` itself: every `‖H u − λ u‖ ≤ BASIS_TOL · max|λ|` and
//!    `max |UᵀU − I| ≤ BASIS_TOL`. Should it fail, the basis is taken from the full
//!    decomposition with vectors instead (slow but certain), so a returned basis always passed.
//!
//! Why inverse iteration on `T` rather than on `H`, or Lanczos / subspace iteration on the dense
//! `H`: the tridiagonalisation is already paid for by the eigenvalues, so with the eigenvalue
//! known as the shift each solve is O(n) where a shifted factorisation of `H` costs `n³/3` per
//! vector; and iterations on `H` converge at a rate set by relative gaps, which at a Hessian's
//! clustered low end would take hundreds of products, where inverse iteration with an exact
//! shift needs one or two solves whatever the gaps.
//!
//! [`BASIS_TOL`] = 1e-10: a backward-stable solver leaves residuals and loss of orthogonality of
//! order `n ε ‖H‖` (7e-13 at `n = 3000`, the default `dense_limit`), so the check has 100× margin
//! for rounding and fails only when the iteration did not converge. On the article's trained
//! models the residuals are below 1e-14 (relative to `max|λ|` ≈ 1–3).
//!
//! Cost (release build, 2 loaded cores, min of 5–20 interleaved runs, `k = 5 + 5`; the
//! sequential solver below 1,500 parameters, faer's threads above; measured with faer's own
//! values-only iteration on `T`, which [`super::tridiagonal`] has since replaced: the values
//! now take ~17 ms at n = 682 on an idle core, docs/performance.md):
//!
//! | matrix | n | values only | all vectors (faer) | values + this basis |
//! |---|---|---|---|---|
//! | article model, trained (residual / plain) | 682 | 34.4 / 35.2 ms | 61.4 / 62.6 ms | 35.2 / 36.1 ms |
//! | random symmetric | 682 | 39.3 ms | 71.1 ms | 40.8 ms |
//! | random symmetric | 2000 | 0.73 s | 0.96 s | 0.71 s |
//! | MLP width 40, untrained | 2162 | 0.72 s | 1.09 s | 0.80 s |
//!
//! The basis adds about 1 ms at n = 682 (`resprune-tui run experiments/article.toml`, 10 runs
//! alternating with and without the basis: min 0.222 s vs 0.223 s, median 0.274 s vs 0.259 s,
//! the difference within the machine's noise); at n ≈ 2000 the difference is within the noise
//! of the values themselves.
//!
//! Clusters. Eigenvectors of (nearly) equal eigenvalues are individually ill-defined; only the
//! span of the whole cluster is. Inside a cluster the vectors returned are an orthonormal set of
//! approximate eigenvectors in that span (each with a small residual), not particular ones. When
//! a cluster straddles the k-th boundary, the first k vectors hold an arbitrary part of it, and
//! the share of a step in their span depends on that choice by up to the step's share in the
//! whole cluster. The gap `λ_k − λ_{k+1}` (top; `λ_{k+1} − λ_k` for the bottom, both ≥ 0) is
//! returned beside the vectors ([`EigenBasis::top_gap`]) so a reader can tell: a gap at or below
//! the finite-difference noise floor means the k-th boundary is not resolved.

use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::{evd, householder};
use faer::{Mat, MatRef, Par};

use super::mechanism::{BasisSource, EigenBasis};
use super::{CurvatureError, DenseHessian};

/// The check on the returned vectors: residual `‖H u − λ u‖ ≤ BASIS_TOL · max|λ|`, and
/// `max |uᵢᵀuⱼ − δᵢⱼ| ≤ BASIS_TOL`.
pub const BASIS_TOL: f64 = 1e-10;

/// Inverse iteration stops once `‖T z − λ z‖ ≤ TRI_TOL · ‖T‖₁` (after at least two solves).
const TRI_TOL: f64 = 1e-13;

/// Most inverse-iteration solves per vector; two nearly always suffice with an exact shift.
pub const MAX_SOLVES: usize = 5;

/// Below ~1,500 the threaded solver loses to the sequential one on two cores
/// (682: 37 ms sequential, 111 ms threaded, measured while another job ran).
pub(crate) fn par_for(n: usize) -> Par {
    if n < 1500 {
        Par::Seq
    } else {
        faer::get_global_parallelism()
    }
}

/// `H = Q T Qᵀ`: `trid` holds `T`'s diagonal and subdiagonal and, below, the reflectors of `Q`
/// whose block coefficients are in `householder`.
pub(crate) struct Tridiagonalised {
    trid: Mat<f64>,
    householder: Mat<f64>,
    par: Par,
}

impl Tridiagonalised {
    pub(crate) fn new(h: &DenseHessian) -> Tridiagonalised {
        let n = h.n;
        let par = par_for(n);
        let mut trid = Mat::<f64>::zeros(n, n);
        // only the lower triangle is read, as in faer's self_adjoint_evd; `h` is symmetric,
        // so its row-major data read column-major is the same matrix, read contiguously
        trid.as_mut()
            .copy_from_triangular_lower(MatRef::from_column_major_slice(&h.data, n, n));
        let bs = faer::linalg::qr::no_pivoting::factor::recommended_block_size::<f64>(n, n);
        let mut householder = Mat::<f64>::zeros(bs, n.saturating_sub(1));
        if n > 0 {
            let scratch = evd::tridiag::tridiag_in_place_scratch::<f64>(n, par, Default::default());
            evd::tridiag::tridiag_in_place(
                trid.as_mut(),
                householder.as_mut(),
                par,
                MemStack::new(&mut MemBuffer::new(scratch)),
                Default::default(),
            );
        }
        Tridiagonalised {
            trid,
            householder,
            par,
        }
    }

    fn n(&self) -> usize {
        self.trid.nrows()
    }

    /// `T`'s diagonal and its subdiagonal (`n − 1` entries).
    pub(crate) fn tridiagonal(&self) -> (Vec<f64>, Vec<f64>) {
        let n = self.n();
        let d = (0..n).map(|i| self.trid[(i, i)]).collect();
        let e = (0..n.saturating_sub(1))
            .map(|i| self.trid[(i + 1, i)])
            .collect();
        (d, e)
    }

    /// Every eigenvalue, ascending: the root-free implicit QL/QR algorithm on `T`
    /// ([`super::tridiagonal`]).
    pub(crate) fn eigenvalues(&self) -> Result<Vec<f64>, CurvatureError> {
        let (mut d, mut e) = self.tridiagonal();
        super::tridiagonal::eigenvalues(&mut d, &mut e).map_err(|e| match e {
            super::tridiagonal::TridiagonalError::NotFinite => CurvatureError::Eigen(
                "the dense Hessian has a non-finite entry (NaN or infinity), so it has no \
                 eigenvalues: a gradient overflowed at one of the points θ ± h·e_i"
                    .into(),
            ),
            other => CurvatureError::Eigen(other.to_string()),
        })?;
        Ok(d)
    }

    /// Unit eigenvectors of `H` for the eigenvalues `lambdas` (of `T`, hence of `H`), mutually
    /// orthonormal: inverse iteration on `T`, then `u = Q z`. Returned as the columns of an
    /// `n × lambdas.len()` matrix.
    fn eigenvectors(&self, lambdas: &[f64]) -> Mat<f64> {
        let n = self.n();
        let (d, e) = self.tridiagonal();
        let norm1 = (0..n)
            .map(|i| {
                d[i].abs()
                    + if i > 0 { e[i - 1].abs() } else { 0.0 }
                    + e.get(i).map_or(0.0, |x| x.abs())
            })
            .fold(0.0f64, f64::max);
        let tiny = f64::EPSILON * norm1.max(f64::MIN_POSITIVE);
        let mut z = Mat::<f64>::zeros(n, lambdas.len());
        let mut found: Vec<Vec<f64>> = Vec::with_capacity(lambdas.len());
        for (col, &lambda) in lambdas.iter().enumerate() {
            let lu = TriLu::factor(&d, &e, lambda, tiny);
            let mut v = start_vector(n, col as u64);
            for solve in 0..MAX_SOLVES {
                lu.solve(&mut v);
                for _ in 0..2 {
                    for u in &found {
                        let c = dot(u, &v);
                        v.iter_mut().zip(u).for_each(|(x, y)| *x -= c * y);
                    }
                }
                let nv = dot(&v, &v).sqrt();
                if nv == 0.0 || !nv.is_finite() {
                    // no direction left (or overflow): a fresh start; the check on H catches
                    // a vector that never converged
                    v = start_vector(n, (col + (solve + 1) * lambdas.len()) as u64);
                    continue;
                }
                v.iter_mut().for_each(|x| *x /= nv);
                if solve >= 1 && tri_residual(&d, &e, lambda, &v) <= TRI_TOL * norm1 {
                    break;
                }
            }
            for (i, x) in v.iter().enumerate() {
                z[(i, col)] = *x;
            }
            found.push(v);
        }
        if n > 1 && !lambdas.is_empty() {
            let bs = self.householder.nrows();
            let scratch =
                householder::apply_block_householder_sequence_on_the_left_in_place_scratch::<f64>(
                    n - 1,
                    bs,
                    lambdas.len(),
                );
            householder::apply_block_householder_sequence_on_the_left_in_place_with_conj(
                self.trid.submatrix(1, 0, n - 1, n - 1),
                self.householder.as_ref(),
                faer::Conj::No,
                z.as_mut().subrows_mut(1, n - 1),
                self.par,
                MemStack::new(&mut MemBuffer::new(scratch)),
            );
        }
        z
    }
}

/// A deterministic start for inverse iteration, uniform in `(−1, 1)` per entry and unit length.
fn start_vector(n: usize, seed: u64) -> Vec<f64> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0xB45E ^ seed);
    let mut v: Vec<f64> = (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let nv = dot(&v, &v).sqrt();
    if nv > 0.0 {
        v.iter_mut().for_each(|x| *x /= nv);
    }
    v
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `‖T z − λ z‖` for the tridiagonal `(d, e)`.
fn tri_residual(d: &[f64], e: &[f64], lambda: f64, z: &[f64]) -> f64 {
    let n = d.len();
    (0..n)
        .map(|i| {
            let mut r = (d[i] - lambda) * z[i];
            if i > 0 {
                r += e[i - 1] * z[i - 1];
            }
            if i + 1 < n {
                r += e[i] * z[i + 1];
            }
            r * r
        })
        .sum::<f64>()
        .sqrt()
}

/// `T − σI = P L U` for a symmetric tridiagonal `T`, by Gaussian elimination with partial
/// pivoting (LAPACK `dgttrf`): `U` has two superdiagonals `du`, `du2`; `dl` holds the
/// multipliers and `swap[i]` whether rows `i` and `i + 1` were exchanged.
struct TriLu {
    dl: Vec<f64>,
    d: Vec<f64>,
    du: Vec<f64>,
    du2: Vec<f64>,
    swap: Vec<bool>,
}

impl TriLu {
    /// Pivots below `tiny` in magnitude are raised to `tiny`: with `σ` an eigenvalue the matrix
    /// is singular to working precision, and the perturbation is what lets the solve amplify the
    /// eigenvector (as in `dlagts` with `job = −1`).
    fn factor(diag: &[f64], off: &[f64], sigma: f64, tiny: f64) -> TriLu {
        let n = diag.len();
        let mut d: Vec<f64> = diag.iter().map(|x| x - sigma).collect();
        let mut dl = off.to_vec();
        let mut du = off.to_vec();
        let mut du2 = vec![0.0; n.saturating_sub(2)];
        let mut swap = vec![false; n.saturating_sub(1)];
        let raise = |x: f64| if x.abs() < tiny { tiny.copysign(x) } else { x };
        for i in 0..n.saturating_sub(1) {
            if d[i].abs() >= dl[i].abs() {
                d[i] = raise(d[i]);
                let f = dl[i] / d[i];
                dl[i] = f;
                d[i + 1] -= f * du[i];
            } else {
                let f = d[i] / dl[i];
                d[i] = raise(dl[i]);
                dl[i] = f;
                let t = du[i];
                du[i] = d[i + 1];
                d[i + 1] = t - f * d[i + 1];
                if i + 2 < n {
                    du2[i] = du[i + 1];
                    du[i + 1] *= -f;
                }
                swap[i] = true;
            }
        }
        if let Some(last) = d.last_mut() {
            *last = raise(*last);
        }
        TriLu {
            dl,
            d,
            du,
            du2,
            swap,
        }
    }

    /// `b ← (T − σI)⁻¹ b` (LAPACK `dgttrs`).
    fn solve(&self, b: &mut [f64]) {
        let n = self.d.len();
        if n == 0 {
            return;
        }
        for i in 0..n - 1 {
            if self.swap[i] {
                let t = b[i];
                b[i] = b[i + 1];
                b[i + 1] = t - self.dl[i] * b[i];
            } else {
                b[i + 1] -= self.dl[i] * b[i];
            }
        }
        b[n - 1] /= self.d[n - 1];
        if n > 1 {
            b[n - 2] = (b[n - 2] - self.du[n - 2] * b[n - 1]) / self.d[n - 2];
        }
        for i in (0..n.saturating_sub(2)).rev() {
            b[i] = (b[i] - self.du[i] * b[i + 1] - self.du2[i] * b[i + 2]) / self.d[i];
        }
    }
}

/// Which eigenvalues (indices into the ascending list) a basis wants: the top `top_k`, largest
/// first, and the bottom `bottom_k`, smallest first, each capped at `n`.
fn wanted(n: usize, top_k: usize, bottom_k: usize) -> (Vec<usize>, Vec<usize>) {
    let top = (0..n).rev().take(top_k).collect();
    let bottom = (0..n).take(bottom_k).collect();
    (top, bottom)
}

/// `λ_k − λ_{k+1}` over the descending top, `λ_{k+1} − λ_k` over the ascending bottom; `None`
/// when there is no `(k+1)`-th value (or `k = 0`).
pub(crate) fn gaps(ascending: &[f64], top_k: usize, bottom_k: usize) -> (Option<f64>, Option<f64>) {
    let n = ascending.len();
    let top = (top_k > 0 && top_k < n).then(|| ascending[n - top_k] - ascending[n - top_k - 1]);
    let bottom =
        (bottom_k > 0 && bottom_k < n).then(|| ascending[bottom_k] - ascending[bottom_k - 1]);
    (top, bottom)
}

/// Residuals `‖H u_j − λ_j u_j‖` of the columns of `u`, and `max |UᵀU − I|`.
fn check(h: &DenseHessian, u: MatRef<'_, f64>, lambdas: &[f64]) -> (Vec<f64>, f64) {
    let n = h.n;
    let hm = MatRef::from_row_major_slice(&h.data, n, n);
    let hu = hm * u;
    let residuals = (0..u.ncols())
        .map(|j| {
            (0..n)
                .map(|i| (hu[(i, j)] - lambdas[j] * u[(i, j)]).powi(2))
                .sum::<f64>()
                .sqrt()
        })
        .collect();
    let g = u.transpose() * u;
    let mut ortho = 0.0f64;
    for i in 0..g.nrows() {
        for j in 0..g.ncols() {
            let want = if i == j { 1.0 } else { 0.0 };
            ortho = ortho.max((g[(i, j)] - want).abs());
        }
    }
    (residuals, ortho)
}

/// Every eigenvector of `H` by the full decomposition (the fallback, and the oracle in tests):
/// the wanted columns of `U`, with their residuals.
fn full_vectors(h: &DenseHessian, idx: &[usize]) -> Result<(Vec<f64>, Mat<f64>), CurvatureError> {
    let n = h.n;
    let par = par_for(n);
    let mut s = faer::diag::Diag::<f64>::zeros(n);
    let mut u = Mat::<f64>::zeros(n, n);
    let scratch = evd::self_adjoint_evd_scratch::<f64>(
        n,
        evd::ComputeEigenvectors::Yes,
        par,
        Default::default(),
    );
    evd::self_adjoint_evd(
        MatRef::from_row_major_slice(&h.data, n, n),
        s.as_mut(),
        Some(u.as_mut()),
        par,
        MemStack::new(&mut MemBuffer::new(scratch)),
        Default::default(),
    )
    .map_err(|e| CurvatureError::Eigen(format!("{e:?}")))?;
    let values = s.column_vector().iter().copied().collect();
    let cols = Mat::from_fn(n, idx.len(), |i, j| u[(i, idx[j])]);
    Ok((values, cols))
}

/// How [`dense_basis`] got its vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DensePath {
    /// Inverse iteration on the tridiagonal form (the fast path).
    InverseIteration,
    /// The fast path failed its check; the full decomposition with vectors.
    Full,
}

/// Every eigenvalue of `h` (ascending, the same as [`DenseHessian::eigenvalues`]) and its
/// top-`top_k` and bottom-`bottom_k` eigenvectors, checked to [`BASIS_TOL`] (see the module
/// docs), and which path produced them.
pub fn dense_basis(
    h: &DenseHessian,
    top_k: usize,
    bottom_k: usize,
) -> Result<(Vec<f64>, EigenBasis, DensePath), CurvatureError> {
    let n = h.n;
    let tri = Tridiagonalised::new(h);
    let values = tri.eigenvalues()?;
    let (top, bottom) = wanted(n, top_k, bottom_k);
    // ascending, without duplicates when top and bottom meet (n < top_k + bottom_k)
    let mut idx: Vec<usize> = top.iter().chain(&bottom).copied().collect();
    idx.sort_unstable();
    idx.dedup();
    let lambdas: Vec<f64> = idx.iter().map(|&i| values[i]).collect();
    let scale = values.iter().fold(0.0f64, |m, l| m.max(l.abs()));
    let fast = tri.eigenvectors(&lambdas);
    let (residuals, ortho) = check(h, fast.as_ref(), &lambdas);
    let passed = ortho <= BASIS_TOL && residuals.iter().all(|r| *r <= BASIS_TOL * scale);
    let (u, residuals, path) = if passed {
        (fast, residuals, DensePath::InverseIteration)
    } else {
        let (_, u) = full_vectors(h, &idx)?;
        let (residuals, _) = check(h, u.as_ref(), &lambdas);
        (u, residuals, DensePath::Full)
    };
    let column = |i: usize| {
        let j = idx.binary_search(&i).unwrap_or_default();
        (
            (0..n).map(|r| u[(r, j)]).collect::<Vec<f64>>(),
            residuals[j],
        )
    };
    let basis = EigenBasis::from_indices(&values, &top, &bottom, column, BasisSource::Dense);
    Ok((values, basis, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A symmetric matrix with entries in (−1, 1), its spectrum spread without clusters.
    fn random_symmetric(n: usize, seed: u64) -> DenseHessian {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut data = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                let x: f64 = rng.gen_range(-1.0..1.0);
                data[i * n + j] = x;
                data[j * n + i] = x;
            }
        }
        DenseHessian {
            n,
            data,
            asymmetry: 0.0,
            gradient_evals: 0,
        }
    }

    #[test]
    fn the_tridiagonal_solve_inverts_the_shifted_matrix() {
        // T = tridiag(e, d, e) with a shift that forces row exchanges (|d_i − σ| < |e_i|)
        let d = [0.1, -0.2, 0.05, 0.3, -0.1];
        let e = [1.0, 2.0, 0.5, 1.5];
        let sigma = 0.02;
        let x = [1.0, -2.0, 0.5, 3.0, -1.0];
        let mut b: Vec<f64> = (0..5)
            .map(|i| {
                (d[i] - sigma) * x[i]
                    + if i > 0 { e[i - 1] * x[i - 1] } else { 0.0 }
                    + if i < 4 { e[i] * x[i + 1] } else { 0.0 }
            })
            .collect();
        let lu = TriLu::factor(&d, &e, sigma, 1e-300);
        assert!(lu.swap.iter().any(|s| *s), "no row was exchanged");
        lu.solve(&mut b);
        for (bi, xi) in b.iter().zip(&x) {
            // condition of this 5×5 is ~1e2: 1e-12 is rounding with margin
            assert!((bi - xi).abs() < 1e-12, "{b:?}");
        }
    }

    #[test]
    fn a_non_finite_hessian_is_refused() {
        let h = DenseHessian {
            n: 2,
            data: vec![1.0, f64::NAN, f64::NAN, 2.0],
            asymmetry: 0.0,
            gradient_evals: 0,
        };
        let err = h.eigenvalues().unwrap_err().to_string();
        assert!(err.contains("non-finite"), "{err}");
    }

    #[test]
    fn eigenvalues_match_the_values_only_solver_bit_for_bit() {
        let h = random_symmetric(150, 3);
        let (values, _, _) = dense_basis(&h, 3, 3).unwrap();
        assert_eq!(values, h.eigenvalues().unwrap());
    }

    #[test]
    fn the_fast_path_agrees_with_the_full_decomposition() {
        // above faer's divide-and-conquer threshold (128), so the oracle takes that path
        let n = 300;
        let h = random_symmetric(n, 7);
        let (values, basis, path) = dense_basis(&h, 4, 4).unwrap();
        assert_eq!(path, DensePath::InverseIteration);
        let idx: Vec<usize> = vec![n - 1, n - 2, n - 3, n - 4, 0, 1, 2, 3];
        let (full_values, u) = full_vectors(&h, &idx).unwrap();
        let scale = values.iter().fold(0.0f64, |m, l| m.max(l.abs()));
        for (a, b) in values.iter().zip(&full_values) {
            // two backward-stable solvers: within n ε ‖H‖ of each other
            assert!((a - b).abs() < 1e-11 * scale, "{a} vs {b}");
        }
        for (j, v) in basis.top.iter().chain(&basis.bottom).enumerate() {
            // a random matrix's extreme eigenvalues are separated by ~0.1 ‖H‖, so each vector is
            // determined to ~ε ‖H‖ / gap; equal up to sign within 1e-9
            let c: f64 = (0..n).map(|i| v[i] * u[(i, j)]).sum();
            assert!(
                (c.abs() - 1.0).abs() < 1e-9,
                "column {j}: |cos| = {}",
                c.abs()
            );
        }
        assert!(basis.top_residuals.iter().all(|r| *r < BASIS_TOL * scale));
        assert_eq!(basis.top_values[0], values[n - 1]);
        assert_eq!(basis.bottom_values[0], values[0]);
        assert_eq!(basis.top_gap, Some(values[n - 4] - values[n - 5]));
        assert_eq!(basis.bottom_gap, Some(values[4] - values[3]));
    }

    #[test]
    fn a_repeated_eigenvalue_gets_orthonormal_vectors_spanning_its_eigenspace() {
        // H = V diag(2, 2, 2, 1, 0.5, 0.5, −1, −1) Vᵀ with V a product of Givens rotations: the
        // triple top eigenvalue straddles top_k = 2, the double bottom one bottom_k = 1
        let lam = [2.0, 2.0, 2.0, 1.0, 0.5, 0.5, -1.0, -1.0];
        let n = lam.len();
        let mut v = Mat::<f64>::identity(n, n);
        for (k, (i, j)) in [(0, 3), (1, 6), (2, 5), (4, 7), (0, 1), (3, 6), (2, 7)]
            .into_iter()
            .enumerate()
        {
            let (c, s) = ((0.3 + k as f64).cos(), (0.3 + k as f64).sin());
            for r in 0..n {
                let (a, b) = (v[(r, i)], v[(r, j)]);
                v[(r, i)] = c * a - s * b;
                v[(r, j)] = s * a + c * b;
            }
        }
        let data = (0..n * n)
            .map(|ij| {
                (0..n)
                    .map(|m| v[(ij / n, m)] * lam[m] * v[(ij % n, m)])
                    .sum()
            })
            .collect();
        let h = DenseHessian {
            n,
            data,
            asymmetry: 0.0,
            gradient_evals: 0,
        };
        let (_, basis, path) = dense_basis(&h, 2, 1).unwrap();
        assert_eq!(path, DensePath::InverseIteration);
        assert!(basis.top_gap.unwrap().abs() < 1e-14, "{:?}", basis.top_gap);
        // each top vector lies in the span of the first three columns of V (share 1)
        for u in &basis.top {
            let inside: f64 = (0..3)
                .map(|m| (0..n).map(|r| u[r] * v[(r, m)]).sum::<f64>().powi(2))
                .sum();
            assert!((inside - 1.0).abs() < 1e-12, "{inside}");
        }
        let c: f64 = (0..n).map(|r| basis.top[0][r] * basis.top[1][r]).sum();
        assert!(c.abs() < 1e-12, "top vectors not orthogonal: {c}");
        let inside: f64 = (6..8)
            .map(|m| {
                (0..n)
                    .map(|r| basis.bottom[0][r] * v[(r, m)])
                    .sum::<f64>()
                    .powi(2)
            })
            .sum();
        assert!((inside - 1.0).abs() < 1e-12, "{inside}");
    }
}
