//! Every screen of the notebook drawn into a `TestBackend` from the fixture record and compared
//! with the accepted snapshots in `tests/snapshots/` (review changes with `cargo insta review`).

use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Modifier;
use ratatui::Terminal;
use resprune::tui::app::Pane;
use resprune::tui::msg::{ListEntry, Msg};
use resprune::tui::{views, App, Setup};

const FIXTURE: &str = "tests/fixtures/article-record.toml";

/// The fixture with its clock readings pinned, so that regenerating it (when the record schema
/// changes) leaves the snapshots alone unless the numbers change.
fn fixture() -> resprune::record::Record {
    let mut r = resprune::record::load(FIXTURE.as_ref()).expect("fixture record loads");
    r.started_at = "2026-01-02T03:04:05Z".into();
    r.finished_at = "2026-01-02T03:04:06Z".into();
    r.timings = resprune::record::Timings {
        data_s: 0.001,
        train_s: 0.02,
        spectrum_s: 0.5,
        prune_s: 0.004,
        total_s: 0.525,
    };
    r
}

fn app() -> App {
    let mut app = App::new(Setup::defaults(PathBuf::from("tests/fixtures")));
    let record = fixture();
    app.update(Msg::Listed {
        records: vec![ListEntry {
            path: PathBuf::from(FIXTURE),
            record: Ok(Box::new(record)),
        }],
        configs: vec![PathBuf::from("experiments/article.toml")],
        open: None,
    });
    app
}

fn press(app: &mut App, code: KeyCode) {
    app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

fn opened() -> App {
    let mut a = app();
    press(&mut a, KeyCode::Enter);
    a
}

fn focus(app: &mut App, pane: Pane) {
    while app.focus != pane {
        press(app, KeyCode::Tab);
    }
}

fn draw(app: &App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| views::draw(f, app)).unwrap();
    t
}

fn lines(buf: &Buffer) -> Vec<String> {
    let a = buf.area;
    (a.top()..a.bottom())
        .map(|y| {
            (a.left()..a.right())
                .map(|x| buf[(x, y)].symbol())
                .collect()
        })
        .collect()
}

fn text(t: &Terminal<TestBackend>) -> String {
    lines(t.backend().buffer()).join("\n")
}

#[test]
fn list_screen() {
    let a = app();
    for (w, h) in [(80, 24), (160, 48)] {
        let t = draw(&a, w, h);
        let s = text(&t);
        assert!(s.contains("article"), "{s}");
        assert!(s.contains("2026-01-02 03:04"), "{s}");
        assert!(s.contains("complete"), "{s}");
        insta::assert_snapshot!(format!("list_{w}x{h}"), t.backend());
    }
}

#[test]
fn experiment_grid_160x48() {
    let a = opened();
    let t = draw(&a, 160, 48);
    let s = text(&t);
    for pane in ["Model", "Training", "Spectrum", "Pruning"] {
        assert!(s.contains(&format!(" {pane} ")), "{pane} missing:\n{s}");
    }
    assert!(s.contains("ratio 0.30"), "{s}");
    insta::assert_snapshot!("experiment_160x48", t.backend());
}

#[test]
fn every_pane_stacked_at_80x24_and_zoomed_at_160x48() {
    for pane in Pane::ALL {
        let mut a = opened();
        focus(&mut a, pane);
        let t = draw(&a, 80, 24);
        let name = pane.title().to_lowercase();
        insta::assert_snapshot!(format!("{name}_80x24"), t.backend());
        press(&mut a, KeyCode::Enter);
        assert!(a.zoomed);
        let t = draw(&a, 160, 48);
        insta::assert_snapshot!(format!("{name}_zoom_160x48"), t.backend());
    }
}

#[test]
fn pane_contents_come_from_the_record() {
    let mut a = opened();
    let r = a.opened.as_ref().unwrap().record.clone();
    let row = &r.residual.pruning[2];
    let res_s = views::fmt::num(row.sensitivity);
    let pl_s = views::fmt::num(r.plain.pruning[2].sensitivity);
    let var = views::fmt::num(r.residual.spectrum.as_ref().unwrap().stats.variance);
    focus(&mut a, Pane::Pruning);
    let s = text(&draw(&a, 80, 24));
    assert!(s.contains(&res_s), "residual S {res_s} not shown:\n{s}");
    assert!(s.contains(&pl_s), "plain S {pl_s} not shown:\n{s}");
    // the larger S of the pair is marked
    let (big, small) = if row.sensitivity > r.plain.pruning[2].sensitivity {
        (&res_s, &pl_s)
    } else {
        (&pl_s, &res_s)
    };
    assert!(s.contains(&format!("{big}*")), "{s}");
    assert!(!s.contains(&format!("{small}*")), "{s}");
    focus(&mut a, Pane::Spectrum);
    let s = text(&draw(&a, 80, 24));
    assert!(s.contains(&var), "variance {var} not shown:\n{s}");
    assert!(s.contains("negative"), "{s}");
    assert!(s.contains("dense only"), "{s}");
}

#[test]
fn help_popup_lists_every_binding() {
    let mut a = opened();
    press(&mut a, KeyCode::Char('?'));
    let t = draw(&a, 160, 48);
    let s = text(&t);
    for (keys, what) in [
        ("←/h/[", "previous pruning ratio"),
        ("q/C-c", "quit"),
        ("Tab", "focus the next pane"),
        ("?", "show or hide this help"),
        ("L", "log counts"),
    ] {
        let line = s
            .lines()
            .find(|l| l.contains(what))
            .unwrap_or_else(|| panic!("no help line for {what}:\n{s}"));
        assert!(line.contains(keys), "{keys} missing in {line}");
    }
    insta::assert_snapshot!("help_160x48", t.backend());
    insta::assert_snapshot!("help_80x24", draw(&a, 80, 24).backend());
}

#[test]
fn too_small_says_so() {
    let a = opened();
    for (w, h) in [(79, 24), (80, 23), (40, 10)] {
        let s = text(&draw(&a, w, h));
        assert!(
            s.contains("terminal too small: need 80×24"),
            "{w}x{h}:\n{s}"
        );
    }
    let s = text(&draw(&a, 80, 24));
    assert!(!s.contains("too small"));
    insta::assert_snapshot!("too_small_60x20", draw(&a, 60, 20).backend());
}

#[test]
fn ascii_mode_draws_only_ascii() {
    let mut a = App::new(Setup {
        ascii: true,
        ..Setup::defaults(PathBuf::from("tests/fixtures"))
    });
    let record = fixture();
    a.update(Msg::Listed {
        records: vec![ListEntry {
            path: PathBuf::from(FIXTURE),
            record: Ok(Box::new(record)),
        }],
        configs: vec![],
        open: None,
    });
    press(&mut a, KeyCode::Enter);
    for (w, h) in [(80, 24), (160, 48)] {
        for pane in Pane::ALL {
            focus(&mut a, pane);
            let s = text(&draw(&a, w, h));
            assert!(s.is_ascii(), "{w}x{h} {pane:?}:\n{s}");
        }
    }
    press(&mut a, KeyCode::Char('?'));
    let t = draw(&a, 80, 24);
    assert!(text(&t).is_ascii());
    assert!(text(&t).contains("Left/h/["));
    press(&mut a, KeyCode::Esc);
    focus(&mut a, Pane::Training);
    insta::assert_snapshot!("ascii_training_80x24", draw(&a, 80, 24).backend());
}

/// The lines of the pane titled `title`, cut at its left border: `(lines, x0, y0)`.
fn pane(buf: &Buffer, title: &str) -> (Vec<String>, u16, u16) {
    let ls = lines(buf);
    let needle = format!(" {title} ");
    let y0 = ls.iter().position(|l| l.contains(&needle)).expect("pane") as u16;
    let byte = ls[y0 as usize].find(&needle).unwrap();
    let x0 = ls[y0 as usize][..byte].chars().count() as u16 - 1;
    let cut = ls[y0 as usize..]
        .iter()
        .map(|l| l.chars().skip(x0 as usize).collect())
        .collect();
    (cut, x0, y0)
}

/// The screen row of the pruning table whose ratio cell reads `ratio`.
fn row_of(buf: &Buffer, ratio: &str) -> u16 {
    let (ls, _, y0) = pane(buf, "Pruning");
    let i = ls
        .iter()
        .position(|l| {
            l.trim_start_matches(['│', '┃', ' ', '▸'])
                .starts_with(ratio)
        })
        .unwrap_or_else(|| panic!("no row {ratio}:\n{}", ls.join("\n")));
    y0 + i as u16
}

fn highlighted(buf: &Buffer, y: u16) -> bool {
    let (_, x0, _) = pane(buf, "Pruning");
    let cell = &buf[(x0 + 3, y)];
    cell.bg != ratatui::style::Color::Reset || cell.modifier.contains(Modifier::REVERSED)
}

#[test]
fn stepping_the_ratio_moves_the_highlight_and_the_sparsity_column() {
    let mut a = opened();
    let rec = a.opened.as_ref().unwrap().record.clone();
    let t = draw(&a, 160, 48);
    let buf = t.backend().buffer().clone();
    let y30 = row_of(&buf, "0.30");
    let y40 = row_of(&buf, "0.40");
    assert!(highlighted(&buf, y30) && !highlighted(&buf, y40));
    let sparsity = |i: usize| views::fmt::pct(rec.residual.pruning[i].layers[1].sparsity);
    let model = |buf: &Buffer| {
        lines(buf)
            .into_iter()
            .find(|l| l.contains("blocks.0"))
            .unwrap()
    };
    assert!(model(&buf).contains(&sparsity(2)), "{}", model(&buf));

    press(&mut a, KeyCode::Right);
    let t = draw(&a, 160, 48);
    let buf = t.backend().buffer().clone();
    assert!(!highlighted(&buf, y30) && highlighted(&buf, y40));
    assert_ne!(sparsity(2), sparsity(3), "fixture has distinct sparsities");
    assert!(model(&buf).contains(&sparsity(3)), "{}", model(&buf));
    assert!(!model(&buf).contains(&sparsity(2)), "{}", model(&buf));
    assert!(text(&t).contains("ratio 0.40"));
}

#[test]
fn footer_is_generated_from_the_key_map() {
    let mut a = opened();
    // at 80 columns too, help and quit make it into the footer
    let s = text(&draw(&a, 80, 24));
    let footer = s.lines().last().unwrap().to_string();
    assert!(
        footer.contains("←/→ ratio") && footer.contains("? help") && footer.contains("q quit"),
        "{footer}"
    );
    a.keys
        .apply_overrides("[global]\nhelp = [\"F1\"]\nratio_prev = [\"b\"]\n")
        .unwrap();
    let s = text(&draw(&a, 160, 48));
    let footer = s.lines().last().unwrap().to_string();
    assert!(
        footer.contains("b/→ ratio") && footer.contains("F1 help"),
        "{footer}"
    );
    assert!(!footer.contains("? help"), "{footer}");
}

/// The fixture marked, and a copy with two config keys and one result changed, diffed.
fn diffed() -> App {
    let mut a = app();
    let mut other = fixture();
    other.config.seed = 7;
    other.config.train.lr = 0.002;
    other.residual.pruning[0].sensitivity *= 2.0;
    let mut entries = a.list.entries.clone();
    entries.push(ListEntry {
        path: PathBuf::from("tests/fixtures/other.toml"),
        record: Ok(Box::new(other)),
    });
    a.update(Msg::Listed {
        records: entries,
        configs: vec![],
        open: None,
    });
    press(&mut a, KeyCode::Char('m'));
    press(&mut a, KeyCode::Down);
    let cmd = a.update(Msg::Key(KeyEvent::new(
        KeyCode::Char('d'),
        KeyModifiers::NONE,
    )));
    let Some(resprune::tui::Cmd::Diff {
        marked,
        current,
        old,
        new,
    }) = cmd
    else {
        panic!("expected a diff command, got {cmd:?}");
    };
    a.update(resprune::tui::diff_msg(marked, current, &old, &new));
    a
}

#[test]
fn diff_view_80x24() {
    let a = diffed();
    let t = draw(&a, 80, 24);
    let s = text(&t);
    assert!(s.contains("article-record.toml → other.toml"), "{s}");
    assert!(s.contains("train.lr") && s.contains("0.002"), "{s}");
    assert!(s.contains("sensitivity"), "{s}");
    let footer = s.lines().last().unwrap().to_string();
    assert!(
        footer.contains("Esc back") && footer.contains("a all/changed"),
        "{footer}"
    );
    insta::assert_snapshot!("diff_80x24", t.backend());
}

#[test]
fn replay_popup_shows_the_first_mismatches() {
    let mut a = opened();
    press(&mut a, KeyCode::Char('R'));
    let mismatch = resprune::record::diff::Mismatch {
        path: "residual.pruning[0].sensitivity".into(),
        stored: Some("0.5".into()),
        new: Some("0.6".into()),
        rel_error: Some(0.2),
    };
    a.update(Msg::Replayed {
        path: PathBuf::from(FIXTURE),
        outcome: Ok(resprune::tui::ReplayOutcome {
            new_path: PathBuf::from("tests/fixtures/replay.toml"),
            compared: 120,
            numbers: 100,
            complete: true,
            mismatches: vec![mismatch],
        }),
    });
    let s = text(&draw(&a, 80, 24));
    assert!(s.contains("1 of 120 values differ"), "{s}");
    assert!(
        s.contains("residual.pruning[0].sensitivity  0.5  0.6"),
        "{s}"
    );
}

#[test]
fn a_lanczos_record_shows_its_slq_histogram_and_no_dense_only_counts() {
    // a small run above a tiny dense limit: Lanczos + SLQ + Hutchinson
    let cfg = resprune::config::Config::parse(
        r#"
name = "lanczos-view"
[data]
source = "teacher"
samples = 60
features = 4
[model]
width = 6
[train]
epochs = 1
[hessian]
method = "lanczos"
lanczos_steps = 10
slq_runs = 2
slq_steps = 10
hutchinson_samples = 4
"#,
        "lanczos-view.toml",
    )
    .unwrap();
    let record = resprune::experiment::run(
        &cfg,
        &resprune::experiment::quiet,
        &std::sync::atomic::AtomicBool::new(false),
    )
    .unwrap();
    assert!(record
        .residual
        .spectrum
        .as_ref()
        .unwrap()
        .eigenvalues
        .is_empty());
    let mut a = App::new(Setup::defaults(PathBuf::from("tests/fixtures")));
    a.update(Msg::Listed {
        records: vec![ListEntry {
            path: PathBuf::from("lanczos-view.toml"),
            record: Ok(Box::new(record)),
        }],
        configs: vec![],
        open: None,
    });
    press(&mut a, KeyCode::Enter);
    let screen = text(&draw(&a, 160, 48));
    assert!(screen.contains("SLQ density"), "{screen}");
    assert!(!screen.contains("dense eigenvalues"), "{screen}");
    let row = |name: &str| {
        screen
            .lines()
            .find(|l| l.contains(&format!("│{name} ")))
            .unwrap_or_else(|| panic!("no {name} row:\n{screen}"))
            .to_string()
    };
    // Lanczos measures neither the near-zero count nor the condition number
    for name in ["near 0", "cond"] {
        let r = row(name);
        let cells: Vec<&str> = r
            .split('│')
            .nth(1)
            .unwrap()
            .trim_start_matches(name)
            .split_whitespace()
            .collect();
        assert_eq!(cells, ["-", "-"], "{r}");
    }
    // ... while the moments are there
    assert!(!row("Var").contains(" - "), "{}", row("Var"));
}

/// A dense spectrum whose condition is not resolved (no gap above the noise floor) says so in
/// full, next to the other model's number, in the stacked and the zoomed layout.
#[test]
fn an_unresolved_condition_reads_not_resolved() {
    let mut record = fixture();
    let s = record.plain.spectrum.as_mut().unwrap();
    s.stats.near_zero = Some(102);
    s.stats.condition = None;
    let mut a = App::new(Setup::defaults(PathBuf::from("tests/fixtures")));
    a.update(Msg::Listed {
        records: vec![ListEntry {
            path: PathBuf::from(FIXTURE),
            record: Ok(Box::new(record)),
        }],
        configs: vec![],
        open: None,
    });
    press(&mut a, KeyCode::Enter);
    focus(&mut a, Pane::Spectrum);
    let stacked = text(&draw(&a, 80, 24));
    let row = stacked.lines().find(|l| l.contains("cond ")).unwrap();
    assert!(
        row.contains("6.5e12") && row.contains("not resolved"),
        "{row}"
    );
    assert!(stacked.contains("102"), "{stacked}");
    press(&mut a, KeyCode::Enter);
    let zoomed = text(&draw(&a, 160, 48));
    let row = zoomed.lines().find(|l| l.contains("cond ")).unwrap();
    assert!(
        row.contains("6.5e12") && row.contains("not resolved"),
        "{row}"
    );
}

#[test]
fn the_lesion_view_lists_each_block_residual_beside_both_plain_counterfactuals() {
    use resprune::prune::lesion::Counterfactual;
    let path = "tests/fixtures/structured-record.toml";
    let record = resprune::record::load(path.as_ref()).expect("structured fixture loads");
    let plain = record
        .plain
        .lesions
        .clone()
        .expect("the fixture has lesions");
    let res = record
        .residual
        .lesions
        .clone()
        .expect("the fixture has lesions");
    let mut a = App::new(Setup::defaults(PathBuf::from("tests/fixtures")));
    a.update(Msg::Listed {
        records: vec![ListEntry {
            path: PathBuf::from(path),
            record: Ok(Box::new(record)),
        }],
        configs: vec![],
        open: None,
    });
    press(&mut a, KeyCode::Enter);
    press(&mut a, KeyCode::Char('b'));
    let t = text(&draw(&a, 160, 48));
    assert!(t.contains("Block lesions"), "{t}");
    assert!(t.contains("plain id") && t.contains("plain 0"), "{t}");
    for b in 0..2 {
        let cells = [
            res.single(b, Counterfactual::Identity).unwrap().delta_loss,
            plain
                .single(b, Counterfactual::Identity)
                .unwrap()
                .delta_loss,
            plain.single(b, Counterfactual::Zero).unwrap().delta_loss,
        ]
        .map(views::fmt::num);
        let line = t
            .lines()
            .find(|l| l.contains(&format!("block {b}")))
            .unwrap_or_else(|| panic!("no row for block {b}:\n{t}"));
        for c in cells {
            assert!(line.contains(c.trim()), "block {b}: {c} not in {line:?}");
        }
    }
    // the pruning table's title names the granularity once the lesions are hidden again
    press(&mut a, KeyCode::Char('b'));
    let t = text(&draw(&a, 160, 48));
    assert!(t.contains("Pruning · unstructured · every method"), "{t}");
}
