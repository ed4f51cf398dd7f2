//! A sweep in the notebook: its folder is one row of the list, Enter shows its points and
//! chart, ↑/↓ choose a point and Enter opens that point's record; a sweep config started from
//! the `n` prompt runs every point and reports its progress.

use std::sync::atomic::AtomicBool;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use resprune::config::Source;
use resprune::experiment::RunEvent;
use resprune::tui::app::{ListRow, Screen};
use resprune::tui::msg::Msg;
use resprune::tui::{sweep_view, views, App, Setup};

mod common;

fn tiny() -> String {
    common::tiny_sweep("tiny", 3, "\"model.depth\" = [1, 2, 3]")
}

fn press(app: &mut App, code: KeyCode) {
    app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
}

fn text(app: &App) -> String {
    let mut t = Terminal::new(TestBackend::new(160, 48)).unwrap();
    t.draw(|f| views::draw(f, app)).unwrap();
    let buf = t.backend().buffer().clone();
    let a = buf.area;
    (a.top()..a.bottom())
        .map(|y| {
            (a.left()..a.right())
                .map(|x| buf[(x, y)].symbol())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_sweep_is_a_list_row_with_its_points_and_chart_and_opens_a_point() {
    let d = tempfile::tempdir().unwrap();
    let exp = d.path().join("experiments");
    let cfg = d.path().join("tiny.toml");
    std::fs::write(&cfg, tiny()).unwrap();
    // the prompt's path: the sweep runs into <experiments>/<name>/ and says how far it is
    let (tx, rx) = std::sync::mpsc::channel();
    let events = std::sync::Mutex::new(0usize);
    let send = |_: RunEvent| {
        *events.lock().unwrap() += 1;
        true
    };
    let manifest = sweep_view::run(&cfg, &exp, &tx, &send, &AtomicBool::new(false)).unwrap();
    assert_eq!(manifest, exp.join("tiny").join("sweep.toml"));
    assert!(
        *events.lock().unwrap() > 0,
        "the points' events reach the live panes"
    );
    let progress: Vec<String> = rx
        .try_iter()
        .filter_map(|m| match m {
            Msg::SweepProgress(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(
        progress.last().map(String::as_str),
        Some("sweep tiny: 3/3 points done, 0 running, 0 failed")
    );

    let mut app = App::new(Setup::defaults(exp.clone()));
    app.update(Msg::Listed {
        records: Vec::new(),
        configs: Vec::new(),
        open: None,
    });
    app.update(Msg::Sweeps(sweep_view::read_sweeps(&exp)));
    assert_eq!(app.list_rows(), vec![ListRow::Sweep(0)]);
    let s = text(&app);
    assert!(
        s.contains("tiny (3 points)") && s.contains("3/3 done"),
        "{s}"
    );
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.screen, Screen::Sweep(0));
    let s = text(&app);
    assert!(
        s.contains("Sweep tiny (3 points, grid over model.depth)"),
        "{s}"
    );
    assert!(
        s.contains("model.depth=2") && s.contains("Var(λ)") && s.contains("S@0.2"),
        "{s}"
    );
    press(&mut app, KeyCode::Right);
    assert!(text(&app).contains("S@0.4 res"));
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.screen, Screen::Experiment);
    let opened = app.opened.as_ref().unwrap();
    assert_eq!(opened.path, exp.join("tiny").join("model.depth=2.toml"));
    assert_eq!(opened.record.model.depth, 2);
    // the same points as the library plans them
    let plan = resprune::sweep::plan_source(&Source::read(&cfg).unwrap(), &[]).unwrap();
    assert_eq!(plan.points.len(), 3);
}
