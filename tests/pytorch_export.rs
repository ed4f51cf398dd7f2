//! A checkpoint holds what its record's numbers were computed on, so they can be checked
//! without this crate (issue 14, item 2): `run --save-weights` on small configs, then
//! `scripts/check_record.py` (numpy only, the safetensors file parsed by hand) recomputes the
//! losses, accuracies and pruning sensitivities, which must match the record to 1e-12. Also:
//! the checkpoint loads without its record, holds θ₀, the Hessian batch, the splits (with their
//! source rows and standardisation) and the batch order the run used, and the first format
//! still loads.
//!
//! Needs `python3` with numpy (`pip install numpy`; `.ci/run` installs it).

use std::path::{Path, PathBuf};
use std::process::Command;

use resprune::config::Config;
use resprune::model::{ParamKind, Variant};
use resprune::record::{self, checkpoint, Record};

const TOL: f64 = 1e-12;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_resprune-tui"))
}

/// Runs `config` with `--save-weights` into `dir`; the record's path.
fn run_saved(dir: &Path, config: &str) -> PathBuf {
    let cfg_path = dir.join("config.toml");
    std::fs::write(&cfg_path, config).unwrap();
    let out_dir = dir.join("out");
    let out = bin()
        .arg("run")
        .arg(&cfg_path)
        .arg("--out")
        .arg(&out_dir)
        .args(["--save-weights", "--quiet"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("record: "))
        .unwrap_or_else(|| panic!("no record line in\n{stdout}"));
    PathBuf::from(line.trim())
}

/// `python3 scripts/check_record.py RECORD`: its JSON.
fn numpy_check(record: &Path) -> serde_json::Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check_record.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(record)
        .output()
        .expect("python3 is needed for this test (with numpy: pip install numpy)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} failed (numpy missing? pip install numpy):\n{stderr}",
        script.display()
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Relative difference; S is compared as `1 + S = L_after / L_before` (it cancels two nearly
/// equal losses, so its own relative error is theirs times `L / |ΔL|`).
fn rel(path: &str, a: f64, b: f64) -> f64 {
    if a == b {
        return 0.0;
    }
    let mut scale = a.abs().max(b.abs());
    if path.ends_with("sensitivity") {
        scale = scale.max((1.0 + a).abs()).max((1.0 + b).abs());
    }
    (a - b).abs() / scale
}

/// Every recomputed number against the record: the largest relative difference, and that of
/// S alone taken plainly (for the report).
fn assert_matches(rec: &Record, got: &serde_json::Value) -> (f64, f64) {
    let (mut worst, mut worst_s) = (0.0f64, 0.0f64);
    let mut check = |path: String, want: f64, got: &serde_json::Value| {
        let got = got
            .as_f64()
            .unwrap_or_else(|| panic!("{path}: no number in the script's output"));
        let r = rel(&path, want, got);
        assert!(
            r <= TOL,
            "{path}: record {want:?}, numpy {got:?}, rel {r:.3e}"
        );
        if path.ends_with("sensitivity") {
            worst_s = worst_s.max((want - got).abs() / want.abs().max(got.abs()));
        }
        worst = worst.max(r);
    };
    for v in Variant::BOTH {
        let m = &got["models"][v.name()];
        let r = rec.variant(v);
        let (first, last) = (&r.history[0], r.history.last().unwrap());
        for (stage, h) in [("initial", first), ("trained", last)] {
            let s = &m[stage];
            check(
                format!("{v}.{stage}.train_loss"),
                h.train_loss,
                &s["train_loss"],
            );
            check(
                format!("{v}.{stage}.eval_loss"),
                h.eval_loss,
                &s["eval_loss"],
            );
            check(
                format!("{v}.{stage}.train_accuracy"),
                h.train_accuracy,
                &s["train_accuracy"],
            );
            check(
                format!("{v}.{stage}.eval_accuracy"),
                h.eval_accuracy,
                &s["eval_accuracy"],
            );
        }
        let rows = m["pruning"].as_array().unwrap();
        assert_eq!(rows.len(), r.pruning.len(), "{v} pruning rows");
        for (i, (row, g)) in r.pruning.iter().zip(rows).enumerate() {
            assert_eq!(g["method"], row.method.name());
            assert_eq!(g["ratio"].as_f64(), Some(row.ratio));
            let p = |k: &str| format!("{v}.pruning[{i}].{k}");
            check(p("loss_before"), row.loss_before, &g["loss_before"]);
            check(p("loss_after"), row.loss_after, &g["loss_after"]);
            check(p("sensitivity"), row.sensitivity, &g["sensitivity"]);
            check(
                p("accuracy_before"),
                row.accuracy_before,
                &g["accuracy_before"],
            );
            check(
                p("accuracy_after"),
                row.accuracy_after,
                &g["accuracy_after"],
            );
            assert_eq!(
                g["pruned"].as_u64(),
                Some(row.pruned as u64),
                "{}",
                p("pruned")
            );
            assert_eq!(
                g["stored_pruned_equals_theta_times_mask"],
                true,
                "{}",
                p("pruned tensors")
            );
        }
        let params = checkpoint::layout_of(rec, v).len as u64;
        assert_eq!(m["params"].as_u64(), Some(params), "{v} params");
    }
    (worst, worst_s)
}

const MLP: &str = r#"
name = "mlp-relu"
seed = 11
[data]
source = "teacher"
samples = 80
features = 5
classes = 3
eval_fraction = 0.25
[model]
width = 6
depth = 2
alpha = 0.5
activation = "relu"
[train]
epochs = 4
batch_size = 16
lr = 0.01
[hessian]
samples = 20
[prune]
methods = ["magnitude", "obd"]
ratios = [0.1, 0.3, 0.5]
"#;

const LEARNED: &str = r#"
name = "mlp-learned"
seed = 5
[data]
source = "teacher"
samples = 40
features = 3
eval_fraction = 0.25
[model]
width = 4
depth = 2
alpha = "learned"
activation = "tanh"
[train]
epochs = 3
batch_size = 8
lr = 0.01
[prune]
ratios = [0.3, 0.125]
"#;

const TABLE: &str = r#"
name = "breast-cancer-gelu"
seed = 2
[data]
source = "breast_cancer"
eval_fraction = 0.3
[model]
width = 5
depth = 1
activation = "gelu"
[train]
epochs = 2
batch_size = 64
lr = 0.01
[hessian]
samples = 50
[prune]
ratios = [0.2, 0.4]
finetune_epochs = 3
"#;

const TRANSFORMER: &str = r#"
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
[prune]
ratios = [0.5]
"#;

#[test]
fn numpy_recomputes_each_records_losses_and_sensitivities_to_1e_12() {
    for (name, config) in [
        ("mlp relu", MLP),
        ("mlp learned alpha", LEARNED),
        ("breast cancer gelu", TABLE),
        ("transformer", TRANSFORMER),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = run_saved(dir.path(), config);
        let rec = record::load(&path).unwrap();
        let got = numpy_check(&path);
        assert_eq!(got["format"], checkpoint::FORMAT);
        let (worst, s_plain) = assert_matches(&rec, &got);
        eprintln!(
            "{name}: largest relative difference {worst:.2e} (S taken plainly: {s_plain:.2e})"
        );
    }
}

#[test]
fn the_checkpoint_holds_the_data_theta0_and_batch_order_of_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = run_saved(dir.path(), TABLE);
    let rec = record::load(&path).unwrap();
    let spec = checkpoint::spec_of(&rec);
    // without the record: the architecture comes from the metadata
    let file = checkpoint::path_for(&path);
    let w = checkpoint::load_file(&file).unwrap();
    assert_eq!(w.spec, spec);
    assert_eq!(w, checkpoint::load(&path).unwrap());
    let meta = &w.metadata;
    assert_eq!(meta["model.kind"], "mlp");
    assert_eq!(meta["model.activation"], "gelu_tanh");
    assert_eq!(meta["variants"], "residual,plain");
    assert_eq!(meta["model.params.plain"], rec.model.params.to_string());
    assert!(meta["data.standardize"].contains("population sd"));

    let cfg: Config = rec.config.clone();
    let seed = cfg.seed_list()[0];
    assert_eq!(meta["seed"], seed.to_string());
    let split = resprune::data::load(&cfg.data, seed).unwrap();
    let theta0 = resprune::experiment::initial_theta(seed, &spec);
    for v in Variant::BOTH {
        assert_eq!(
            w.theta0(v).unwrap(),
            spec.theta_for(v, &theta0),
            "{v} theta0"
        );
    }
    let ex = |name: &str| w.examples(name).unwrap();
    assert_eq!(ex("train").x, split.train.x);
    assert_eq!(ex("train").y, split.train.y);
    assert_eq!(ex("eval").x, split.eval.x);
    assert_eq!(ex("eval").y, split.eval.y);
    let hess = split.train.head(50);
    assert_eq!((ex("hessian").x, ex("hessian").y), (hess.x, hess.y));
    assert_eq!(ex("hessian").features, 30);
    // training's 2 epochs and fine-tuning's 3 use the first 3 orders of one stream
    let order = w.order().unwrap();
    assert_eq!(order.len(), 3);
    assert_eq!(
        order,
        resprune::train::epoch_orders(split.train.len(), seed, true, 3)
    );
    assert_ne!(order[0], order[1]);
    let n = split.train.len();
    for o in &order {
        let mut s = o.clone();
        s.sort_unstable();
        assert_eq!(s, (0..n).collect::<Vec<_>>());
    }

    // the splits rebuilt from the bundled CSV with the stored rows, mean and population sd
    let raw = resprune::data::breast_cancer().unwrap();
    let idx =
        |name: &str| -> Vec<usize> { w.tensors[name].data.iter().map(|i| *i as usize).collect() };
    let (mean, sd) = (
        &w.tensors["data.standardize.mean"].data,
        &w.tensors["data.standardize.sd"].data,
    );
    let (train_idx, eval_idx) = (
        idx("data.train.source_index"),
        idx("data.eval.source_index"),
    );
    assert_eq!(train_idx.len() + eval_idx.len(), raw.len());
    let d = raw.features;
    for j in 0..d {
        let col: Vec<f64> = train_idx.iter().map(|&i| raw.row(i)[j]).collect();
        let m = col.iter().sum::<f64>() / col.len() as f64;
        let var = col.iter().map(|x| (x - m).powi(2)).sum::<f64>() / col.len() as f64;
        assert!((m - mean[j]).abs() <= 1e-12 * m.abs().max(1.0), "mean {j}");
        assert!(
            (var.sqrt() - sd[j]).abs() <= 1e-12 * sd[j],
            "population sd {j}"
        );
    }
    for (split_x, rows) in [(&split.train.x, &train_idx), (&split.eval.x, &eval_idx)] {
        for (k, &i) in rows.iter().enumerate() {
            for j in 0..d {
                assert_eq!(split_x[k * d + j], (raw.row(i)[j] - mean[j]) / sd[j]);
            }
        }
    }
}

#[test]
fn learned_scales_are_one_tensor_beside_the_linears_and_counted_in_params() {
    let dir = tempfile::tempdir().unwrap();
    let path = run_saved(dir.path(), LEARNED);
    let rec = record::load(&path).unwrap();
    // 3 -> 4 x2 -> 2: 16 + 20 + 20 + 10 shared, and 2 scales
    assert_eq!(rec.model.params, 68);
    let w = checkpoint::load(&path).unwrap();
    assert_eq!(w.metadata["model.learned_alpha"], "true");
    assert_eq!(w.metadata["model.params.residual"], "68");
    assert_eq!(w.metadata["model.params.plain"], "66");
    let alpha = &w.tensors["residual.alpha"];
    assert_eq!(alpha.shape, vec![2]);
    assert_eq!(alpha.data, rec.residual.learned_alpha);
    assert_eq!(w.tensors["residual.init.alpha"].data, vec![1.0, 1.0]);
    assert!(!w.tensors.contains_key("plain.alpha"));
    // nothing inside a Linear's namespace but its weight and bias
    for name in w.tensors.keys() {
        if let Some(i) = name.find("blocks.") {
            let tail = &name[i..];
            assert!(
                tail.ends_with(".weight") || tail.ends_with(".bias"),
                "{name}"
            );
        }
    }
    let theta = w.theta(Variant::Residual).unwrap();
    let layout = checkpoint::layout_of(&rec, Variant::Residual);
    let scales: Vec<f64> = layout
        .tensors
        .iter()
        .filter(|t| t.kind == ParamKind::Scale)
        .map(|t| theta[t.offset])
        .collect();
    assert_eq!(scales, rec.residual.learned_alpha);
    // the scales are never pruned: their mask is 1
    for row in &rec.residual.pruning {
        let key = checkpoint::row_key(row.method, row.granularity, row.ratio);
        assert_eq!(
            w.tensors[&format!("residual.mask.{key}.alpha")].data,
            vec![1.0, 1.0]
        );
        let (_, keep) = w
            .pruned(Variant::Residual, row.method, row.granularity, row.ratio)
            .unwrap();
        assert_eq!(keep.iter().filter(|k| !**k).count(), row.pruned);
    }
}

#[test]
fn a_format_1_checkpoint_still_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/checkpoint-v1/learned-v1-20261201T093733Z.toml");
    let rec = record::load(&path).unwrap();
    // written when params held the shared count: read as the residual model's
    assert_eq!(rec.model.params, 68);
    let w = checkpoint::load(&path).unwrap();
    assert!(w.is_v1());
    assert_eq!(w.metadata["format"], checkpoint::FORMAT_V1);
    assert!(w.tensors.contains_key("residual.blocks.1.alpha"));
    let theta = w.theta(Variant::Residual).unwrap();
    assert_eq!(theta.len(), 68);
    assert_eq!(&theta[66..], &rec.residual.learned_alpha[..]);
    assert_eq!(w.theta(Variant::Plain).unwrap().len(), 66);
    assert!(w.theta0(Variant::Plain).is_none(), "format 1 holds no θ₀");
    for v in Variant::BOTH {
        for row in &rec.variant(v).pruning {
            let (pruned, keep) = w
                .pruned(v, row.method, row.granularity, row.ratio)
                .unwrap_or_else(|| panic!("{v} {} {}", row.method, row.ratio));
            assert_eq!(keep.iter().filter(|k| !**k).count(), row.pruned);
            let theta = w.theta(v).unwrap();
            for i in 0..theta.len() {
                assert_eq!(pruned[i], if keep[i] { theta[i] } else { 0.0 });
            }
        }
    }
    // a format-1 file names its model only through its record
    let e = checkpoint::load_file(&checkpoint::path_for(&path)).unwrap_err();
    assert!(e.to_string().contains("needs its record"), "{e}");
}
