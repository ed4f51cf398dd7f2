//! `resprune-tui bench`: the HVP benchmark of `docs/performance.md` on any device, in one
//! command, so a GPU box without a Rust toolchain can time the binary it was given.
//!
//! The problem is `../shared/bench/peer.py` part (c): 784 -> 256 x 4 blocks -> 10, ReLU, batch
//! 1000, random data and init (466,698 parameters), residual and plain. The criterion bench
//! (`cargo bench --bench curvature`, group `hvp_466k`) times the same problem on the CPU.

use std::sync::atomic::AtomicBool;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::curvature::{self, BatchLoss, FdHvp, Hvp};
use crate::model::{Activation, Backend, ModelSpec, Network, Variant};

/// Relative step of the central-difference HVP in the bench (the config default `fd_step`).
pub const CENTRAL_STEP: f64 = 1e-5;

/// The bench problem: model, examples, labels, `theta` and a direction `v`.
pub struct HvpProblem {
    pub spec: ModelSpec,
    pub x: Vec<f64>,
    pub y: Vec<usize>,
    pub theta: Vec<f64>,
    pub v: Vec<f64>,
}

/// peer.py part (c), drawn from a fixed seed: same for every device and every run.
pub fn hvp_problem() -> HvpProblem {
    let spec = ModelSpec {
        inputs: 784,
        width: 256,
        depth: 4,
        classes: 10,
        activation: Activation::Relu,
        alpha: 1.0,
        learned_alpha: false,
        transformer: None,
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let n = 1000;
    let x: Vec<f64> = (0..n * spec.inputs)
        .map(|_| rng.sample(rand_distr::StandardNormal))
        .collect();
    let y: Vec<usize> = (0..n).map(|_| rng.gen_range(0..spec.classes)).collect();
    let theta = spec.init(&mut rng);
    let v: Vec<f64> = (0..theta.len())
        .map(|_| rng.sample(rand_distr::StandardNormal))
        .collect();
    HvpProblem {
        spec,
        x,
        y,
        theta,
        v,
    }
}

/// How many times to time each operation.
#[derive(Debug, Clone, Copy)]
pub struct BenchOptions {
    /// Timed repetitions of one gradient / one HVP (after one untimed warm-up).
    pub reps: usize,
    /// Timed repetitions of the Lanczos run (0 skips it).
    pub lanczos_reps: usize,
    /// Lanczos steps (full reorthogonalisation, no early stop).
    pub lanczos_steps: usize,
}

/// One timed operation.
#[derive(Debug, Clone, Serialize)]
pub struct BenchRow {
    pub variant: String,
    /// `gradient`, `hvp_central`, `hvp_forward`, `hvp_exact`, `lanczos_<steps>_forward`.
    pub what: String,
    pub reps: usize,
    pub median_s: f64,
    pub min_s: f64,
    /// Gradient evaluations per repetition.
    pub gradients: usize,
}

/// The whole bench's answer.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub device: String,
    pub threads: usize,
    pub params: usize,
    pub batch: usize,
    pub rows: Vec<BenchRow>,
    /// Top Ritz value of each variant's Lanczos run (a check that devices computed the same
    /// thing).
    pub top_eigenvalue: Vec<(String, f64)>,
}

/// Runs `f` `reps` times and returns its row: median and fastest time.
fn measure(
    variant: &str,
    what: &str,
    reps: usize,
    gradients: usize,
    mut f: impl FnMut(),
) -> BenchRow {
    let mut t: Vec<f64> = (0..reps)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed().as_secs_f64()
        })
        .collect();
    t.sort_by(f64::total_cmp);
    let m = t.len() / 2;
    let median_s = if t.len() % 2 == 1 {
        t[m]
    } else {
        0.5 * (t[m - 1] + t[m])
    };
    BenchRow {
        variant: variant.to_string(),
        what: what.to_string(),
        reps,
        median_s,
        min_s: t[0],
        gradients,
    }
}

/// Times gradient, central, forward and exact HVPs and a forward-difference Lanczos run for
/// both variants on `backend`; `progress` hears each row as it is measured.
pub fn run(
    backend: &Backend,
    device: &str,
    opts: BenchOptions,
    progress: &mut dyn FnMut(&BenchRow),
) -> BenchReport {
    let p = hvp_problem();
    // at least one timed repetition: a row always reports what it timed
    let reps = opts.reps.max(1);
    let mut rows = Vec::new();
    let mut top = Vec::new();
    let mut push = |row: BenchRow| {
        progress(&row);
        rows.push(row);
    };
    for variant in Variant::BOTH {
        let net = Network::on(&p.spec, variant, backend.clone());
        let batch = net.prepare(&p.x, &p.y);
        let loss = BatchLoss {
            net: &net,
            batch: &batch,
        };
        let name = variant.name();
        let mut grad = vec![0.0; p.theta.len()];
        net.loss_grad(&p.theta, &batch, &mut grad); // warm-up: kernels, allocations
        push(measure(name, "gradient", reps, 1, || {
            net.loss_grad(&p.theta, &batch, &mut grad);
        }));
        let mut out = vec![0.0; p.theta.len()];
        let mut central = FdHvp::new(&loss, &p.theta, CENTRAL_STEP);
        central.hvp(&p.v, &mut out);
        push(measure(name, "hvp_central", reps, 2, || {
            central.hvp(&p.v, &mut out)
        }));
        let mut forward = FdHvp::forward(&loss, &p.theta, crate::config::FORWARD_STEP);
        forward.hvp(&p.v, &mut out); // g(theta) is computed once and cached
        push(measure(name, "hvp_forward", reps, 1, || {
            forward.hvp(&p.v, &mut out)
        }));
        // exact products (hessian.products = "exact"): the pass at theta once, then no
        // gradient per product; computed on the host whatever the backend
        if let Ok(exact) = net.exact_hvp(&p.theta, &batch) {
            exact.hvp(&p.v, &mut out);
            push(measure(name, "hvp_exact", reps, 0, || {
                exact.hvp(&p.v, &mut out)
            }));
        }
        if opts.lanczos_reps > 0 && opts.lanczos_steps > 0 {
            let lz = curvature::lanczos::LanczosOptions {
                steps: opts.lanczos_steps,
                top_k: 5,
                bottom_k: 5,
                tol: 0.0,
                seed: 0,
            };
            let never = AtomicBool::new(false);
            let mut top_value = f64::NAN;
            let what = format!("lanczos_{}_forward", opts.lanczos_steps);
            push(measure(
                name,
                &what,
                opts.lanczos_reps,
                opts.lanczos_steps + 1,
                || {
                    let mut hvp = FdHvp::forward(&loss, &p.theta, crate::config::FORWARD_STEP);
                    let r = curvature::lanczos::lanczos(&mut hvp, &lz, &never)
                        .expect("the bench's Lanczos run is never cancelled");
                    top_value = r.top.first().map(|e| e.value).unwrap_or(f64::NAN);
                },
            ));
            top.push((name.to_string(), top_value));
        }
    }
    BenchReport {
        device: device.to_string(),
        threads: rayon::current_num_threads(),
        params: p.theta.len(),
        batch: p.y.len(),
        rows,
        top_eigenvalue: top,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_problem_is_peer_py_part_c() {
        let p = hvp_problem();
        // peer.py prints 466,698 parameters for DeepMLP: 784*256+256 + 4*(256*256+256) + 256*10+10
        assert_eq!(p.theta.len(), 466_698);
        assert_eq!(p.v.len(), p.theta.len());
        assert_eq!(p.x.len(), 1000 * 784);
        assert!(p.y.iter().all(|&c| c < 10));
        // drawn from a fixed seed: the same on every device and run
        let q = hvp_problem();
        assert_eq!(p.theta, q.theta);
        assert_eq!(p.x, q.x);
    }
}
