//! Config errors name the file, the key path, the line, and what is allowed.

use resprune::config::{Config, ConfigError, DataSource, PruneScope};

const GOOD: &str = r#"
name = "t"
seed = 3

[data]
source = "teacher"
samples = 50

[train]
lr = 0.01
epochs = 2

[prune]
ratios = [0.25, 0.5]
scope = "layer"
"#;

fn err(src: &str) -> String {
    match Config::parse(src, "exp.toml") {
        Ok(_) => panic!("config should have been refused:\n{src}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_valid_config_fills_every_default() {
    let c = Config::parse(GOOD, "exp.toml").unwrap();
    assert_eq!(c.seed, 3);
    assert_eq!(c.data.source, DataSource::Teacher);
    assert_eq!(c.data.samples, 50);
    assert_eq!(c.data.features, 10); // default
    assert_eq!(c.model.width, 20); // default
    assert_eq!(c.train.batch_size, 10); // default
    assert_eq!(c.hessian.dense_limit, 3000);
    assert_eq!(c.prune.scope, PruneScope::Layer);
    assert_eq!(c.prune.ratios, vec![0.25, 0.5]);
    // defaults are written out: the TOML round trip gives the same config
    let again = Config::parse(&c.to_toml(), "again.toml").unwrap();
    assert_eq!(again, c);
}

#[test]
fn unknown_key_is_refused_with_its_line_and_path() {
    let e = err(&GOOD.replace("epochs = 2", "epochs = 2\nepochz = 3"));
    assert!(e.starts_with("exp.toml:12:"), "{e}");
    assert!(e.contains("train.epochz"), "{e}");
    assert!(e.contains("unknown field"), "{e}");
}

#[test]
fn wrong_type_is_refused() {
    let e = err(&GOOD.replace("lr = 0.01", "lr = \"fast\""));
    assert!(e.starts_with("exp.toml:10:"), "{e}");
    assert!(e.contains("train.lr"), "{e}");
}

#[test]
fn unknown_enum_value_lists_the_choices() {
    let e = err(&GOOD.replace("scope = \"layer\"", "scope = \"everywhere\""));
    assert!(e.contains("prune.scope"), "{e}");
    assert!(e.contains("global") && e.contains("layer"), "{e}");
}

#[test]
fn ratio_outside_the_open_unit_interval_is_refused() {
    for bad in ["1.0", "0.0", "-0.2", "1.5"] {
        let e = err(&GOOD.replace("[0.25, 0.5]", &format!("[0.25, {bad}]")));
        assert!(e.starts_with("exp.toml:14:"), "{e}");
        assert!(e.contains("prune.ratios") && e.contains("(0, 1)"), "{e}");
    }
}

#[test]
fn zero_width_and_nonpositive_lr_are_refused() {
    let e = err(&format!("{GOOD}\n[model]\nwidth = 0\n"));
    assert!(e.contains("model.width") && e.contains("at least 1"), "{e}");
    assert!(e.starts_with("exp.toml:18:"), "{e}");
    for lr in ["0.0", "-1e-3"] {
        let e = err(&GOOD.replace("lr = 0.01", &format!("lr = {lr}")));
        assert!(e.contains("train.lr") && e.contains("> 0"), "{e}");
    }
}

#[test]
fn csv_without_a_path_is_refused_even_though_path_is_absent() {
    let e = err(&GOOD.replace("source = \"teacher\"", "source = \"csv\""));
    // the key is not in the file, so the message says where it should go
    assert!(e.contains("data.path") && e.contains("required"), "{e}");
}

#[test]
fn cuda_says_how_to_get_it() {
    let e = err(&GOOD.replace("seed = 3", "seed = 3\ndevice = \"cuda\""));
    assert!(e.contains("device") && e.contains("--features cuda"), "{e}");
}

#[test]
fn missing_name_and_bad_name_are_refused() {
    let e = err("seed = 1\n");
    assert!(e.contains("name"), "{e}");
    let e = err("name = \"a/b\"\n");
    assert!(e.contains("name") && e.contains("file name"), "{e}");
}

#[test]
fn syntax_errors_carry_a_line() {
    let e = err("name = \"x\"\n[train\nlr = 1\n");
    assert!(e.starts_with("exp.toml:2:"), "{e}");
}

#[test]
fn io_errors_name_the_path() {
    let e = Config::load(std::path::Path::new("/nonexistent/exp.toml")).unwrap_err();
    assert!(matches!(e, ConfigError::Io { .. }));
    assert!(e.to_string().contains("/nonexistent/exp.toml"));
}

#[test]
fn the_template_is_a_valid_config_with_defaults() {
    let t = resprune::config::template("fresh");
    let c = Config::parse(&t, "fresh.toml").unwrap();
    assert_eq!(c.name, "fresh");
    assert_eq!(c.train, resprune::config::TrainConfig::default());
    assert_eq!(c.prune, resprune::config::PruneConfig::default());
    assert_eq!(c.data, resprune::config::DataConfig::default());
    assert_eq!(c.hessian, resprune::config::HessianConfig::default());
    assert_eq!(c.model, resprune::config::ModelConfig::default());
}

#[test]
fn the_bundled_article_config_is_the_682_parameter_setup() {
    let c = Config::load(std::path::Path::new("experiments/article.toml")).unwrap();
    assert_eq!(
        (c.data.samples, c.data.features, c.model.width),
        (100, 10, 20)
    );
    assert!(c.prune.include_bias);
    assert_eq!(c.data.eval_fraction, 0.0);
}

#[test]
fn devices_parse_and_round_trip() {
    use resprune::config::DeviceChoice;
    for (text, want) in [
        ("cpu", DeviceChoice::Cpu),
        ("auto", DeviceChoice::Auto),
        ("cuda", DeviceChoice::Cuda(0)),
        ("cuda:3", DeviceChoice::Cuda(3)),
    ] {
        assert_eq!(text.parse::<DeviceChoice>().unwrap(), want);
        assert_eq!(
            String::from(want),
            if text == "cuda:0" { "cuda" } else { text }
        );
    }
    let e = err(&GOOD.replace("seed = 3", "seed = 3\ndevice = \"tpu\""));
    assert!(
        e.contains("unknown device `tpu`") && e.starts_with("exp.toml:4:"),
        "{e}"
    );
    let c = Config::parse(
        &GOOD.replace("seed = 3", "seed = 3\ndevice = \"auto\""),
        "x",
    )
    .unwrap();
    assert_eq!(c.device, DeviceChoice::Auto);
}

#[test]
fn transformer_and_token_encoding_go_together_and_heads_divide_the_width() {
    let e = err("name = \"t\"\n[model]\nkind = \"transformer\"\n");
    assert!(
        e.contains("model.kind") && e.contains("data.encoding = \"tokens\""),
        "{e}"
    );
    let e = err("name = \"t\"\n[data]\nsource = \"movie_reviews\"\nencoding = \"tokens\"\n");
    assert!(
        e.contains("data.encoding") && e.contains("transformer"),
        "{e}"
    );
    let base = "name = \"t\"\n[data]\nsource = \"movie_reviews\"\nencoding = \"tokens\"\n\
                [model]\nkind = \"transformer\"\nwidth = 12\n";
    let e = err(&format!("{base}heads = 5\n"));
    assert!(e.contains("exp.toml:8") && e.contains("model.heads"), "{e}");
    let e = err(&format!("{base}alpha = \"learned\"\n"));
    assert!(e.contains("model.alpha") && e.contains("MLP"), "{e}");
    let c = Config::parse(&format!("{base}heads = 3\n"), "exp.toml").unwrap();
    // ff = 0 means 4 x width
    assert_eq!(c.model.ff_width(), 48);
    let spec = c.model_spec(64, 2, Some(500));
    let t = spec.transformer.unwrap();
    assert_eq!((t.vocab, t.max_len, t.heads, t.ff), (500, 64, 3, 48));
}

#[test]
fn the_forward_scheme_takes_its_own_step() {
    let c = Config::parse(
        "name = \"t\"\n[hessian]\nfd_scheme = \"forward\"\n",
        "exp.toml",
    )
    .unwrap();
    assert_eq!(c.hessian.fd_scheme, resprune::config::FdScheme::Forward);
    // forward differences at ~sqrt(eps); the dense Hessian keeps the central fd_step
    assert_eq!(c.hessian.hvp_step(), resprune::config::FORWARD_STEP);
    assert_eq!(c.hessian.fd_step, 1e-5);
    let d = resprune::config::HessianConfig::default();
    assert_eq!(d.hvp_step(), d.fd_step);
    let e = err("name = \"t\"\n[hessian]\nfd_scheme = \"backward\"\n");
    assert!(e.contains("exp.toml:3") && e.contains("forward"), "{e}");
}

#[test]
fn every_invalid_fixture_is_refused_with_its_message() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let src = std::fs::read_to_string(&path).unwrap();
        let want = src
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{}: first line must be `# expect: ...`", path.display()));
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let e = match Config::parse(&src, &name) {
            Ok(_) => panic!("{name} should have been refused"),
            Err(e) => e.to_string(),
        };
        assert!(e.contains(want), "{name}: got {e:?}, want {want:?}");
        assert!(e.contains(&name), "{name}: the error names the file: {e}");
        seen += 1;
    }
    assert!(seen >= 7, "only {seen} invalid fixtures found");
}
