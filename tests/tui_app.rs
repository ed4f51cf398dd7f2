//! The notebook's state machine, driven by keys as a user would: key -> action -> state.
//! Pure: no terminal, no threads.

use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use resprune::experiment::RunEvent;
use resprune::model::Variant;
use resprune::tui::app::{DiffState, ListRow, Pane, Popup, Screen};
use resprune::tui::live::RunState;
use resprune::tui::msg::{Cmd, ListEntry, Msg, ReplayOutcome, RunSource};
use resprune::tui::{App, Setup};

const FIXTURE: &str = "tests/fixtures/article-record.toml";

fn app() -> App {
    let mut app = App::new(Setup::defaults(PathBuf::from("tests/fixtures")));
    let record = resprune::record::load(FIXTURE.as_ref()).expect("fixture record loads");
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

fn press(app: &mut App, code: KeyCode) -> Option<Cmd> {
    app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

fn ch(app: &mut App, c: char) -> Option<Cmd> {
    press(app, KeyCode::Char(c))
}

fn opened() -> App {
    let mut a = app();
    assert_eq!(press(&mut a, KeyCode::Enter), None);
    a
}

fn status(app: &App) -> String {
    app.status
        .as_ref()
        .map(|s| s.text.clone())
        .unwrap_or_default()
}

#[test]
fn q_and_ctrl_c_quit_from_anywhere() {
    let mut a = app();
    assert_eq!(ch(&mut a, 'q'), Some(Cmd::Quit));
    let mut a = opened();
    ch(&mut a, '?');
    assert_eq!(ch(&mut a, 'q'), Some(Cmd::Quit));
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(a.update(Msg::Key(ctrl_c)), Some(Cmd::Quit));
    // in the filter, q is text and Ctrl-C still quits
    let mut a = app();
    ch(&mut a, '/');
    assert_eq!(ch(&mut a, 'q'), None);
    assert_eq!(a.list.filter, "q");
    assert_eq!(a.update(Msg::Key(ctrl_c)), Some(Cmd::Quit));
}

#[test]
fn enter_opens_the_record_at_the_middle_ratio() {
    let mut a = app();
    assert_eq!(a.screen, Screen::List);
    assert_eq!(a.list_rows(), vec![ListRow::Entry(0)]);
    press(&mut a, KeyCode::Enter);
    assert_eq!(a.screen, Screen::Experiment);
    let shown = a.shown().expect("a record is shown");
    assert_eq!(shown.name(), "article");
    assert_eq!(shown.ratio_count(), 5);
    assert_eq!(a.ratio, 2);
    assert_eq!(shown.ratio(a.ratio), Some(0.3));
}

#[test]
fn ratio_steps_with_every_binding_and_clamps_at_the_ends() {
    let mut a = opened();
    press(&mut a, KeyCode::Right);
    assert_eq!(a.ratio, 3);
    ch(&mut a, 'l');
    assert_eq!(a.ratio, 4);
    ch(&mut a, ']');
    press(&mut a, KeyCode::Right);
    assert_eq!(a.ratio, 4, "clamps at the last ratio");
    press(&mut a, KeyCode::Left);
    assert_eq!(a.ratio, 3);
    ch(&mut a, 'h');
    ch(&mut a, '[');
    assert_eq!(a.ratio, 1);
    for _ in 0..10 {
        press(&mut a, KeyCode::Left);
    }
    assert_eq!(a.ratio, 0, "clamps at the first ratio");
}

#[test]
fn tab_cycles_panes_both_ways_and_up_down_step_ratio_in_the_table() {
    let mut a = opened();
    assert_eq!(a.focus, Pane::Model);
    let mut seen = vec![];
    for _ in 0..4 {
        press(&mut a, KeyCode::Tab);
        seen.push(a.focus);
    }
    assert_eq!(
        seen,
        [Pane::Training, Pane::Spectrum, Pane::Pruning, Pane::Model]
    );
    a.update(Msg::Key(KeyEvent::new(
        KeyCode::BackTab,
        KeyModifiers::SHIFT,
    )));
    assert_eq!(a.focus, Pane::Pruning);
    assert_eq!(a.ratio, 2);
    press(&mut a, KeyCode::Down);
    assert_eq!(a.ratio, 3);
    ch(&mut a, 'k');
    ch(&mut a, 'k');
    assert_eq!(a.ratio, 1);
}

#[test]
fn enter_zooms_and_esc_backs_out_one_level_at_a_time() {
    let mut a = opened();
    press(&mut a, KeyCode::Enter);
    assert!(a.zoomed);
    press(&mut a, KeyCode::Tab);
    assert!(a.zoomed, "zoom follows the focus");
    assert_eq!(a.focus, Pane::Training);
    press(&mut a, KeyCode::Esc);
    assert!(!a.zoomed);
    assert_eq!(a.screen, Screen::Experiment);
    press(&mut a, KeyCode::Esc);
    assert_eq!(a.screen, Screen::List);
}

#[test]
fn help_opens_scrolls_and_closes_with_esc_or_question_mark() {
    let mut a = opened();
    ch(&mut a, '?');
    assert_eq!(a.popup, Some(Popup::Help { scroll: 0 }));
    press(&mut a, KeyCode::Down);
    press(&mut a, KeyCode::Down);
    assert_eq!(a.popup, Some(Popup::Help { scroll: 2 }));
    // keys under the popup do nothing while it is open
    press(&mut a, KeyCode::Right);
    assert_eq!(a.ratio, 2);
    press(&mut a, KeyCode::Esc);
    assert_eq!(a.popup, None);
    assert_eq!(a.screen, Screen::Experiment, "Esc only closed the popup");
    ch(&mut a, '?');
    ch(&mut a, '?');
    assert_eq!(a.popup, None);
}

#[test]
fn rerun_starts_a_run_and_cancel_asks_first() {
    let mut a = opened();
    ch(&mut a, 'c');
    assert_eq!(status(&a), "no run in progress");
    assert_eq!(a.popup, None);

    let cmd = ch(&mut a, 'r');
    let Some(Cmd::StartRun { id, source }) = cmd else {
        panic!("r starts a run, got {cmd:?}");
    };
    assert!(matches!(&source, RunSource::Config(c) if c.name == "article"));
    assert!(a.viewing_live && a.is_running());
    assert_eq!(ch(&mut a, 'r'), None, "one run at a time");
    assert!(status(&a).contains("already going"));

    ch(&mut a, 'c');
    assert_eq!(a.popup, Some(Popup::ConfirmCancel));
    assert_eq!(ch(&mut a, 'n'), None);
    assert_eq!(a.popup, None);
    assert!(a.is_running());
    ch(&mut a, 'c');
    assert_eq!(ch(&mut a, 'y'), Some(Cmd::Cancel));
    assert_eq!(a.live.as_ref().unwrap().state, RunState::Cancelling);
    assert_eq!(a.live.as_ref().unwrap().id, id);
}

#[test]
fn worker_events_build_the_live_run_and_stale_runs_are_ignored() {
    let mut a = opened();
    let Some(Cmd::StartRun { id, .. }) = ch(&mut a, 'r') else {
        panic!("no run started")
    };
    let model = a.opened.as_ref().unwrap().record.model.clone();
    let started = RunEvent::Started {
        name: "article".into(),
        params: 682,
        epochs: 10,
        ratios: 5,
        model: Box::new(model.clone()),
    };
    a.update(Msg::Worker(id, started));
    // the layer table is there from the first event, not only with the saved record
    assert_eq!(a.live.as_ref().unwrap().model.as_ref(), Some(&model));
    let stats = a.opened.as_ref().unwrap().record.residual.history[3];
    a.update(Msg::Worker(
        id,
        RunEvent::Epoch {
            variant: Variant::Residual,
            stats,
            epochs: 10,
        },
    ));
    // an older run's event changes nothing
    a.update(Msg::Worker(
        id + 100,
        RunEvent::Epoch {
            variant: Variant::Plain,
            stats,
            epochs: 10,
        },
    ));
    let live = a.live.as_ref().unwrap();
    assert_eq!((live.params, live.epochs, live.ratios), (682, 10, 5));
    assert_eq!(live.residual.history, vec![stats]);
    assert!(live.plain.history.is_empty());
    let shown = a.shown().unwrap();
    assert!(shown.live().is_some());
    assert_eq!(shown.ratio_count(), 5);

    let saved = PathBuf::from("tests/fixtures/article-new.toml");
    let cmd = a.update(Msg::Worker(id, RunEvent::Finished(saved.clone())));
    assert_eq!(cmd, Some(Cmd::ReloadList { open: Some(saved) }));
    assert!(!a.is_running());
}

#[test]
fn a_failed_run_says_why() {
    let mut a = app();
    let Some(Cmd::StartRun { id, .. }) = ch(&mut a, 'r') else {
        panic!("r on the list reruns the selected record")
    };
    a.update(Msg::Worker(
        id,
        RunEvent::Failed("data: no such file".into()),
    ));
    assert_eq!(status(&a), "run failed: data: no such file");
    assert!(!a.is_running());
}

const OTHER: &str = "tests/fixtures/other.toml";

/// The fixture and a copy of it with two config keys and one result changed.
fn two_records() -> App {
    let mut a = app();
    let mut other = resprune::record::load(FIXTURE.as_ref()).unwrap();
    other.config.seed = 7;
    other.config.train.lr = 0.002;
    other.residual.pruning[0].sensitivity *= 2.0;
    let mut entries = a.list.entries.clone();
    entries.push(ListEntry {
        path: PathBuf::from(OTHER),
        record: Ok(Box::new(other)),
    });
    a.update(Msg::Listed {
        records: entries,
        configs: vec![],
        open: None,
    });
    a
}

/// Performs a `Cmd::Diff` as the event loop does and feeds the answer back.
fn perform_diff(a: &mut App, cmd: Option<Cmd>) {
    match cmd {
        Some(Cmd::Diff {
            marked,
            current,
            old,
            new,
        }) => {
            let msg = resprune::tui::diff_msg(marked, current, &old, &new);
            assert_eq!(a.update(msg), None);
        }
        other => panic!("expected a diff command, got {other:?}"),
    }
}

fn diff_state(a: &App) -> &DiffState {
    match &a.screen {
        Screen::Diff(d) => d,
        other => panic!("not on the diff screen: {other:?}"),
    }
}

#[test]
fn mark_then_diff_needs_two_different_records() {
    let mut a = app();
    assert_eq!(ch(&mut a, 'd'), None);
    assert!(status(&a).contains("mark a record"));
    ch(&mut a, 'm');
    assert_eq!(a.marked, Some(PathBuf::from(FIXTURE)));
    assert_eq!(ch(&mut a, 'd'), None);
    assert!(status(&a).contains("marked record"), "{}", status(&a));
    assert_eq!(a.screen, Screen::List);
}

#[test]
fn mark_and_diff_from_the_list_shows_config_changes_and_changed_rows() {
    let mut a = two_records();
    ch(&mut a, 'm');
    press(&mut a, KeyCode::Down);
    let cmd = ch(&mut a, 'd');
    assert_eq!(
        a.screen,
        Screen::List,
        "the diff is computed outside the app"
    );
    perform_diff(&mut a, cmd);
    let d = diff_state(&a);
    assert_eq!(d.marked, PathBuf::from(FIXTURE));
    assert_eq!(d.current, PathBuf::from(OTHER));
    let keys: Vec<&str> = d.diff.config.iter().map(|c| c.key.as_str()).collect();
    assert_eq!(d.diff.config.len(), 2, "{keys:?}");
    assert!(
        keys.contains(&"seed") && keys.contains(&"train.lr"),
        "{keys:?}"
    );
    let lr = d.diff.config.iter().find(|c| c.key == "train.lr").unwrap();
    assert_eq!(
        (lr.old.as_deref(), lr.new.as_deref()),
        (Some("0.001"), Some("0.002"))
    );
    // only the changed rows by default; the sensitivity row is one of them
    assert!(!d.all);
    let changed = d.rows().len();
    assert!(changed >= 1 && changed < d.diff.rows.len());
    assert!(d.rows().iter().all(|r| r.changed));
    assert!(d
        .rows()
        .iter()
        .any(|r| r.variant == Variant::Residual && r.metric == "sensitivity"));
    assert!(status(&a).starts_with("2 config changes"), "{}", status(&a));
    // a shows every row, again only the changed ones
    ch(&mut a, 'a');
    assert!(diff_state(&a).all);
    assert_eq!(diff_state(&a).rows().len(), diff_state(&a).diff.rows.len());
    press(&mut a, KeyCode::Down);
    assert_eq!(diff_state(&a).scroll, 1);
    ch(&mut a, 'a');
    assert_eq!(diff_state(&a).rows().len(), changed);
    assert_eq!(diff_state(&a).scroll, 0);
    press(&mut a, KeyCode::Esc);
    assert_eq!(a.screen, Screen::List);
}

#[test]
fn diff_from_an_opened_record_goes_back_to_it() {
    let mut a = two_records();
    ch(&mut a, 'm');
    press(&mut a, KeyCode::Down);
    press(&mut a, KeyCode::Enter);
    assert_eq!(a.screen, Screen::Experiment);
    let cmd = ch(&mut a, 'd');
    perform_diff(&mut a, cmd);
    assert_eq!(diff_state(&a).current, PathBuf::from(OTHER));
    assert_eq!(diff_state(&a).diff.config.len(), 2);
    press(&mut a, KeyCode::Esc);
    assert_eq!(a.screen, Screen::Experiment);
}

#[test]
fn replay_runs_off_the_ui_thread_and_shows_the_outcome() {
    let mut a = app();
    assert_eq!(ch(&mut a, 'R'), None);
    assert!(status(&a).contains("open a saved record"), "{}", status(&a));
    press(&mut a, KeyCode::Enter);
    let cmd = ch(&mut a, 'R');
    assert_eq!(
        cmd,
        Some(Cmd::Replay {
            path: PathBuf::from(FIXTURE)
        })
    );
    assert_eq!(a.replaying, Some(PathBuf::from(FIXTURE)));
    assert_eq!(ch(&mut a, 'R'), None, "one replay at a time");
    assert!(status(&a).contains("already replaying"));
    let outcome = ReplayOutcome {
        new_path: PathBuf::from("tests/fixtures/new.toml"),
        compared: 120,
        numbers: 100,
        complete: true,
        mismatches: vec![],
    };
    let cmd = a.update(Msg::Replayed {
        path: PathBuf::from(FIXTURE),
        outcome: Ok(outcome),
    });
    assert_eq!(cmd, Some(Cmd::ReloadList { open: None }));
    assert_eq!(a.replaying, None);
    assert_eq!(status(&a), "replay: all 120 values match");
    assert!(matches!(a.popup, Some(Popup::Replay { .. })));
    press(&mut a, KeyCode::Esc);
    assert_eq!(a.popup, None);
    assert_eq!(a.screen, Screen::Experiment);
    // a mismatch and a failure
    ch(&mut a, 'R');
    let mismatch = resprune::record::diff::Mismatch {
        path: "residual.pruning[0].sensitivity".into(),
        stored: Some("1".into()),
        new: Some("2".into()),
        rel_error: Some(0.5),
    };
    a.update(Msg::Replayed {
        path: PathBuf::from(FIXTURE),
        outcome: Ok(ReplayOutcome {
            new_path: PathBuf::from("tests/fixtures/new.toml"),
            compared: 120,
            numbers: 100,
            complete: true,
            mismatches: vec![mismatch],
        }),
    });
    assert_eq!(status(&a), "replay: 1 of 120 values differ");
    press(&mut a, KeyCode::Esc);
    ch(&mut a, 'R');
    let cmd = a.update(Msg::Replayed {
        path: PathBuf::from(FIXTURE),
        outcome: Err("no such file".into()),
    });
    assert_eq!(cmd, None);
    assert_eq!(status(&a), "replay failed: no such file");
}

#[test]
fn t_cycles_themes_and_wraps() {
    let mut a = app();
    let names: Vec<String> = (0..5)
        .map(|_| {
            ch(&mut a, 't');
            a.theme().name.clone()
        })
        .collect();
    assert_eq!(
        names,
        ["light", "high-contrast", "monochrome", "dark", "light"]
    );
    assert_eq!(status(&a), "theme: light");
}

#[test]
fn filter_narrows_the_list_and_esc_clears_it() {
    let mut a = app();
    ch(&mut a, '/');
    for c in "art".chars() {
        ch(&mut a, c);
    }
    assert_eq!(a.list_rows().len(), 1);
    ch(&mut a, 'x');
    assert!(a.list_rows().is_empty());
    press(&mut a, KeyCode::Backspace);
    assert_eq!(a.list.filter, "art");
    press(&mut a, KeyCode::Enter);
    assert!(!a.list.filtering);
    assert_eq!(a.list.filter, "art", "Enter keeps the filter");
    press(&mut a, KeyCode::Esc);
    assert_eq!(a.list.filter, "");
}

#[test]
fn new_run_prompt_offers_configs() {
    let mut a = app();
    ch(&mut a, 'n');
    assert!(matches!(a.popup, Some(Popup::NewRun(_))));
    ch(&mut a, 'z');
    assert_eq!(press(&mut a, KeyCode::Esc), None);
    assert_eq!(a.popup, None);
    ch(&mut a, 'n');
    ch(&mut a, 'a');
    press(&mut a, KeyCode::Tab);
    match &a.popup {
        Some(Popup::NewRun(p)) => assert_eq!(p.input, "experiments/article.toml"),
        other => panic!("prompt closed: {other:?}"),
    }
    let cmd = press(&mut a, KeyCode::Enter);
    assert!(
        matches!(&cmd, Some(Cmd::StartRun { source: RunSource::Path(p), .. })
            if p == &PathBuf::from("experiments/article.toml")),
        "{cmd:?}"
    );
    assert_eq!(a.popup, None);
    assert_eq!(a.screen, Screen::Experiment);
}

#[test]
fn unfinished_features_say_so() {
    let mut a = opened();
    ch(&mut a, 's');
    assert!(status(&a).contains("dense only"));
    ch(&mut a, 'L');
    assert!(a.log_counts);
    // any key clears the message
    press(&mut a, KeyCode::Tab);
    assert_eq!(a.status, None);
}

/// While a spectrum runs, its pane says which estimator is at work and how far it is; the
/// model pane has the layer table from the first event.
#[test]
fn a_live_run_shows_its_layer_table_and_spectrum_progress() {
    use ratatui::backend::TestBackend;
    use resprune::curvature::SpectrumPhase;
    use resprune::experiment::Stage;

    let mut a = opened();
    let Some(Cmd::StartRun { id, .. }) = ch(&mut a, 'r') else {
        panic!("no run started")
    };
    let model = a.opened.as_ref().unwrap().record.model.clone();
    let events = [
        RunEvent::Started {
            name: "article".into(),
            params: 682,
            epochs: 10,
            ratios: 5,
            model: Box::new(model),
        },
        RunEvent::StageStarted {
            variant: Variant::Plain,
            stage: Stage::Spectrum,
        },
        RunEvent::HessianProgress {
            variant: Variant::Plain,
            phase: SpectrumPhase::Lanczos,
            done: 40,
            total: 100,
        },
    ];
    for ev in events {
        a.update(Msg::Worker(id, ev));
    }
    let screen = |a: &App| {
        let mut t = ratatui::Terminal::new(TestBackend::new(160, 48)).unwrap();
        t.draw(|f| resprune::tui::views::draw(f, a)).unwrap();
        let buf = t.backend().buffer().clone();
        (0..buf.area.height)
            .map(|y| {
                (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let text = screen(&a);
    assert!(text.contains("plain spectrum: Lanczos 40/100"), "{text}");
    assert!(
        text.contains("blocks.0"),
        "the layer table is shown live:\n{text}"
    );
    assert!(!text.contains("arrives"), "{text}");
}

const STRUCTURED: &str = "tests/fixtures/structured-record.toml";

fn opened_structured() -> App {
    let mut app = App::new(Setup::defaults(PathBuf::from("tests/fixtures")));
    let record = resprune::record::load(STRUCTURED.as_ref()).expect("structured fixture loads");
    app.update(Msg::Listed {
        records: vec![ListEntry {
            path: PathBuf::from(STRUCTURED),
            record: Ok(Box::new(record)),
        }],
        configs: vec![],
        open: None,
    });
    press(&mut app, KeyCode::Enter);
    app
}

#[test]
fn g_cycles_granularity_and_capital_m_the_method_with_ratio_steps_inside_them() {
    use resprune::config::{Granularity, PruneMethod};
    let mut a = opened_structured();
    assert_eq!(a.screen, Screen::Experiment);
    // several granularities: the first is shown, every method at once
    assert_eq!(a.granularity, Some(Granularity::Unstructured));
    assert_eq!(a.method, None);
    let rows = |a: &App| a.shown().unwrap().ratio_count();
    // 2 methods x 2 ratios of single weights
    assert_eq!(rows(&a), 4);
    ch(&mut a, 'g');
    assert_eq!(a.granularity, Some(Granularity::Neuron));
    ch(&mut a, 'M');
    assert_eq!(a.method, Some(PruneMethod::Magnitude));
    assert_eq!(rows(&a), 2);
    for _ in 0..5 {
        press(&mut a, KeyCode::Right);
    }
    assert_eq!(a.ratio, 1, "ratio steps stop at the filtered table's end");
    let shown = a.shown().unwrap();
    let row = shown.row(Variant::Residual, a.ratio).unwrap();
    assert_eq!(
        (row.granularity, row.method, row.ratio),
        (Granularity::Neuron, PruneMethod::Magnitude, 0.5)
    );
    ch(&mut a, 'M');
    assert_eq!(a.method, Some(PruneMethod::Wanda));
    ch(&mut a, 'M');
    assert_eq!(a.method, None, "after the last method: every method again");
    ch(&mut a, 'g');
    assert_eq!(a.granularity, Some(Granularity::Block));
    ch(&mut a, 'g');
    assert_eq!(a.granularity, Some(Granularity::Unstructured), "wraps");
}

#[test]
fn b_shows_the_block_lesions_and_says_when_there_are_none() {
    let mut a = opened_structured();
    assert!(!a.lesions);
    ch(&mut a, 'b');
    assert!(a.lesions);
    assert_eq!(a.focus, Pane::Pruning);
    ch(&mut a, 'b');
    assert!(!a.lesions);
    // the article record prunes single weights at depth 1: no lesions
    let mut a = opened();
    ch(&mut a, 'b');
    assert!(!a.lesions);
    assert!(status(&a).contains("no block lesions"), "{}", status(&a));
}
