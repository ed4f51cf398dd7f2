//! `resprune-tui bench`: the rows it promises, in the JSON a script reads.

use std::process::Command;

#[test]
fn bench_times_every_operation_of_both_models_and_reports_json() {
    let out = Command::new(env!("CARGO_BIN_EXE_resprune-tui"))
        .args([
            "bench",
            "--reps",
            "1",
            "--lanczos-steps",
            "3",
            "--threads",
            "2",
        ])
        .arg("--json")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json_start = stdout.find("\n{").expect("a JSON object after the table") + 1;
    let report: serde_json::Value = serde_json::from_str(&stdout[json_start..]).unwrap();
    assert_eq!(report["device"], "cpu");
    assert_eq!(report["params"], 466_698);
    assert_eq!(report["batch"], 1000);
    let rows = report["rows"].as_array().unwrap();
    let expected = [
        ("gradient", 1),
        ("hvp_central", 2),
        ("hvp_forward", 1),
        ("hvp_exact", 0),
        ("lanczos_3_forward", 4),
    ];
    assert_eq!(rows.len(), 2 * expected.len());
    for (row, (variant, (what, gradients))) in rows.iter().zip(
        ["residual", "plain"]
            .iter()
            .flat_map(|v| expected.iter().map(move |e| (v, e))),
    ) {
        assert_eq!(row["variant"], *variant);
        assert_eq!(row["what"], *what);
        assert_eq!(row["gradients"], *gradients);
        let (median, min) = (
            row["median_s"].as_f64().unwrap(),
            row["min_s"].as_f64().unwrap(),
        );
        assert!(min > 0.0 && min <= median, "{row}");
        // the table line says the same
        assert!(stdout
            .lines()
            .any(|l| l.starts_with(variant) && l.contains(what)));
    }
    // 3 Lanczos steps on a ReLU net: a positive top Ritz value for each model
    let tops = report["top_eigenvalue"].as_array().unwrap();
    assert_eq!(tops.len(), 2);
    for t in tops {
        assert!(t[1].as_f64().unwrap() > 0.0, "{t}");
    }
}
