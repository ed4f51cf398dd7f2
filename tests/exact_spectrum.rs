//! Spectra from exact Hessian-vector products (`hessian.products = "exact"`): the dense
//! Hessian of `curvature::dense_hessian_exact` against the analytic oracles of
//! tests/curvature_dense.rs and against the finite-difference one, the records an exact run
//! writes (and replays, and summarises), the default for records older than the key, and
//! Lanczos on exact products against the dense eigenvalues.
//!
//! tests/exact_hvp.rs checks the products themselves (against a hyper-dual oracle); this file
//! checks what is built on them.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::AtomicBool;

use common::softmax::{head_block_case, SoftmaxRegression};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use resprune::config::{HessianConfig, HessianMethod, Products, ProductsChoice};
use resprune::curvature::{
    dense_hessian, dense_hessian_exact, spectrum, BatchLoss, DenseHessian, LossGrad,
    SpectrumMethod, SpectrumOptions,
};
use resprune::model::{Activation, ModelSpec, Network, Variant};
use resprune::record::{self, Record};

// ---------------------------------------------------------------------------------------
// Helpers (the softmax-regression oracle is tests/common/softmax.rs, shared with
// tests/curvature_dense.rs).
// ---------------------------------------------------------------------------------------

fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0f64, |m, x| m.max(x.abs()))
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((x - y).abs()))
}

/// `max |a − b| / max |b|`.
fn rel_err(a: &[f64], b: &[f64]) -> f64 {
    max_diff(a, b) / max_abs(b)
}

fn never() -> AtomicBool {
    AtomicBool::new(false)
}

/// The `m × m` diagonal block of `h` starting at `at`, row-major.
fn block(h: &DenseHessian, at: usize, m: usize) -> Vec<f64> {
    (0..m * m)
        .map(|ij| h.get(at + ij / m, at + ij % m))
        .collect()
}

fn exact_dense(
    net: &Network,
    theta: &[f64],
    batch: &resprune::model::PreparedBatch,
) -> DenseHessian {
    let Ok(exact) = net.exact_hvp(theta, batch) else {
        panic!("exact_hvp refused an MLP");
    };
    dense_hessian_exact(&exact, &never(), &|_| {}).unwrap()
}

fn fd_dense(net: &Network, theta: &[f64], batch: &resprune::model::PreparedBatch) -> DenseHessian {
    dense_hessian(&BatchLoss { net, batch }, theta, 1e-5, &never(), &|_| {}).unwrap()
}

// ---------------------------------------------------------------------------------------
// 1. The exact dense Hessian on the analytic oracles.
// ---------------------------------------------------------------------------------------

/// Softmax regression as an MLP: depth 0, ReLU, the stem the identity with bias 2, so the
/// hidden features are exactly `x + 2` (`1·x_j + Σ 0·x_k + 2`: the zeros add nothing, the
/// result is the rounded `x_j + 2`) and, with `x ∈ [−1, 1]`, every pre-activation lies in
/// `[1, 3]`, far from the kink. The logits are linear in the head's parameters, so the head
/// block of the network's Hessian *is* the hand-written softmax regression's Hessian on
/// `x + 2`, at tests/curvature_dense.rs's data and parameters.
///
/// Tolerance: both sides are exact formulas evaluated in f64; they differ only in the order
/// of the sums (the network's 40-example mean goes through faer's products, the oracle's
/// through a plain loop), i.e. a few ulps of each O(1) term times the ~40 terms summed:
/// ~1e-14 relative. 1e-13 holds that with a margin of ~10 and is seven orders below the
/// finite-difference Hessian's 1e-6 (asserted alongside, as tests/curvature_dense.rs does).
/// The asymmetry of the exact columns is rounding too: H[i, j] and H[j, i] come from
/// different products, each to a few ulps of max|H|, so 1e-14 (~45 ulps) is generous.
#[test]
fn exact_dense_hessian_of_softmax_regression_matches_its_analytic_form() {
    let (n, d, k) = (40, 5, 3);
    let x: Vec<f64> = (0..n * d)
        .map(|i| ((i * 7919 % 23) as f64 / 11.0) - 1.0)
        .collect();
    let y: Vec<usize> = (0..n).map(|i| (i * 5) % k).collect();
    let spec = ModelSpec {
        inputs: d,
        width: d,
        depth: 0,
        classes: k,
        activation: Activation::Relu,
        alpha: 1.0,
        learned_alpha: false,
        transformer: None,
    };
    let layout = spec.layout();
    let sw = layout.get("stem.weight").unwrap().offset;
    let sb = layout.get("stem.bias").unwrap().offset;
    let hw = layout.get("head.weight").unwrap().offset;
    let mut theta = vec![0.0; spec.num_params()];
    for j in 0..d {
        theta[sw + j * d + j] = 1.0;
        theta[sb + j] = 2.0;
    }
    let reg = SoftmaxRegression {
        x: x.iter().map(|v| v + 2.0).collect(),
        y: y.clone(),
        d,
        k,
    };
    let m = reg.dim();
    assert_eq!(hw + m, theta.len(), "the head is the end of theta");
    // tests/curvature_dense.rs's regression parameters
    for (i, t) in theta[hw..].iter_mut().enumerate() {
        *t = ((i % 7) as f64 - 3.0) / 10.0;
    }
    let analytic = reg.analytic_hessian(&theta[hw..]);
    let net = Network::new(&spec, Variant::Plain);
    let batch = net.prepare(&x, &y);

    let h = exact_dense(&net, &theta, &batch);
    assert_eq!(h.n, theta.len());
    assert_eq!(h.gradient_evals, 0);
    let err = rel_err(&block(&h, hw, m), &analytic);
    let fd = fd_dense(&net, &theta, &batch);
    let fd_err = rel_err(&block(&fd, hw, m), &analytic);
    eprintln!(
        "softmax regression: exact {err:.2e}, FD {fd_err:.2e} relative (max|H| {:.3}); \
         asymmetry exact {:.2e}, FD {:.2e}",
        max_abs(&analytic),
        h.asymmetry,
        fd.asymmetry
    );
    assert!(err < 1e-13, "exact vs analytic: relative error {err:e}");
    assert!(fd_err < 1e-6, "FD vs analytic: relative error {fd_err:e}");
    assert!(h.asymmetry < 1e-14, "asymmetry {:e}", h.asymmetry);
    // and the oracle is not vacuous
    assert!(max_abs(&analytic) > 1e-2);
}

/// tests/curvature_dense.rs's network oracle: the head block of a depth-2 tanh MLP (both
/// variants) is softmax regression on the last hidden features (`common::hidden`).
///
/// Tolerance: as above, rounding only — the features come from `common::hidden` on one side
/// and the network's own forward on the other (a few ulps apart), then 30-example sums in
/// different orders; 1e-13 relative. The FD Hessian is held to tests/curvature_dense.rs's
/// 1e-6 and 1e-8 asymmetry; the exact one's asymmetry to 1e-14.
#[test]
fn exact_dense_head_block_is_softmax_regression_on_hidden_features() {
    for v in Variant::BOTH {
        let (spec, theta, x, y) = head_block_case();
        let n = y.len();
        let net = Network::new(&spec, v);
        let batch = net.prepare(&x, &y);
        let h = exact_dense(&net, &theta, &batch);
        let fd = fd_dense(&net, &theta, &batch);
        let head_w = spec.layout().get("head.weight").unwrap().offset;
        let hidden: Vec<f64> = (0..n)
            .flat_map(|e| common::hidden(&spec, v, &theta, &x[e * 4..(e + 1) * 4]))
            .collect();
        let reg = SoftmaxRegression {
            x: hidden,
            y,
            d: 6,
            k: 3,
        };
        let analytic = reg.analytic_hessian(&theta[head_w..]);
        let m = reg.dim();
        let err = rel_err(&block(&h, head_w, m), &analytic);
        let fd_err = rel_err(&block(&fd, head_w, m), &analytic);
        eprintln!(
            "{v}: head block exact {err:.2e}, FD {fd_err:.2e} relative (max|H| {:.3}); \
             asymmetry exact {:.2e}, FD {:.2e}",
            max_abs(&analytic),
            h.asymmetry,
            fd.asymmetry
        );
        assert!(err < 1e-13, "{v}: exact vs analytic {err:e}");
        assert!(fd_err < 1e-6, "{v}: FD vs analytic {fd_err:e}");
        assert!(
            h.asymmetry < 1e-14,
            "{v}: exact asymmetry {:e}",
            h.asymmetry
        );
        assert!(fd.asymmetry < 1e-8, "{v}: FD asymmetry {:e}", fd.asymmetry);
        assert_eq!(h.gradient_evals, 0);
        assert_eq!(fd.gradient_evals, 2 * theta.len());
        assert!(max_abs(&analytic) > 1e-2, "{v}: a vacuous oracle");
    }
}

// ---------------------------------------------------------------------------------------
// 2. The exact dense Hessian against the finite-difference one, whole matrix.
// ---------------------------------------------------------------------------------------

/// Depth-2 tanh MLPs: residual, plain, and residual with learned scales (moved off their
/// common start). docs/method.md, "Error": at fd_step 1e-5 the central difference carries a
/// truncation error ~1e-10 relative and rounding ~ε‖g‖/h ≈ 2e-11 ‖g‖ per entry (tanh is
/// smooth). 1e-8 relative to max|H| leaves ~two orders above that, and is far below any real
/// disagreement (a wrong term is of the order of the entries).
///
/// Eigenvalues: with `E = H_fd − H_exact` (both symmetrised), Weyl's inequality gives
/// `|λ_i(H_fd) − λ_i(H_exact)| ≤ ‖E‖₂ ≤ ‖E‖_F`, so each difference must lie within the
/// measured `‖E‖_F` plus the eigensolvers' own rounding (`n ε max|λ|` each side, ~1e-13
/// relative here; 1e-12·max|λ| allowed). Also asserted at the entry tolerance's order,
/// 1e-8·max|λ|, as the brief asks.
#[test]
fn exact_dense_hessian_agrees_with_finite_differences() {
    let mut cases = Vec::new();
    for (variant, learned) in [
        (Variant::Residual, false),
        (Variant::Plain, false),
        (Variant::Residual, true),
    ] {
        let spec = ModelSpec {
            inputs: 3,
            width: 5,
            depth: 2,
            classes: 3,
            activation: Activation::Tanh,
            alpha: 0.7,
            learned_alpha: learned,
            transformer: None,
        };
        cases.push((spec, variant));
    }
    for (i, (spec, variant)) in cases.into_iter().enumerate() {
        let mut rng = ChaCha8Rng::seed_from_u64(40 + i as u64);
        let n = 12;
        let x: Vec<f64> = (0..n * spec.inputs)
            .map(|_| rng.gen_range(-1.0..1.0))
            .collect();
        let y: Vec<usize> = (0..n).map(|_| rng.gen_range(0..spec.classes)).collect();
        let theta0 = spec.init(&mut rng);
        let mut theta = spec.theta_for(variant, &theta0);
        for a in &mut theta[theta0.len()..] {
            *a = rng.gen_range(0.3..1.2);
        }
        let name = format!(
            "{variant}{}",
            if spec.learned_alpha { " learned" } else { "" }
        );
        let net = Network::new(&spec, variant);
        assert_eq!(net.dim(), theta.len(), "{name}");
        let batch = net.prepare(&x, &y);
        let h = exact_dense(&net, &theta, &batch);
        let fd = fd_dense(&net, &theta, &batch);
        let scale = max_abs(&h.data);
        let entry = max_diff(&fd.data, &h.data);
        assert!(scale > 1e-3, "{name}: a vacuous Hessian");
        let ev = h.eigenvalues().unwrap();
        let ev_fd = fd.eigenvalues().unwrap();
        let lmax = max_abs(&ev);
        let ev_diff = max_diff(&ev_fd, &ev);
        let frob = fd
            .data
            .iter()
            .zip(&h.data)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            .sqrt();
        eprintln!(
            "{name}: dim {} max|H| {scale:.3} entries {:.2e} rel, ‖E‖_F {frob:.2e}, \
             eigenvalues {ev_diff:.2e} abs = {:.2e} of max|λ| {lmax:.3}; asymmetry exact {:.2e} FD {:.2e}",
            h.n,
            entry / scale,
            ev_diff / lmax,
            h.asymmetry,
            fd.asymmetry
        );
        assert!(
            entry <= 1e-8 * scale,
            "{name}: exact vs FD entries {:e} relative",
            entry / scale
        );
        assert!(
            ev_diff <= frob + 1e-12 * lmax,
            "{name}: eigenvalues moved by {ev_diff:e}, more than ‖E‖_F = {frob:e} (Weyl)"
        );
        assert!(
            ev_diff <= 1e-8 * lmax,
            "{name}: eigenvalues {:e} of max|λ|",
            ev_diff / lmax
        );
        assert!(
            h.asymmetry < 1e-14,
            "{name}: exact asymmetry {:e}",
            h.asymmetry
        );
    }
}

// ---------------------------------------------------------------------------------------
// 3. Experiment level: records, replay, summary.
// ---------------------------------------------------------------------------------------

/// 4 → 6 → 6 ×2 → 2 tanh, 128 parameters (tests/experiment.rs's `small_config`), teacher
/// data: a run takes well under a second.
fn config(products: &str) -> String {
    format!(
        r#"
name = "exact-spectrum"
seed = 5
[data]
source = "teacher"
samples = 60
features = 4
eval_fraction = 0.25
[model]
width = 6
depth = 2
activation = "tanh"
alpha = 0.5
[train]
epochs = 3
batch_size = 8
lr = 0.01
[hessian]
method = "dense"
products = "{products}"
[prune]
ratios = [0.5]
"#
    )
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_resprune-tui"))
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Writes `config` into `dir`, runs it there; returns the record's path and `run`'s stdout.
fn run_config(dir: &Path, config: &str) -> (PathBuf, String) {
    let cfg = dir.join("exact-spectrum.toml");
    std::fs::write(&cfg, config).unwrap();
    let out = bin()
        .arg("run")
        .arg(&cfg)
        .arg("--out")
        .arg(dir)
        .args(["--quiet", "--threads", "2"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("record: "))
        .unwrap_or_else(|| panic!("no record line in:\n{stdout}"));
    (PathBuf::from(line.trim()), stdout)
}

/// The same experiment with exact and with finite-difference products. Training does not
/// depend on `[hessian]`, so both records hold the same trained `theta` (checked through the
/// histories) and their dense eigenvalues differ only by the finite-difference error `E`.
///
/// Eigenvalue tolerance: Weyl bounds each eigenvalue's move by `‖E‖₂`; the FD record's
/// `noise_floor = asymmetry · max|λ|` is the project's estimate of that norm (docs/method.md,
/// "Noise floor": the asymmetric part is a sample of `E`, scaled up by `max|λ| / max|H| ≥ 1`;
/// about 12 times the largest noise eigenvalue on the article model). It is an estimate, not
/// a bound, so 10× is allowed — the same factor by which `RESOLVED_GAP` lets the floor
/// underestimate the noise — and the exact side's own error (rounding) is ~1e-16 relative.
#[test]
fn exact_and_finite_difference_records_of_one_experiment() {
    let dir = tempfile::tempdir().unwrap();
    let (exact_dir, fd_dir) = (dir.path().join("exact"), dir.path().join("fd"));
    std::fs::create_dir_all(&exact_dir).unwrap();
    std::fs::create_dir_all(&fd_dir).unwrap();
    let (exact_path, run_out) = run_config(&exact_dir, &config("exact"));
    let (fd_path, fd_run_out) = run_config(&fd_dir, &config("finite_differences"));
    let exact = record::load(&exact_path).unwrap();
    let fd = record::load(&fd_path).unwrap();
    assert_eq!(exact.config.hessian.products, ProductsChoice::Exact);
    assert_eq!(
        fd.config.hessian.products,
        ProductsChoice::FiniteDifferences
    );
    assert_eq!(exact.model.params, 128);

    for v in Variant::BOTH {
        let (er, fr) = (exact.variant(v), fd.variant(v));
        assert_eq!(er.history, fr.history, "{v}: training differs");
        let e = er.spectrum.as_ref().unwrap();
        let f = fr.spectrum.as_ref().unwrap();
        assert_eq!(e.method, SpectrumMethod::Dense);
        assert_eq!(e.products, Products::Exact, "{v}");
        assert_eq!(e.fd_step, 0.0, "{v}");
        assert_eq!(e.gradient_evals, 0, "{v}");
        assert_eq!(f.products, Products::FiniteDifferences, "{v}");
        assert_eq!(f.fd_step, 1e-5, "{v}");
        assert!(
            f.gradient_evals >= 2 * f.params,
            "{v}: {}",
            f.gradient_evals
        );
        assert_eq!(e.eigenvalues.len(), 128);
        assert_eq!(f.eigenvalues.len(), 128);
        let floor = f.noise_floor.unwrap();
        let diff = max_diff(&e.eigenvalues, &f.eigenvalues);
        let lmax = max_abs(&e.eigenvalues);
        let e_asym = e.asymmetry.unwrap();
        eprintln!(
            "{v}: eigenvalues exact vs FD {diff:.2e} (max|λ| {lmax:.3}); FD floor {floor:.2e} \
             (ratio {:.3}); exact floor {:.2e}, asymmetry exact {e_asym:.2e} FD {:.2e}",
            diff / floor,
            e.noise_floor.unwrap(),
            f.asymmetry.unwrap()
        );
        assert!(floor > 0.0, "{v}: a finite-difference floor of 0");
        assert!(
            diff <= 10.0 * floor,
            "{v}: eigenvalues differ by {diff:e}, more than 10 x the FD noise floor {floor:e}"
        );
        // the exact floor is rounding: asymmetry ~1e-16, far below the FD one
        assert!(e_asym < 1e-14, "{v}: exact asymmetry {e_asym:e}");
        assert!(e.noise_floor.unwrap() < floor, "{v}");
    }

    // run's summary says what the floor is
    for out in [&run_out, &show(&exact_path)] {
        assert!(out.contains("exact products"), "{out}");
        assert!(out.contains("rounding floor"), "{out}");
        assert!(out.contains("negative (beyond rounding)"), "{out}");
        assert!(!out.contains("FD noise floor"), "{out}");
    }
    for out in [&fd_run_out, &show(&fd_path)] {
        assert!(!out.contains("exact products"), "{out}");
        assert!(out.contains("FD noise floor"), "{out}");
    }

    // replay at --tolerance 0: the exact products are deterministic at a given thread count
    let stdout = replay_identically(&exact_path);
    assert!(
        stdout.contains("values match") && stdout.contains("exactly"),
        "{stdout}"
    );
    let replayed: Vec<PathBuf> = record::list(&exact_dir)
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| *p != exact_path)
        .collect();
    assert_eq!(replayed.len(), 1, "{replayed:?}");
    let new = record::load(&replayed[0]).unwrap();
    for v in Variant::BOTH {
        let (a, b) = (
            exact.variant(v).spectrum.as_ref().unwrap(),
            new.variant(v).spectrum.as_ref().unwrap(),
        );
        assert_eq!(a, b, "{v}: the replayed spectrum differs");
    }
}

/// A config without `hessian.products` is `auto`: for the MLP the very numbers of
/// `products = "exact"` (same training, same products, same thread count: bit for bit), a
/// record of the current schema that keeps `auto` and replays at `--tolerance 0`.
#[test]
fn a_config_without_the_key_gets_exact_products_for_the_mlp() {
    let dir = tempfile::tempdir().unwrap();
    let (auto_dir, exact_dir) = (dir.path().join("auto"), dir.path().join("exact"));
    std::fs::create_dir_all(&auto_dir).unwrap();
    std::fs::create_dir_all(&exact_dir).unwrap();
    let without = config("exact").replace("products = \"exact\"\n", "");
    assert!(!without.contains("products"), "{without}");
    let (auto_path, run_out) = run_config(&auto_dir, &without);
    let (exact_path, _) = run_config(&exact_dir, &config("exact"));
    let auto = record::load(&auto_path).unwrap();
    let exact = record::load(&exact_path).unwrap();
    assert_eq!(auto.schema_version, record::SCHEMA_VERSION);
    assert_eq!(auto.config.hessian.products, ProductsChoice::Auto);
    let written = std::fs::read_to_string(&auto_path).unwrap();
    assert!(
        written.contains("products = \"auto\""),
        "the record keeps the choice"
    );
    for v in Variant::BOTH {
        let (a, e) = (
            auto.variant(v).spectrum.as_ref().unwrap(),
            exact.variant(v).spectrum.as_ref().unwrap(),
        );
        assert_eq!(a.products, Products::Exact, "{v}");
        assert_eq!(a, e, "{v}: auto and exact differ");
        assert_eq!(
            auto.variant(v).pruning,
            exact.variant(v).pruning,
            "{v}: the pruning rows differ"
        );
    }
    assert!(run_out.contains("exact products"), "{run_out}");
    replay_identically(&auto_path);
}

/// `resprune-tui replay RECORD --tolerance 0`: exits 0 saying every number is identical;
/// its stdout.
fn replay_identically(path: &Path) -> String {
    let out = bin()
        .arg("replay")
        .arg(path)
        .args(["--tolerance", "0", "-q"])
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("every number is identical"), "{stdout}");
    stdout
}

/// `resprune-tui show RECORD`'s stdout.
fn show(path: &Path) -> String {
    let out = bin().arg("show").arg(path).output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    stdout
}

// ---------------------------------------------------------------------------------------
// 4. Records from before the key.
// ---------------------------------------------------------------------------------------

#[test]
fn a_record_from_before_the_key_reads_as_finite_differences() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/article-record.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("products"), "the fixture has the key now");
    let r: Record = record::load(&path).unwrap();
    assert!(r.schema_version < 4, "the fixture is from before `auto`");
    // absent now means `auto`, but then it meant the only products there were: a replay
    // must difference gradients again
    assert_eq!(r.config.hessian.products, ProductsChoice::FiniteDifferences);
    for v in Variant::BOTH {
        let s = r.variant(v).spectrum.as_ref().unwrap();
        assert_eq!(s.products, Products::FiniteDifferences, "{v}");
        // and the step it did use is still there
        assert!(s.fd_step > 0.0, "{v}");
    }
    let summary = resprune::cli::summary::render(&r);
    assert!(summary.contains("FD noise floor"), "{summary}");
    assert!(!summary.contains("exact products"), "{summary}");
}

/// The rule is by schema: a schema-3 record (structured pruning, before `auto`) without the
/// key is finite differences too, and the same text stamped with the current schema reads
/// the key's absence as `auto` — which for this MLP means exact products, so the loader
/// refuses the stamped record's finite-difference spectra as not holding together.
#[test]
fn the_absent_key_is_finite_differences_before_schema_4_and_auto_from_it() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/structured-record.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("schema_version = 3\n"),
        "the fixture's schema moved"
    );
    assert!(!text.contains("products"), "the fixture has the key now");
    let old = record::parse(&text, "structured-record.toml").unwrap();
    assert_eq!(
        old.config.hessian.products,
        ProductsChoice::FiniteDifferences
    );
    let stamped = text.replacen(
        "schema_version = 3",
        &format!("schema_version = {}", record::SCHEMA_VERSION),
        1,
    );
    let err = record::parse(&stamped, "stamped.toml")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("`residual.spectrum.products`: is finite_differences but config.hessian.products = \"auto\" gives exact"),
        "{err}"
    );
    // with the key written out it holds together again
    let explicit = stamped.replacen(
        "[config.hessian]\n",
        "[config.hessian]\nproducts = \"finite_differences\"\n",
        1,
    );
    assert_ne!(
        explicit, stamped,
        "no [config.hessian] table in the fixture"
    );
    let r = record::parse(&explicit, "explicit.toml").unwrap();
    assert_eq!(r.config.hessian.products, ProductsChoice::FiniteDifferences);
}

// ---------------------------------------------------------------------------------------
// 5. Lanczos on exact products.
// ---------------------------------------------------------------------------------------

/// A 313-parameter tanh MLP (5 → 10 → 10 ×2 → 3, residual): `method = "lanczos"` with exact
/// products against every eigenvalue of the exact dense Hessian.
///
/// Tolerance: Lanczos stops once every wanted Ritz value has residual `‖Hy − θy‖ ≤ tol ·
/// max(1, |θ|max)`, and for a symmetric `H` some eigenvalue lies within that residual of each
/// Ritz value; with full reorthogonalisation and a converged run the k extreme Ritz values
/// are the k extreme eigenvalues. So `|θ_i − λ_i| ≤ tol · max(1, |λ|max)` (plus rounding of
/// the dense eigensolver, ~1e-13). The extreme Ritz values also interlace: `θ_top ≤ λ_max`,
/// `θ_bottom ≥ λ_min` up to rounding.
#[test]
fn lanczos_on_exact_products_matches_the_dense_exact_eigenvalues() {
    let spec = ModelSpec {
        inputs: 5,
        width: 10,
        depth: 2,
        classes: 3,
        activation: Activation::Tanh,
        alpha: 0.5,
        learned_alpha: false,
        transformer: None,
    };
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let n = 40;
    let x: Vec<f64> = (0..n * spec.inputs)
        .map(|_| rng.gen_range(-1.0..1.0))
        .collect();
    let y: Vec<usize> = (0..n).map(|_| rng.gen_range(0..spec.classes)).collect();
    let theta = spec.init(&mut rng);
    assert_eq!(theta.len(), 313);
    let net = Network::new(&spec, Variant::Residual);
    let batch = net.prepare(&x, &y);

    let cfg = HessianConfig {
        method: HessianMethod::Lanczos,
        products: ProductsChoice::Exact,
        ..Default::default()
    };
    let opts = SpectrumOptions {
        cfg: &cfg,
        seed: 3,
        layers: Vec::new(),
        check: None,
        basis: false,
    };
    let s = spectrum(&net, &theta, &batch, &opts, &never(), &|_| {})
        .unwrap()
        .spectrum;
    assert_eq!(s.method, SpectrumMethod::Lanczos);
    assert_eq!(s.products, Products::Exact);
    assert_eq!(s.gradient_evals, 0);
    assert_eq!(s.fd_step, 0.0);
    let lz = s.lanczos.as_ref().unwrap();
    assert!(
        lz.converged,
        "Lanczos did not converge in {} steps",
        lz.steps
    );
    assert_eq!(lz.top.len(), cfg.top_k);
    assert_eq!(lz.bottom.len(), cfg.bottom_k);

    let dense_cfg = HessianConfig {
        method: HessianMethod::Dense,
        products: ProductsChoice::Exact,
        ..Default::default()
    };
    let dense = spectrum(
        &net,
        &theta,
        &batch,
        &SpectrumOptions {
            cfg: &dense_cfg,
            ..opts
        },
        &never(),
        &|_| {},
    )
    .unwrap()
    .spectrum;
    assert_eq!(dense.gradient_evals, 0);
    let ev = &dense.eigenvalues;
    assert_eq!(ev.len(), 313);
    let lmax = max_abs(ev);
    let tol = cfg.tol * lmax.max(1.0) + 1e-13 * lmax;
    let mut worst = 0.0f64;
    for (i, r) in lz.top.iter().enumerate() {
        let want = ev[ev.len() - 1 - i];
        let err = (r.value - want).abs();
        worst = worst.max(err);
        assert!(
            err <= tol,
            "top {i}: Ritz {} vs dense {want}: {err:e} > {tol:e}",
            r.value
        );
    }
    for (i, r) in lz.bottom.iter().enumerate() {
        let want = ev[i];
        let err = (r.value - want).abs();
        worst = worst.max(err);
        assert!(
            err <= tol,
            "bottom {i}: Ritz {} vs dense {want}: {err:e} > {tol:e}",
            r.value
        );
    }
    let round = 1e-13 * lmax;
    assert!(lz.top[0].value <= ev[ev.len() - 1] + round);
    assert!(lz.bottom[0].value >= ev[0] - round);
    assert_eq!(s.stats.max, lz.top[0].value);
    assert_eq!(s.stats.min, lz.bottom[0].value);
    eprintln!(
        "lanczos: {} steps, worst |Ritz − dense| {worst:.2e} (tol {tol:.2e}); top {:.6} bottom {:.3e}; \
         max residual {:.2e}",
        lz.steps,
        ev[ev.len() - 1],
        ev[0],
        lz.top
            .iter()
            .chain(&lz.bottom)
            .fold(0.0f64, |m, r| m.max(r.residual))
    );
}
