//! How long the notebook takes to draw a frame and to answer a key (issue 4's 16 ms budget):
//! the experiment view of the bundled fixture record drawn into ratatui's `TestBackend` at
//! 80×24 and 160×48, and one key (next pruning ratio) handled then drawn.
//!
//!     cargo bench --bench tui

use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use resprune::tui::msg::{ListEntry, Msg};
use resprune::tui::{views, App, Setup};

const FIXTURE: &str = "tests/fixtures/article-record.toml";

fn opened() -> App {
    let record = resprune::record::load(FIXTURE.as_ref()).expect("fixture record loads");
    let mut app = App::new(Setup::defaults(PathBuf::from("tests/fixtures")));
    app.update(Msg::Listed {
        records: vec![ListEntry {
            path: PathBuf::from(FIXTURE),
            record: Ok(Box::new(record)),
        }],
        configs: vec![],
        open: None,
    });
    app.update(Msg::Key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE)));
    app
}

fn draw(c: &mut Criterion) {
    let mut g = c.benchmark_group("tui");
    for (w, h) in [(80u16, 24u16), (160, 48)] {
        let app = opened();
        let mut term = Terminal::new(TestBackend::new(w, h)).unwrap();
        g.bench_function(format!("draw_{w}x{h}"), |b| {
            b.iter(|| term.draw(|f| views::draw(f, &app)).unwrap().area.width)
        });
    }
    // key to frame: the update a key causes plus the redraw that shows it
    let mut app = opened();
    let mut term = Terminal::new(TestBackend::new(160, 48)).unwrap();
    let mut right = true;
    g.bench_function("key_to_frame_160x48", |b| {
        b.iter(|| {
            let code = if right { KeyCode::Right } else { KeyCode::Left };
            right = !right;
            app.update(Msg::Key(KeyEvent::new(code, KeyModifiers::NONE)));
            term.draw(|f| views::draw(f, &app)).unwrap().area.width
        })
    });
    g.finish();
}

criterion_group!(benches, draw);
criterion_main!(benches);
