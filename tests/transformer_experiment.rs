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
    assert_eq!(r.model.kind, "transformer");
    assert_eq!(r.data.vocab_size, Some(32));
    // embed 32x4 + pos 6x4 + attn (2x4 norm + 4 x (16 + 4)) + mlp (8 + 16 + 4 + 16 + 4)
    // + final norm 8 + head 2x4 + 2 = 128 + 24 + 88 + 48 + 8 + 10
    let params = 128 + 24 + 88 + 48 + 8 + 10;
    assert_eq!(r.model.params, params);
    for v in [&r.residual, &r.plain] {
        let s = v.spectrum.as_ref().unwrap();
        assert_eq!(s.method, "dense");
        assert_eq!(s.eigenvalues.len(), params);
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
