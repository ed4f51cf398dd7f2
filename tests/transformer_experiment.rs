//! The transformer through the whole experiment: curvature and pruning work on it unchanged
//! (issue #7, must-hold 4).

use std::sync::atomic::AtomicBool;

use resprune::config::Config;
use resprune::experiment;

fn config(extra: &str) -> Config {
    Config::parse(
        &format!(
            r#"
name = "tiny-transformer"
seed = 1
[data]
source = "movie_reviews"
encoding = "tokens"
max_len = 6
max_vocab = 30
min_count = 1
limit = 120
eval_fraction = 0.25
[model]
kind = "transformer"
width = 4
depth = 1
heads = 2
ff = 4
activation = "gelu"
[train]
epochs = 1
batch_size = 30
lr = 0.01
[hessian]
method = "dense"
per_layer = true
[prune]
ratios = [0.5]
{extra}
"#
        ),
        "tiny.toml",
    )
    .unwrap()
}

#[test]
fn a_small_transformer_gets_a_dense_spectrum_with_attention_and_mlp_blocks_and_is_pruned() {
    let r = experiment::run(&config(""), &experiment::quiet, &AtomicBool::new(false)).unwrap();
    assert_eq!(r.model.kind, resprune::config::ModelKind::Transformer);
    assert_eq!(r.data.vocab_size, Some(32));
    // embed 32x4 + pos 6x4 + attn (2x4 norm + 4 x (16 + 4)) + mlp (8 + 16 + 4 + 16 + 4)
    // + final norm 8 + head 2x4 + 2 = 128 + 24 + 88 + 48 + 8 + 10
    let params = 128 + 24 + 88 + 48 + 8 + 10;
    assert_eq!(r.model.params, params);
    for v in [&r.residual, &r.plain] {
        let s = v.spectrum.as_ref().unwrap();
        assert_eq!(s.method, resprune::curvature::SpectrumMethod::Dense);
        assert_eq!(s.eigenvalues.len(), params);
        // `hessian.products` left at `auto`: the transformer has no exact products, so its
        // columns are differences of gradients (two per column at least)
        assert_eq!(
            r.config.hessian.products,
            resprune::config::ProductsChoice::Auto
        );
        assert_eq!(s.products, resprune::config::Products::FiniteDifferences);
        assert_eq!(s.fd_step, r.config.hessian.fd_step);
        assert!(s.gradient_evals >= 2 * params, "{}", s.gradient_evals);
        // a smooth model: the FD Hessian is symmetric to rounding, no kink retry
        assert!(s.asymmetry.unwrap() < 1e-6, "{:?}", s.asymmetry);
        let layers: Vec<(&str, usize)> = s
            .per_layer
            .iter()
            .map(|l| (l.layer.as_str(), l.params))
            .collect();
        assert_eq!(
            layers,
            [
                ("embed", 128),
                ("pos", 24),
                ("blocks.0.attn", 88),
                ("blocks.0.mlp", 48),
                ("final_norm", 8),
                ("head", 10)
            ]
        );
        // magnitude pruning takes weight matrices only: 4 x 16 + 16 + 16 + 8 = 104
        let row = &v.pruning[0];
        assert_eq!(row.eligible, 104);
        assert_eq!(row.pruned, 52);
    }
    // same theta0, different skip: the spectra differ
    assert_ne!(
        r.residual.spectrum.as_ref().unwrap().stats.variance,
        r.plain.spectrum.as_ref().unwrap().stats.variance
    );
}

#[test]
fn embeddings_are_pruned_only_when_asked() {
    let r = experiment::run(
        &config("include_embeddings = true"),
        &experiment::quiet,
        &AtomicBool::new(false),
    )
    .unwrap();
    // the 104 weights plus the 128 + 24 embedding entries
    assert_eq!(r.residual.pruning[0].eligible, 104 + 152);
}

#[test]
fn each_seed_records_its_own_vocabulary_and_parameter_count() {
    // no vocabulary cap: each seed's training split brings its own words
    let mut cfg = config("");
    cfg.data.max_vocab = 100_000;
    cfg.data.min_count = 2; // keeps the model small enough for the dense Hessian
    cfg.replicates = 2;
    let seeds = cfg.seed_list();
    assert_eq!(seeds.len(), 2);
    let vocab = |seed: u64| {
        resprune::data::load(&cfg.data, seed)
            .unwrap()
            .summary
            .vocab_size
            .unwrap()
    };
    let (v0, v1) = (vocab(seeds[0]), vocab(seeds[1]));
    assert_ne!(
        v0, v1,
        "the two splits should differ in vocabulary for this test to mean much"
    );
    let r = experiment::run(&cfg, &experiment::quiet, &AtomicBool::new(false)).unwrap();
    assert_eq!(r.data.vocab_size, Some(v0));
    assert_eq!(r.replicates.len(), 1);
    assert_eq!(r.replicates[0].vocab_size, Some(v1));
    // the embedding is vocabulary x width (4): the second seed's model differs by exactly that
    let n = |v: &resprune::record::VariantResult| v.spectrum.as_ref().unwrap().params as i64;
    assert_eq!(n(&r.residual), r.model.params as i64);
    assert_eq!(
        n(&r.replicates[0].residual) - n(&r.residual),
        4 * (v1 as i64 - v0 as i64)
    );
    let shown = resprune::cli::summary::render(&r);
    assert!(
        shown.contains(&format!("vocabulary per seed: {v0}, {v1}")),
        "{shown}"
    );
    // and it survives the round trip
    let back = resprune::record::parse(&r.to_toml().unwrap(), "mem").unwrap();
    assert_eq!(back.replicates[0].vocab_size, Some(v1));
}
