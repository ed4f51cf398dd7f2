//! Benchmarks of the curvature layer and of a whole run.
//!
//! `cargo bench --bench curvature` ; compare with `python3 ../shared/bench/peer.py` in the same
//! sitting (docs/performance.md has the numbers and the commands).

use std::path::Path;
use std::sync::atomic::AtomicBool;

use criterion::{criterion_group, criterion_main, Criterion};
use resprune::config::Config;
use resprune::curvature::{self, BatchLoss, FdHvp, Hvp, LossGrad};
use resprune::data;
use resprune::experiment;
use resprune::model::{Network, Variant};
use resprune::train;

// the binary's allocator (src/main.rs says why), so the bench times what users run
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn article() -> Config {
    Config::load(Path::new("experiments/article.toml")).expect("experiments/article.toml")
}

/// The article's trained pair (682 parameters): dense Hessian (1364 gradients) + eigenvalues.
fn dense_article(c: &mut Criterion) {
    let mut cfg = article();
    // the `{v}/dense_hessian+eigenvalues` rows are by finite differences (the article's
    // config leaves `auto`, exact for the MLP); the exact rows say so in their names
    cfg.hessian.products = resprune::config::ProductsChoice::FiniteDifferences;
    let split = data::load(&cfg.data, cfg.seed).unwrap();
    let spec = experiment::model_spec(&cfg, &split.summary);
    let mut g = c.benchmark_group("article_682");
    g.sample_size(20);
    let mut members = Vec::new();
    for v in Variant::BOTH {
        let net = Network::new(&spec, v);
        let mut theta = experiment::initial_theta(cfg.seed, &spec);
        let eval = net.prepare(&split.eval.x, &split.eval.y);
        let session = train::Session {
            cfg: &cfg.train,
            train: &split.train,
            eval: &eval,
            seed: cfg.seed,
            mask: None,
        };
        let never = AtomicBool::new(false);
        train::train(
            &net,
            &mut theta,
            &session,
            &mut Vec::new(),
            &never,
            &mut |_| {},
        )
        .unwrap();
        let batch = net.prepare(&split.train.x, &split.train.y);
        members.push((net.clone(), theta.clone(), batch.clone()));
        let never = AtomicBool::new(false);
        let opts = curvature::SpectrumOptions {
            cfg: &cfg.hessian,
            seed: 0,
            layers: Vec::new(),
            check: None,
            basis: false,
        };
        g.bench_function(format!("{v}/dense_hessian+eigenvalues"), |b| {
            b.iter(|| curvature::spectrum(&net, &theta, &batch, &opts, &never, &|_| {}).unwrap())
        });
        // the same with exact products (hessian.products = "exact")
        let exact_cfg = resprune::config::HessianConfig {
            products: resprune::config::ProductsChoice::Exact,
            ..cfg.hessian.clone()
        };
        let exact_opts = curvature::SpectrumOptions {
            cfg: &exact_cfg,
            seed: 0,
            layers: Vec::new(),
            check: None,
            basis: false,
        };
        g.bench_function(format!("{v}/exact_dense_hessian+eigenvalues"), |b| {
            b.iter(|| {
                curvature::spectrum(&net, &theta, &batch, &exact_opts, &never, &|_| {}).unwrap()
            })
        });
        g.bench_function(format!("{v}/exact_dense_hessian"), |b| {
            b.iter(|| {
                let exact = net.exact_hvp(&theta, &batch).unwrap();
                curvature::dense_hessian_exact(&exact, &never, &|_| {}).unwrap()
            })
        });
        let loss = BatchLoss {
            net: &net,
            batch: &batch,
        };
        let mut grad = vec![0.0; theta.len()];
        g.bench_function(format!("{v}/gradient"), |b| {
            b.iter(|| loss.net.loss_grad(&theta, &batch, &mut grad))
        });
        // the dense Hessian alone, in blocks (as the spectrum runs it) and one gradient at a
        // time (the oracle's block hidden), to show what batching the gradients buys
        g.bench_function(format!("{v}/dense_hessian_blocks"), |b| {
            b.iter(|| curvature::dense_hessian(&loss, &theta, 1e-5, &never, &|_| {}).unwrap())
        });
        // the eigen-solve alone, on this model's Hessian
        let h = curvature::dense_hessian(&loss, &theta, 1e-5, &never, &|_| {}).unwrap();
        g.bench_function(format!("{v}/eigenvalues"), |b| {
            b.iter(|| h.eigenvalues().unwrap())
        });
        // its two halves: faer's tridiagonalisation, then the QL/QR on T
        let (d, e) = h.tridiagonal();
        g.bench_function(format!("{v}/eigenvalues_of_t"), |b| {
            b.iter(|| {
                let (mut d, mut e) = (d.clone(), e.clone());
                curvature::tridiagonal::eigenvalues(&mut d, &mut e).unwrap();
                d
            })
        });
        g.bench_function(format!("{v}/tridiagonalisation"), |b| {
            b.iter(|| h.tridiagonal())
        });
        // what the eigenvalues took before curvature::tridiagonal: faer's values-only solver
        g.bench_function(format!("{v}/eigenvalues_faer"), |b| {
            b.iter(|| faer_eigenvalues(&h))
        });
        g.bench_function(format!("{v}/dense_hessian_columns"), |b| {
            b.iter(|| {
                curvature::dense_hessian(&OneByOne(&loss), &theta, 1e-5, &never, &|_| {}).unwrap()
            })
        });
        let k = loss.block_size();
        let thetas: Vec<f64> = (0..k).flat_map(|_| theta.iter().copied()).collect();
        let mut grads = vec![0.0; thetas.len()];
        g.bench_function(format!("{v}/gradient_block_{k}"), |b| {
            b.iter(|| loss.loss_grad_block(&thetas, &mut grads))
        });
        // 40 Hutchinson probes (no early stop): in blocks of products, and one at a time
        let opts = curvature::hutchinson::HutchinsonOptions {
            min_samples: 40,
            max_samples: 40,
            tol: 0.0,
            seed: 1,
        };
        g.bench_function(format!("{v}/hutchinson_40_blocks"), |b| {
            b.iter(|| {
                let mut h = FdHvp::new(&loss, &theta, 1e-5);
                curvature::hutchinson::hutchinson(&mut h, &opts, &never).unwrap()
            })
        });
        g.bench_function(format!("{v}/hutchinson_40_single"), |b| {
            b.iter(|| {
                let hidden = OneByOne(&loss);
                let mut h = FdHvp::new(&hidden, &theta, 1e-5);
                curvature::hutchinson::hutchinson(&mut h, &opts, &never).unwrap()
            })
        });
    }
    // both models side by side, as a run computes them (without the eigenvector basis the
    // run adds for the mechanism): what the peers' `func.hessian`/`jit(hessian)` +
    // `eigvalsh` of both models are held against
    let never = AtomicBool::new(false);
    for products in [
        resprune::config::ProductsChoice::FiniteDifferences,
        resprune::config::ProductsChoice::Exact,
    ] {
        let hcfg = resprune::config::HessianConfig {
            products,
            ..cfg.hessian.clone()
        };
        let opts = curvature::SpectrumOptions {
            cfg: &hcfg,
            seed: 0,
            layers: Vec::new(),
            check: None,
            basis: false,
        };
        let one = |(net, theta, batch): &(Network, Vec<f64>, _)| {
            curvature::spectrum(net, theta, batch, &opts, &never, &|_| {}).unwrap()
        };
        g.bench_function(
            format!("pair/{}_dense_hessian+eigenvalues", products.name()),
            |b| b.iter(|| rayon::join(|| one(&members[0]), || one(&members[1]))),
        );
    }
    g.finish();
}

/// faer's sequential values-only self-adjoint eigen-solve (tridiagonalisation and its own
/// QR iteration on `T`).
fn faer_eigenvalues(h: &curvature::DenseHessian) -> Vec<f64> {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::evd;
    let n = h.n;
    let m = faer::Mat::<f64>::from_fn(n, n, |i, j| h.get(i, j));
    let mut s = faer::diag::Diag::<f64>::zeros(n);
    let par = faer::Par::Seq;
    let scratch = evd::self_adjoint_evd_scratch::<f64>(
        n,
        evd::ComputeEigenvectors::No,
        par,
        Default::default(),
    );
    evd::self_adjoint_evd(
        m.as_ref(),
        s.as_mut(),
        None,
        par,
        MemStack::new(&mut MemBuffer::new(scratch)),
        Default::default(),
    )
    .unwrap();
    s.column_vector().iter().copied().collect()
}

/// The QL/QR on a random tridiagonal of the article's size (entries uniform in ±1/2).
fn tridiagonal_random(c: &mut Criterion) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let n = 682;
    let d: Vec<f64> = (0..n).map(|_| rng.gen_range(-0.5..0.5)).collect();
    let e: Vec<f64> = (0..n - 1).map(|_| rng.gen_range(-0.5..0.5)).collect();
    let mut g = c.benchmark_group("tridiagonal");
    g.sample_size(20);
    g.bench_function("random_682", |b| {
        b.iter(|| {
            let (mut d, mut e) = (d.clone(), e.clone());
            curvature::tridiagonal::eigenvalues(&mut d, &mut e).unwrap();
            d
        })
    });
    g.finish();
}

/// A loss oracle without a block: one gradient per call.
struct OneByOne<'a, L: LossGrad>(&'a L);

impl<L: LossGrad> LossGrad for OneByOne<'_, L> {
    fn dim(&self) -> usize {
        self.0.dim()
    }
    fn loss_grad(&self, theta: &[f64], grad: &mut [f64]) -> f64 {
        self.0.loss_grad(theta, grad)
    }
}

/// `resprune-tui run experiments/article.toml` without writing the record.
fn whole_article_run(c: &mut Criterion) {
    let cfg = article();
    let mut g = c.benchmark_group("article_run");
    g.sample_size(10);
    g.bench_function("run", |b| {
        b.iter(|| experiment::run(&cfg, &experiment::quiet, &AtomicBool::new(false)).unwrap())
    });
    g.finish();
}

/// peer.py part (c): 784 -> 256 x 4 blocks -> 10, batch 1000, random data and init.
fn hvp_large(c: &mut Criterion) {
    let resprune::bench::HvpProblem {
        spec,
        x,
        y,
        theta,
        v,
    } = resprune::bench::hvp_problem();
    let mut g = c.benchmark_group("hvp_466k");
    g.sample_size(10);
    g.warm_up_time(std::time::Duration::from_millis(500));
    for variant in Variant::BOTH {
        let net = Network::new(&spec, variant);
        let batch = net.prepare(&x, &y);
        let loss = BatchLoss {
            net: &net,
            batch: &batch,
        };
        let mut out = vec![0.0; theta.len()];
        let mut hvp = FdHvp::new(&loss, &theta, resprune::bench::CENTRAL_STEP);
        g.bench_function(format!("{variant}/hvp"), |b| {
            b.iter(|| hvp.hvp(&v, &mut out))
        });
        // one gradient per product once g(theta) is cached (hessian.fd_scheme = "forward")
        let mut fwd = FdHvp::forward(&loss, &theta, resprune::config::FORWARD_STEP);
        fwd.hvp(&v, &mut out);
        g.bench_function(format!("{variant}/hvp_forward"), |b| {
            b.iter(|| fwd.hvp(&v, &mut out))
        });
        // exact (hessian.products = "exact"): the pass at theta once, then one product
        let exact = net.exact_hvp(&theta, &batch).unwrap();
        g.bench_function(format!("{variant}/hvp_exact"), |b| {
            b.iter(|| exact.hvp(&v, &mut out))
        });
        let mut grad = vec![0.0; theta.len()];
        g.bench_function(format!("{variant}/gradient"), |b| {
            b.iter(|| net.loss_grad(&theta, &batch, &mut grad))
        });
        // 100 Lanczos steps with full reorthogonalisation (tol 0: no early stop)
        let opts = curvature::lanczos::LanczosOptions {
            steps: 100,
            top_k: 5,
            bottom_k: 5,
            tol: 0.0,
            seed: 0,
        };
        let never = AtomicBool::new(false);
        g.bench_function(format!("{variant}/lanczos_100_steps"), |b| {
            b.iter(|| {
                let mut hvp = FdHvp::new(&loss, &theta, resprune::bench::CENTRAL_STEP);
                curvature::lanczos::lanczos(&mut hvp, &opts, &never).unwrap()
            })
        });
        g.bench_function(format!("{variant}/lanczos_100_steps_forward"), |b| {
            b.iter(|| {
                let mut hvp = FdHvp::forward(&loss, &theta, resprune::config::FORWARD_STEP);
                curvature::lanczos::lanczos(&mut hvp, &opts, &never).unwrap()
            })
        });
    }
    g.finish();
}

/// `experiments/reviews-transformer.toml`'s model (82k parameters) at its initial theta: a
/// gradient on the Hessian batch (256 sentences) and on a training minibatch (32), whole and
/// cut in two chunks (data-parallel), and an evaluation pass over the evaluation split.
fn transformer(c: &mut Criterion) {
    let cfg = Config::load(Path::new("experiments/reviews-transformer.toml"))
        .expect("experiments/reviews-transformer.toml");
    let split = data::load(&cfg.data, cfg.seed).unwrap();
    let spec = experiment::model_spec(&cfg, &split.summary);
    let mut g = c.benchmark_group("transformer_82k");
    g.sample_size(10);
    for v in Variant::BOTH {
        let net = Network::new(&spec, v);
        let theta = spec.theta_for(v, &experiment::initial_theta(cfg.seed, &spec));
        let mut grad = vec![0.0; theta.len()];
        for n in [32, 256] {
            let hess = split.train.head(n);
            for parts in [1, 2] {
                let b = net.prepare_in_chunks(&hess.x, &hess.y, parts);
                g.bench_function(format!("{v}/gradient_{n}/chunks_{parts}"), |bch| {
                    bch.iter(|| net.loss_grad(&theta, &b, &mut grad))
                });
            }
        }
        // whole, as `prepare` cuts it (one chunk per thread), and in eight
        let auto = net.prepare(&split.eval.x, &split.eval.y).chunks();
        let mut cuts = vec![1, auto, 8];
        cuts.dedup();
        for parts in cuts {
            let eval = net.prepare_in_chunks(&split.eval.x, &split.eval.y, parts);
            g.bench_function(format!("{v}/evaluate_{}/chunks_{parts}", eval.len()), |b| {
                b.iter(|| net.evaluate(&theta, &eval))
            });
        }
    }
    g.finish();
}

/// A transformer small enough for a dense Hessian (1,810 parameters: d = 8, 2 blocks of 2
/// heads, ff 16, 64 token ids, 8 positions), 64 random sentences: the dense Hessian in blocks
/// (the copies through attention together) and one gradient at a time.
fn transformer_dense(c: &mut Criterion) {
    use rand::{Rng, SeedableRng};
    use resprune::model::{Activation, ModelSpec, TransformerShape};
    let spec = ModelSpec {
        inputs: 8,
        width: 8,
        depth: 2,
        classes: 2,
        activation: Activation::Gelu,
        alpha: 1.0,
        learned_alpha: false,
        transformer: Some(TransformerShape {
            vocab: 64,
            max_len: 8,
            heads: 2,
            ff: 16,
        }),
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let n = 64;
    let mut x = vec![0.0; n * 8];
    for i in 0..n {
        for t in 0..rng.gen_range(3..=8) {
            x[i * 8 + t] = rng.gen_range(1..64) as f64;
        }
    }
    let y: Vec<usize> = (0..n).map(|_| rng.gen_range(0..2)).collect();
    let mut g = c.benchmark_group(format!("transformer_{}", spec.num_params()));
    g.sample_size(10);
    let never = AtomicBool::new(false);
    for v in Variant::BOTH {
        let net = Network::new(&spec, v);
        let theta = spec.theta_for(v, &spec.init(&mut rng));
        let batch = net.prepare(&x, &y);
        let loss = BatchLoss {
            net: &net,
            batch: &batch,
        };
        g.bench_function(format!("{v}/dense_hessian_blocks"), |b| {
            b.iter(|| curvature::dense_hessian(&loss, &theta, 1e-5, &never, &|_| {}).unwrap())
        });
        g.bench_function(format!("{v}/dense_hessian_columns"), |b| {
            b.iter(|| {
                curvature::dense_hessian(&OneByOne(&loss), &theta, 1e-5, &never, &|_| {}).unwrap()
            })
        });
        let mut grad = vec![0.0; theta.len()];
        g.bench_function(format!("{v}/gradient"), |b| {
            b.iter(|| net.loss_grad(&theta, &batch, &mut grad))
        });
        // per gradient in blocks of several sizes (64 sentences are cut into length
        // buckets, so the size rule takes one gradient at a time here)
        for k in [4, 8, 16, 64] {
            let thetas: Vec<f64> = (0..k).flat_map(|_| theta.iter().copied()).collect();
            let mut grads = vec![0.0; thetas.len()];
            g.bench_function(format!("{v}/gradient_block_{k}"), |b| {
                b.iter(|| loss.loss_grad_block(&thetas, &mut grads))
            });
        }
    }
    g.finish();
}

/// The article's MLP shape (10 inputs, 2 classes, ReLU, fixed scale 1) at `width` × `depth`.
fn article_shaped(width: usize, depth: usize) -> resprune::model::ModelSpec {
    resprune::model::ModelSpec {
        inputs: 10,
        width,
        depth,
        classes: 2,
        activation: resprune::model::Activation::Relu,
        alpha: 1.0,
        learned_alpha: false,
        transformer: None,
    }
}

/// 100 random examples of 10 features and 2 classes for [`article_shaped`], and the stream
/// they came from (the benches draw their thetas from it next).
fn article_examples() -> (Vec<f64>, Vec<usize>, rand_chacha::ChaCha8Rng) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let n = 100;
    let x: Vec<f64> = (0..n * 10).map(|_| rng.gen_range(-1.0..1.0)).collect();
    let y: Vec<usize> = (0..n).map(|_| rng.gen_range(0..2)).collect();
    (x, y, rng)
}

/// How the dense spectrum's cost grows: the article's MLP (10 inputs, 1 block, 2 classes,
/// 100 examples) at widths 20, 27, 38, 48 — 682, 1,109, 1,978 and 2,978 parameters — the
/// Hessian (2n gradients) and its eigenvalues timed apart, one model, all threads.
fn dense_sizes(c: &mut Criterion) {
    let (x, y, mut rng) = article_examples();
    let mut g = c.benchmark_group("dense_sizes");
    g.sample_size(10);
    let never = AtomicBool::new(false);
    for width in [20, 27, 38, 48] {
        let spec = article_shaped(width, 1);
        let net = Network::new(&spec, Variant::Residual);
        let theta = spec.init(&mut rng);
        let batch = net.prepare(&x, &y);
        let loss = BatchLoss {
            net: &net,
            batch: &batch,
        };
        let p = theta.len();
        g.bench_function(format!("{p}/hessian"), |b| {
            b.iter(|| curvature::dense_hessian(&loss, &theta, 1e-5, &never, &|_| {}).unwrap())
        });
        g.bench_function(format!("{p}/exact_hessian"), |b| {
            b.iter(|| {
                let exact = net.exact_hvp(&theta, &batch).unwrap();
                curvature::dense_hessian_exact(&exact, &never, &|_| {}).unwrap()
            })
        });
        let h = curvature::dense_hessian(&loss, &theta, 1e-5, &never, &|_| {}).unwrap();
        g.bench_function(format!("{p}/eigenvalues"), |b| {
            b.iter(|| h.eigenvalues().unwrap())
        });
    }
    g.finish();
}

/// MLP gradients in blocks of `k` copies against one at a time, per gradient (criterion's
/// throughput), for the article's shape and a deeper and a wider one, 100 examples: what sets
/// the CPU block budget (`model::dfdx_backend::CPU_MLP_BLOCK_FLOATS`). Run it at one thread
/// (`RAYON_NUM_THREADS=1`), as each dense-Hessian thread runs its blocks.
fn mlp_block_sizes(c: &mut Criterion) {
    use criterion::Throughput;
    let (x, y, mut rng) = article_examples();
    let mut g = c.benchmark_group("mlp_block_sizes");
    g.sample_size(10);
    for (width, depth) in [(20, 1), (20, 4), (48, 1)] {
        let spec = article_shaped(width, depth);
        let net = Network::new(&spec, Variant::Residual);
        let theta = spec.init(&mut rng);
        let batch = net.prepare(&x, &y);
        for k in [1, 2, 4, 8, 16, 32] {
            let thetas: Vec<f64> = (0..k).flat_map(|_| theta.iter().copied()).collect();
            let mut grads = vec![0.0; thetas.len()];
            g.throughput(Throughput::Elements(k as u64));
            g.bench_function(format!("w{width}_d{depth}/k{k}"), |b| {
                b.iter(|| net.loss_grad_block_at_most(&thetas, &batch, &mut grads, k))
            });
        }
    }
    g.finish();
}

criterion_group!(
    benches,
    tridiagonal_random,
    mlp_block_sizes,
    dense_sizes,
    dense_article,
    whole_article_run,
    hvp_large,
    transformer,
    transformer_dense
);
criterion_main!(benches);
