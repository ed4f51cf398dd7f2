//! End to end: the real binary in a detached tmux session, driven with `send-keys` and read
//! with `capture-pane`. Needs tmux (`apt-get install tmux`); set RESPRUNE_SKIP_TMUX=1 to skip.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("running tmux")
    }

    fn capture(&self) -> String {
        let out = self.cmd(&["capture-pane", "-p", "-t", &self.session]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", &self.session];
        args.extend_from_slice(keys);
        let out = self.cmd(&args);
        assert!(out.status.success(), "send-keys failed: {out:?}");
    }

    /// Polls the screen until `pred` holds, or fails with the last screen.
    fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let screen = self.capture();
            if pred(&screen) {
                return screen;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; screen:\n{screen}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn alive(&self) -> bool {
        self.cmd(&["has-session", "-t", &self.session])
            .status
            .success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

fn tmux_available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn notebook_opens_a_record_steps_ratios_shows_help_and_quits() {
    if !tmux_available() {
        if std::env::var("RESPRUNE_SKIP_TMUX").is_ok_and(|v| v == "1") {
            eprintln!("tmux not installed; skipped because RESPRUNE_SKIP_TMUX=1");
            return;
        }
        panic!(
            "this test needs tmux: `apt-get install tmux` (or set RESPRUNE_SKIP_TMUX=1 to skip it)"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        "tests/fixtures/article-record.toml",
        dir.path().join("article-record.toml"),
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_resprune-tui");
    assert!(Path::new(bin).exists());
    let t = Tmux {
        socket: format!("resprune-test-{}", std::process::id()),
        session: "nb".into(),
    };
    let command = format!(
        "env -u NO_COLOR TERM=xterm-256color {bin} --dir {}",
        dir.path().display()
    );
    let out = t.cmd(&[
        "new-session",
        "-d",
        "-s",
        &t.session,
        "-x",
        "120",
        "-y",
        "40",
        &command,
    ]);
    assert!(out.status.success(), "tmux new-session failed: {out:?}");

    // the whole row: a capture can catch tmux mid-redraw
    t.wait_for("the list with the record's row", |s| {
        s.contains("Experiments (1)") && s.contains("article") && s.contains("complete")
    });

    t.keys(&["Enter"]);
    // every pane and the status line, so a capture mid-redraw is waited past
    let panes = [
        "Pruning",
        "Model",
        "Training",
        "Spectrum",
        "ratio 0.30 (3/5)",
    ];
    t.wait_for("the experiment view, all drawn", |s| {
        panes.iter().all(|p| s.contains(p))
    });

    t.keys(&["Right"]);
    t.wait_for("ratio 0.40", |s| s.contains("ratio 0.40 (4/5)"));
    t.keys(&["l", "l"]);
    t.wait_for("the last ratio", |s| s.contains("ratio 0.50 (5/5)"));
    t.keys(&["["]);
    t.wait_for("ratio 0.40 again", |s| s.contains("ratio 0.40 (4/5)"));

    t.keys(&["?"]);
    // both ends of the popup: a capture can catch tmux mid-redraw with only its top drawn
    let help = t.wait_for("the whole help popup", |s| {
        s.contains("previous pruning ratio") && s.contains("cycle colour themes")
    });
    assert!(help.contains("next pruning ratio"), "{help}");
    t.keys(&["Escape"]);
    t.wait_for("the help to close", |s| {
        !s.contains("previous pruning ratio") && s.contains("Pruning")
    });

    t.keys(&["q"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while t.alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !t.alive(),
        "the notebook did not quit on q:\n{}",
        t.capture()
    );
}
