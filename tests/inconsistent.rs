//! Records that do not hold together, and files that are not records at all, are named by
//! the commands instead of shown as fine or hidden.

use std::path::Path;
use std::process::Command;

fn bin(args: &[&str], dir: &Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_resprune-tui"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/v0.1/article-dense.toml"
);

#[test]
fn show_diff_and_replay_refuse_a_record_that_does_not_hold_together() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(FIXTURE).unwrap();
    // a hand edit: more pruned than eligible in the plain model's first row
    let mut rec: resprune::record::Record = toml::from_str(&text).unwrap();
    rec.plain.pruning[0].pruned = rec.plain.pruning[0].eligible + 1;
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, toml::to_string(&rec).unwrap()).unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, &text).unwrap();
    for args in [
        vec!["show", "bad.toml"],
        vec!["diff", "good.toml", "bad.toml"],
        vec!["replay", "bad.toml", "--quiet"],
    ] {
        let (code, _, err) = bin(&args, dir.path());
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(
            err.contains("bad.toml: the record parses but does not hold together"),
            "{err}"
        );
        assert!(err.contains("`plain.pruning[0].pruned`"), "{err}");
    }
}

#[test]
fn list_names_empty_and_binary_files_and_refuses_a_missing_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(FIXTURE, dir.path().join("ok.toml")).unwrap();
    std::fs::write(dir.path().join("empty.toml"), b"").unwrap();
    std::fs::write(dir.path().join("binary.toml"), [0xff, 0xfe, 0x00, 0x41]).unwrap();
    std::fs::write(dir.path().join("config.toml"), "name = \"c\"\n").unwrap();
    let (code, out, err) = bin(&["list", "."], dir.path());
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("ok.toml") && out.contains("complete"), "{out}");
    assert!(
        out.contains("empty.toml") && out.contains("empty: a run was stopped while saving it"),
        "{out}"
    );
    assert!(
        out.contains("binary.toml") && out.contains("not UTF-8"),
        "{out}"
    );
    assert!(
        !out.contains("config.toml"),
        "configs are not records: {out}"
    );
    let (code, _, err) = bin(&["list", "nowhere"], dir.path());
    assert_eq!(code, 1);
    assert!(err.contains("nowhere is not a folder"), "{err}");
}
