//! Property tests: valid configs round-trip through TOML; truncated or mutated records and
//! configs are errors with a file and a line, never panics.

use std::sync::atomic::AtomicBool;
use std::sync::OnceLock;

use proptest::prelude::*;
use resprune::config::{Config, DataSource, HessianMethod, Optimizer, PruneMethod, PruneScope};
use resprune::experiment;
use resprune::model::Activation;
use resprune::record::{self, RecordError};

const SMALL: &str = r#"
name = "props"
seed = 9
[data]
source = "teacher"
samples = 40
features = 3
eval_fraction = 0.25
[model]
width = 4
depth = 1
[train]
epochs = 2
batch_size = 8
lr = 0.01
[prune]
ratios = [0.25, 0.5]
"#;

/// A real record's text, made once.
fn record_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let cfg = Config::parse(SMALL, "props.toml").unwrap();
        experiment::run(&cfg, &experiment::quiet, &AtomicBool::new(false))
            .unwrap()
            .to_toml()
            .unwrap()
    })
}

fn finite(lo: f64, hi: f64) -> impl Strategy<Value = f64> {
    prop_oneof![
        lo..hi,
        Just(lo.max(f64::MIN_POSITIVE)),
        (1u32..1000).prop_map(move |k| lo + (hi - lo) * k as f64 / 1000.0)
    ]
}

fn config() -> impl Strategy<Value = Config> {
    let base = (
        "[a-z][a-z0-9_.-]{0,12}",
        any::<u64>(),
        0usize..64,
        prop::sample::select(vec![
            DataSource::Synthetic,
            DataSource::Teacher,
            DataSource::BreastCancer,
            DataSource::MovieReviews,
        ]),
        2usize..5000,
        1usize..100,
        2usize..10,
        finite(0.0, 0.99),
    );
    let model = (
        1usize..512,
        0usize..8,
        prop::sample::select(vec![Activation::Relu, Activation::Gelu, Activation::Tanh]),
        -10.0f64..10.0,
    );
    let train = (
        prop::sample::select(vec![Optimizer::Adam, Optimizer::Sgd]),
        1e-6f64..1.0,
        0usize..1000,
        1usize..512,
        any::<bool>(),
        finite(0.0, 0.99),
        finite(0.0, 0.1),
    );
    let hessian = (
        prop::sample::select(vec![
            HessianMethod::Auto,
            HessianMethod::Dense,
            HessianMethod::Lanczos,
        ]),
        0usize..1000,
        1usize..200,
        1e-9f64..1e-3,
        1usize..20,
        2usize..300,
        any::<bool>(),
    );
    let prune = (
        prop::sample::subsequence(
            vec![
                PruneMethod::Magnitude,
                PruneMethod::Obd,
                PruneMethod::CurvatureGated,
            ],
            1..=3,
        ),
        prop::sample::select(vec![PruneScope::Global, PruneScope::Layer]),
        any::<bool>(),
        prop::collection::vec(0.001f64..0.999, 1..8),
        0usize..5,
        prop::option::of(1e-5f64..0.5),
        1usize..5,
    );
    (base, model, train, hessian, prune).prop_map(|(b, m, t, h, p)| {
        let mut c = Config::parse(&format!("name = \"{}\"", b.0), "base.toml").unwrap();
        c.seed = b.1;
        c.threads = b.2;
        c.data.source = b.3;
        c.data.samples = b.4;
        c.data.features = b.5;
        c.data.classes = b.6;
        c.data.eval_fraction = b.7;
        c.model.width = m.0;
        c.model.depth = m.1;
        c.model.activation = m.2;
        c.model.alpha = resprune::config::Alpha::Fixed(m.3);
        c.train.optimizer = t.0;
        c.train.lr = t.1;
        c.train.epochs = t.2;
        c.train.batch_size = t.3;
        c.train.shuffle = t.4;
        c.train.momentum = t.5;
        c.train.weight_decay = t.6;
        c.hessian.method = h.0;
        c.hessian.samples = h.1;
        c.hessian.bins = h.2;
        c.hessian.fd_step = h.3;
        c.hessian.top_k = h.4;
        c.hessian.lanczos_steps = h.5;
        c.hessian.per_layer = h.6;
        c.prune.methods = p.0;
        c.prune.scope = p.1;
        c.prune.include_bias = p.2;
        c.prune.ratios = p.3;
        c.prune.finetune_epochs = p.4;
        c.prune.finetune_lr = p.5;
        c.replicates = p.6;
        c
    })
}

/// A loader's error must say where: `file:line:` for a parse error.
fn located(e: &RecordError) -> bool {
    let s = e.to_string();
    match e {
        RecordError::Parse { line, .. } => *line >= 1 && s.starts_with("r.toml:"),
        RecordError::NewerSchema { .. } => s.starts_with("r.toml:"),
        // parses, but does not hold together: the path of what is wrong
        RecordError::Inconsistent { problems, .. } => {
            s.starts_with("r.toml:") && !problems.is_empty() && s.contains('`')
        }
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn valid_configs_round_trip_through_toml(cfg in config()) {
        prop_assume!(cfg.validate().is_ok());
        let text = cfg.to_toml();
        let back = Config::parse(&text, "c.toml")
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(back, cfg);
    }

    #[test]
    fn truncated_records_are_located_errors(cut in 0usize..100_000) {
        let text = record_text();
        let mut cut = cut % text.len();
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        match record::parse(&text[..cut], "r.toml") {
            Ok(_) => {}
            Err(e) => prop_assert!(located(&e), "{}", e),
        }
    }

    #[test]
    fn mutated_records_never_panic(edits in prop::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
        let mut bytes = record_text().as_bytes().to_vec();
        for (at, b) in edits {
            let i = at % bytes.len();
            bytes[i] = b;
        }
        let text = String::from_utf8_lossy(&bytes);
        match record::parse(&text, "r.toml") {
            Ok(_) => {}
            Err(e) => prop_assert!(located(&e), "{}", e),
        }
    }

    #[test]
    fn truncated_and_mutated_configs_never_panic(
        cut in any::<usize>(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>()), 0..4),
    ) {
        let text = resprune::config::template("props");
        let mut bytes = text.as_bytes()[..cut % text.len()].to_vec();
        for (at, b) in edits {
            if !bytes.is_empty() {
                let i = at % bytes.len();
                bytes[i] = b;
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        // Ok or a located error; a panic fails the test
        if let Err(e) = Config::parse(&text, "c.toml") {
            prop_assert!(e.to_string().starts_with("c.toml"), "{}", e);
        }
    }
}

#[test]
fn every_line_cut_of_a_record_is_an_error_with_a_line() {
    let text = record_text();
    let mut n = 0;
    for (i, _) in text.match_indices('\n') {
        // cutting at a line end leaves valid TOML with fields missing
        if let Err(e) = record::parse(&text[..i], "r.toml") {
            assert!(located(&e), "{e}");
            n += 1;
        }
    }
    assert!(n > 100, "{n} cuts failed");
    assert!(record::parse(text, "r.toml").is_ok());
}

/// One way a sound record can be made unsound, by what a hand edit or a cut might do.
fn spoil(r: &mut record::Record, how: usize, at: usize) -> &'static str {
    let rows = r.residual.pruning.len();
    let i = at % rows;
    match how % 8 {
        0 => {
            r.residual.spectrum.as_mut().unwrap().eigenvalues.pop();
            "eigenvalues"
        }
        1 => {
            let row = &mut r.plain.pruning[i];
            row.pruned = row.eligible + 1 + at % 5;
            "pruned"
        }
        2 => {
            r.residual.pruning[i].ratio = [0.0, 1.0, 1.5, -0.1, f64::NAN][at % 5];
            "ratio"
        }
        3 => {
            r.plain.pruning.remove(i);
            "pruning"
        }
        4 => {
            r.plain.pruning[i].ratio += 0.001;
            "pruning"
        }
        5 => {
            r.plain.spectrum = None;
            "spectrum"
        }
        6 => {
            r.residual.history.clear();
            "history"
        }
        _ => {
            r.residual.pruning[i].layers[0].pruned += 1;
            "layers"
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Any record spoiled into one that does not hold together is reported as such, with the
    /// path of what is wrong; never loaded as if it were fine.
    #[test]
    fn spoiled_records_are_reported_inconsistent(how in 0usize..8, at in 0usize..1000) {
        let mut r = record::parse(record_text(), "r.toml").unwrap();
        let field = spoil(&mut r, how, at);
        let text = r.to_toml().unwrap();
        match record::parse(&text, "r.toml") {
            Err(RecordError::Inconsistent { problems, .. }) => {
                prop_assert!(problems.iter().any(|p| p.path.contains(field)), "{field}: {problems:?}");
            }
            other => prop_assert!(false, "{field}: {other:?}"),
        }
    }
}
