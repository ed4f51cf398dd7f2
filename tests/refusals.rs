//! Huge, impossible or malformed requests are refused with a message that says what and
//! where, before any work starts: no panic, no allocator abort, no OOM kill.

use std::process::Command;
use std::sync::atomic::AtomicBool;

use resprune::config::Config;
use resprune::experiment;

const BASE: &str =
    "name = \"h\"\n[data]\nsource = \"synthetic\"\nsamples = 40\n[train]\nepochs = 1\n";

fn parse_err(src: &str) -> String {
    Config::parse(src, "h.toml").unwrap_err().to_string()
}

#[test]
fn impossible_values_name_file_line_key_and_what_is_allowed() {
    let e = parse_err(&format!("{BASE}[model]\ndepth = 0\n"));
    assert!(
        e.starts_with("h.toml:8: `model.depth`: is 0, must be at least 1"),
        "{e}"
    );
    let e = parse_err(&format!("threads = 100000\n{BASE}"));
    assert!(
        e.starts_with("h.toml:1: `threads`: is 100000; this machine has"),
        "{e}"
    );
    assert!(e.contains("64 per core"), "{e}");
    let long = "a".repeat(201);
    let e = parse_err(&BASE.replace("name = \"h\"", &format!("name = \"{long}\"")));
    assert!(e.contains("`name`: is 201 bytes long; at most 200"), "{e}");
    // 200 is still a name
    let ok = "b".repeat(200);
    assert!(Config::parse(
        &BASE.replace("name = \"h\"", &format!("name = \"{ok}\"")),
        "h.toml"
    )
    .is_ok());
}

#[test]
fn duplicate_keys_are_named_with_their_table() {
    assert_eq!(
        parse_err("name = \"d\"\nname = \"e\"\n"),
        "h.toml:2: `name`: duplicate key"
    );
    assert_eq!(
        parse_err("name = \"d\"\n[train]\nlr = 0.1\nlr = 0.2\n"),
        "h.toml:4: `train.lr`: duplicate key"
    );
}

#[test]
fn huge_or_deeply_nested_configs_are_refused_before_parsing_deeply() {
    let big = format!("{BASE}# {}\n", "x".repeat(2 << 20));
    let e = parse_err(&big);
    assert!(e.contains("is 2097") && e.contains("at most 1 MiB"), "{e}");
    // nesting within the size limit is the parser's to refuse, with a line
    let nested = format!(
        "name = \"n\"\nx = {}{}\n",
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    let e = parse_err(&nested);
    assert!(e.starts_with("h.toml:2:"), "{e}");
}

#[test]
fn a_model_that_cannot_fit_in_memory_is_refused_before_training() {
    let cfg = Config::parse(&format!("{BASE}[model]\nwidth = 100000000\n"), "h.toml").unwrap();
    let e = experiment::run(&cfg, &experiment::quiet, &AtomicBool::new(false))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("model.width = 100000000") && e.contains("GiB available"),
        "{e}"
    );
    // the estimate grows with the width: block weights as its square
    let split = resprune::data::load(&cfg.data, 0).unwrap();
    let spec = |w| {
        resprune::experiment::model_spec(
            &Config {
                model: resprune::config::ModelConfig {
                    width: w,
                    ..cfg.model.clone()
                },
                ..cfg.clone()
            },
            &split.summary,
        )
    };
    let est = |w| experiment::memory_estimate(&cfg, &spec(w), &split);
    let (small, big) = (est(20), est(2000));
    assert!(small < 1e8, "the article model needs little: {small}");
    assert!(big / small > 100.0, "{small} -> {big}");
}

#[test]
fn diff_precision_beyond_an_f64_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_resprune-tui"))
        .args(["diff", "--precision", "99", "a.toml", "b.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("99 is not in 1..=17"), "{err}");
}

#[test]
fn n_of_m_that_does_not_divide_the_data_width_is_refused_before_training() {
    // the config's widths divide by 4; the breast cancer table's 30 features do not, which only
    // the data can tell: refused right after loading, naming the key and the layer
    let src = "name = \"nm\"\n[data]\nsource = \"breast_cancer\"\n[model]\nwidth = 8\n\
               [train]\nepochs = 1\n[prune]\ngranularities = [\"2:4\"]\n";
    let cfg = Config::parse(src, "nm.toml").unwrap();
    let events = std::sync::Mutex::new(Vec::new());
    let sink = |ev: experiment::RunEvent| {
        events.lock().unwrap().push(format!("{ev:?}"));
        true
    };
    let e = experiment::run(&cfg, &sink, &AtomicBool::new(false))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("prune.granularities") && e.contains("2:4"),
        "{e}"
    );
    assert!(e.contains("`stem`") && e.contains("30"), "{e}");
    let seen = events.lock().unwrap();
    assert!(
        !seen.iter().any(|ev| ev.contains("Epoch")),
        "refused before any training: {seen:?}"
    );
}
