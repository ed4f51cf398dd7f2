//! Spectrum counts and the condition number at the finite-difference noise floor (issue 14):
//! losses whose Hessian is known exactly, put through the dense finite-difference path the
//! record uses; an explicit matrix through Lanczos; how the new and the old fields load.

use std::sync::atomic::AtomicBool;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use resprune::config::HessianConfig;
use resprune::curvature::{
    dense_hessian, dense_spectrum, lanczos_spectrum, DenseHessian, Hvp, LossGrad, Spectrum,
    SpectrumStats, RESOLVED_GAP,
};

/// `L(θ) = gᵀu + ½ uᵀ A u + (c/24) Σ_k (r_kᵀ u)⁴` with `u = θ − θ₀` and `A = Q diag(d) Qᵀ`
/// (`Q` a random orthogonal matrix).
///
/// At `θ₀` the quartic's Hessian vanishes, so the Hessian is exactly `A`, eigenvalues `d`,
/// null space where `d` is 0. The quartic's third derivative makes the central difference of
/// column `j` err by `(h²/6) c Σ_k r_kj³ r_k`, which is not symmetric in `(i, j)`: truncation
/// error of the kind and size a network's finite-difference Hessian has (about 1e-11 relative
/// at `fd_step = 1e-5`), spread over the null space too. `g` makes the gradients O(1), so the
/// rounding error `ε ‖g‖ / h` is there as well.
struct Known {
    /// Eigenvectors of `A`, one per entry of `d`.
    q: Vec<Vec<f64>>,
    a: Vec<f64>,
    r: Vec<Vec<f64>>,
    c: f64,
    g: Vec<f64>,
    theta0: Vec<f64>,
}

impl Known {
    fn new(d: &[f64], seed: u64) -> Known {
        let n = d.len();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut gauss = || -> f64 { StandardNormal.sample(&mut rng) };
        // Q: Gram-Schmidt (twice) of Gaussian columns
        let mut q: Vec<Vec<f64>> = Vec::new();
        while q.len() < n {
            let mut v: Vec<f64> = (0..n).map(|_| gauss()).collect();
            for _ in 0..2 {
                for u in &q {
                    let p: f64 = u.iter().zip(&v).map(|(a, b)| a * b).sum();
                    v.iter_mut().zip(u).for_each(|(x, y)| *x -= p * y);
                }
            }
            let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt();
            q.push(v.into_iter().map(|x| x / norm).collect());
        }
        let mut a = vec![0.0; n * n];
        for (k, qk) in q.iter().enumerate() {
            for i in 0..n {
                for j in 0..n {
                    a[i * n + j] += d[k] * qk[i] * qk[j];
                }
            }
        }
        let r = (0..3).map(|_| (0..n).map(|_| gauss()).collect()).collect();
        let g = (0..n).map(|_| gauss()).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 7);
        let theta0 = (0..n).map(|_| rng.gen_range(-0.5..0.5)).collect();
        Known {
            q,
            a,
            r,
            // truncation error (h²/6)·c·|r|⁴ ≈ 1e-11 at h = 1e-5, like the rounding error
            c: 0.01,
            g,
            theta0,
        }
    }

    fn n(&self) -> usize {
        self.theta0.len()
    }
}

impl LossGrad for Known {
    fn dim(&self) -> usize {
        self.n()
    }

    fn loss_grad(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        let n = self.n();
        let u: Vec<f64> = theta
            .iter()
            .zip(&self.theta0)
            .map(|(t, t0)| t - t0)
            .collect();
        let mut loss = 0.0;
        for i in 0..n {
            let au: f64 = (0..n).map(|j| self.a[i * n + j] * u[j]).sum();
            grad[i] = self.g[i] + au;
            loss += self.g[i] * u[i] + 0.5 * u[i] * au;
        }
        for rk in &self.r {
            let s: f64 = rk.iter().zip(&u).map(|(a, b)| a * b).sum();
            loss += self.c / 24.0 * s.powi(4);
            for (gi, ri) in grad.iter_mut().zip(rk) {
                *gi += self.c / 6.0 * s.powi(3) * ri;
            }
        }
        loss
    }
}

fn logspace(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    let (a, b) = (lo.log10(), hi.log10());
    (0..count)
        .map(|k| 10f64.powf(a + (b - a) * k as f64 / (count - 1) as f64))
        .collect()
}

/// The largest |eigenvalue| of a symmetric `n × n` matrix.
fn norm2(n: usize, data: Vec<f64>) -> f64 {
    let m = DenseHessian {
        n,
        data,
        asymmetry: 0.0,
        gradient_evals: 0,
    };
    m.eigenvalues()
        .unwrap()
        .iter()
        .fold(0.0f64, |m, l| m.max(l.abs()))
}

/// The dense finite-difference spectrum of `loss` at `θ₀` as the record has it, the error
/// `Δ = H_fd − A` (symmetrised, as the spectrum sees it) and `‖Δ‖₂`.
fn measured(loss: &Known) -> (Spectrum, Vec<f64>, f64) {
    let cfg = HessianConfig::default();
    let h = dense_hessian(
        loss,
        &loss.theta0,
        cfg.fd_step,
        &AtomicBool::new(false),
        &|_| {},
    )
    .unwrap();
    let delta: Vec<f64> = h.data.iter().zip(&loss.a).map(|(x, a)| x - a).collect();
    let err = norm2(h.n, delta.clone());
    (dense_spectrum(&h, &cfg).unwrap(), delta, err)
}

#[test]
fn a_known_null_space_is_counted_at_the_noise_floor() {
    // 12 exact zeros, three negatives, then 1e-6 .. 1: near_zero 12, negatives 3, condition 1e6
    let mut d = vec![0.0; 12];
    d.extend([-0.2, -1e-3, -1e-5]);
    d.extend(logspace(1e-6, 1.0, 25));
    let loss = Known::new(&d, 14);
    let (s, delta, err) = measured(&loss);
    let n = d.len();
    let floor = s.noise_floor.unwrap();
    // The noise in the null space: with Q₀ its basis, the 12 eigenvalues of A + Δ nearest 0
    // are within ‖Q₀ᵀΔQ₀‖₂ + ‖Δ‖₂² / (1e-6 − 2‖Δ‖₂) of 0 (the eigenvalues of the compression
    // Q₀ᵀ(A + Δ)Q₀ = Q₀ᵀΔQ₀, moved by the quadratic residual bound for a cluster separated
    // by the gap 1e-6); the other eigenvalues are, by Weyl, within ‖Δ‖₂ of their exact ones.
    let q0 = &loss.q[..12];
    let compressed: Vec<f64> = (0..144)
        .map(|ab| {
            let (u, v) = (&q0[ab / 12], &q0[ab % 12]);
            (0..n)
                .map(|i| u[i] * (0..n).map(|j| delta[i * n + j] * v[j]).sum::<f64>())
                .sum()
        })
        .collect();
    let null_noise = norm2(12, compressed) + err * err / (1e-6 - 2.0 * err);
    eprintln!(
        "asymmetry {:e}, floor {floor:e}, |Δ| {err:e}, null-space noise {null_noise:e}, \
         eigenvalues {:?}",
        s.asymmetry.unwrap(),
        &s.eigenvalues[..]
    );
    // finite-difference noise of the size a network's has (1e-11 to 1e-10 relative)
    assert!((1e-12..1e-9).contains(&floor), "{floor:e}");
    assert_eq!(s.stats.zero_tol, floor);
    // the floor (one sample of the asymmetry) bounds the noise that reached the null space;
    // then exactly the 12 lie within it, the rest being at least 1e-6 − ‖Δ‖₂ from 0, and
    // exactly the 3 exact negatives (≤ −1e-5) lie below −floor
    assert!(null_noise < floor, "{null_noise:e} >= {floor:e}");
    assert!(1e-6 - err > floor);
    assert_eq!(s.stats.near_zero, Some(12));
    assert_eq!(s.stats.negatives, 3);
    assert_eq!(s.negatives_beyond_noise, Some(3));
    // the condition max|λ| / smallest resolved |λ| = 1 / 1e-6; Weyl moves numerator and
    // denominator by at most err, so the ratio by at most (err/1 + err/1e-6) / (1 − err/1e-6)
    // relative, under 2 err / 1e-6 here (err < 1e-9)
    let c = s
        .stats
        .condition
        .expect("resolved: the gap is 1e-6 / floor");
    assert!(
        (c - 1e6).abs() / 1e6 <= 2.0 * err / 1e-6,
        "{c} vs 1e6 (err {err:e})"
    );
    // the rank tolerance n·ε·max|λ| (what records counted at before) lets noise through
    let exact_tol = SpectrumStats::from_eigenvalues(&s.eigenvalues);
    assert!(exact_tol.zero_tol < floor / 100.0);
    assert!(exact_tol.near_zero < Some(12), "{:?}", exact_tol.near_zero);
}

#[test]
fn without_a_gap_the_condition_is_not_resolved() {
    // 5 exact zeros, then four eigenvalues per decade from 1e-16 to 1: no gap anywhere
    let mut d = vec![0.0; 5];
    d.extend(logspace(1e-16, 1.0, 65));
    let loss = Known::new(&d, 15);
    let (s, _, err) = measured(&loss);
    let floor = s.noise_floor.unwrap();
    eprintln!("floor {floor:e}, |Δ| {err:e}");
    assert!((1e-12..1e-9).contains(&floor), "{floor:e}");
    // some exact eigenvalue lies in (floor + err, RESOLVED_GAP · floor − err]: by Weyl its
    // finite-difference one is in the band (floor, RESOLVED_GAP · floor], so no gap
    assert!(d
        .iter()
        .any(|&x| x > floor + err && x <= RESOLVED_GAP * floor - err));
    assert_eq!(s.stats.condition, None);
    // the count is still measured: by Weyl, between the exact eigenvalues certainly inside
    // the floor (|d| ≤ floor − err) and those possibly inside (|d| ≤ floor + err)
    let inside = |t: f64| d.iter().filter(|x| x.abs() <= t).count();
    let nz = s.stats.near_zero.unwrap();
    assert!(
        (inside(floor - err)..=inside(floor + err)).contains(&nz),
        "{nz} not in {}..={}",
        inside(floor - err),
        inside(floor + err)
    );
    let text = toml::to_string(&s.stats).unwrap();
    assert!(!text.contains("condition"), "{text}");
    assert!(text.contains("near_zero"), "{text}");
    assert_eq!(s.stats.condition_text(|x| x.to_string()), "not resolved");
}

#[test]
fn the_condition_needs_the_band_above_the_floor_empty() {
    // hand-made spectra at a floor of 1e-10: values exact, so the results are exact too
    let floor = 1e-10;
    let s = SpectrumStats::with_noise_floor(&[-3e-11, 0.0, 1e-10, 2e-9, -0.5, 2.0], floor);
    assert_eq!(s.zero_tol, floor);
    assert_eq!(s.near_zero, Some(3)); // |λ| ≤ floor, the floor itself included
    assert_eq!(s.negatives, 1); // -3e-11 is noise
    assert_eq!(s.condition, Some(2.0 / 2e-9));
    // the smallest resolved value exactly at RESOLVED_GAP · floor: inside the band
    let s = SpectrumStats::with_noise_floor(&[0.0, RESOLVED_GAP * floor, 1.0], floor);
    assert_eq!((s.near_zero, s.condition), (Some(1), None));
    // every eigenvalue within the floor: measured, nothing resolved
    let s = SpectrumStats::with_noise_floor(&[5e-11, -5e-11], floor);
    assert_eq!((s.near_zero, s.negatives, s.condition), (Some(2), 0, None));
    // a floor below the rank tolerance n·ε·max|λ| leaves the rank tolerance in charge
    let s = SpectrumStats::with_noise_floor(&[1e-17, 1.0], 1e-20);
    assert_eq!(s.zero_tol, 2.0 * f64::EPSILON);
    assert_eq!((s.near_zero, s.condition), (Some(1), Some(1.0)));
}

/// `H = diag(d)`: exact products.
struct Diag(Vec<f64>);

impl Hvp for Diag {
    fn dim(&self) -> usize {
        self.0.len()
    }
    fn hvp(&mut self, v: &[f64], out: &mut [f64]) {
        for ((o, d), x) in out.iter_mut().zip(&self.0).zip(v) {
            *o = d * x;
        }
    }
}

#[test]
fn lanczos_says_it_measures_neither_near_zero_nor_the_condition() {
    // two clear negatives, 30 exact zeros, positives up to 3
    let mut d = vec![-2.0, -0.5];
    d.extend(vec![0.0; 30]);
    d.extend(logspace(1e-3, 3.0, 68));
    let cfg = HessianConfig::default();
    let s = lanczos_spectrum(&mut Diag(d.clone()), &cfg, 0, &AtomicBool::new(false)).unwrap();
    let st = &s.stats;
    assert_eq!((st.near_zero, st.condition), (None, None));
    assert_eq!(s.noise_floor, None);
    // n·ε·max|λ|, with the top Ritz value for max|λ| (3 to rounding)
    assert!((st.zero_tol / (100.0 * f64::EPSILON * 3.0) - 1.0).abs() < 1e-12);
    // the lowest Ritz values below minus their residual: the two negatives, exactly
    let lz = s.lanczos.as_ref().unwrap();
    assert!(lz.bottom.len() >= 3, "{:?}", lz.bottom);
    assert_eq!(st.negatives, 2, "{:?}", lz.bottom);
    assert!(s
        .sources
        .counts
        .contains("near_zero and condition: not measured"));
    assert_eq!(st.condition_text(|x| x.to_string()), "not measured");
    // neither is written, and they load back as not measured
    let text = toml::to_string(st).unwrap();
    assert!(
        !text.contains("near_zero") && !text.contains("condition"),
        "{text}"
    );
    assert_eq!(&toml::from_str::<SpectrumStats>(&text).unwrap(), st);
}

#[test]
fn records_written_before_the_noise_floor_still_load() {
    let old = |extra: &str| {
        toml::from_str::<SpectrumStats>(&format!(
            "n = 3\nmin = -1.0\nmax = 2.0\nmean = 0.3\nvariance = 1.5\ntrace = 1.0\n\
             negatives = 1\nzero_tol = 1.3e-15\n{extra}"
        ))
        .unwrap()
    };
    // a dense version-1 record: its numbers, as written
    let s = old("near_zero = 1\ncondition = 6479530781963.239");
    assert_eq!(
        (s.near_zero, s.condition),
        (Some(1), Some(6479530781963.239))
    );
    // a dense one whose every eigenvalue was near zero wrote inf: measured, not resolved
    let s = old("near_zero = 3\ncondition = inf");
    assert_eq!((s.near_zero, s.condition), (Some(3), None));
    // a version-1 Lanczos record wrote 0 and inf for "not measured"
    let s = old("near_zero = 0\ncondition = inf");
    assert_eq!((s.near_zero, s.condition), (None, None));
    // a version-2 dense record with nothing near zero and no gap keeps its 0
    let s = old("near_zero = 0");
    assert_eq!((s.near_zero, s.condition), (Some(0), None));
    // unknown fields are still refused
    assert!(toml::from_str::<SpectrumStats>("n = 1\nbogus = 2").is_err());
}

#[test]
fn show_prints_not_resolved() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/article-record.toml"
    );
    let mut r = resprune::record::load(std::path::Path::new(path)).unwrap();
    r.plain.spectrum.as_mut().unwrap().stats.condition = None;
    let text = resprune::cli::summary::render(&r);
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("condition"))
        .unwrap();
    assert!(line.ends_with("not resolved"), "{line}");
    assert!(line.contains("6.480e12"), "{line}");
    // both: still two words apart
    r.residual.spectrum.as_mut().unwrap().stats.condition = None;
    let text = resprune::cli::summary::render(&r);
    assert!(text.contains("not resolved not resolved"), "{text}");
}
