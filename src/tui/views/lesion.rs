//! Block lesions: each block's ΔL when it is taken out, the residual model beside both plain
//! counterfactuals (identity substitution, zeroing), then the k-least-important sweep.

use ratatui::layout::{Constraint, Rect};
use ratatui::text::Span;
use ratatui::widgets::{Cell, Row, Table};
use ratatui::Frame;

use crate::model::Variant;
use crate::prune::lesion::{Counterfactual, LesionRow, LesionSweepRow, Lesions};
use crate::tui::shown::Shown;
use crate::tui::theme::Theme;

use super::fmt;

fn delta<'a>(theme: &Theme, v: Variant, x: Option<&LesionRow>) -> Cell<'a> {
    match x {
        Some(x) => Cell::from(Span::styled(fmt::num(x.delta_loss), theme.variant(v))),
        None => Cell::from(Span::styled("-", theme.dim())),
    }
}

fn swept<'a>(
    theme: &Theme,
    v: Variant,
    l: &Lesions,
    x: &LesionSweepRow,
    c: Counterfactual,
) -> Cell<'a> {
    let hit = l
        .sweep
        .iter()
        .find(|y| y.criterion == x.criterion && y.k == x.k && y.counterfactual == c);
    match hit {
        Some(y) => Cell::from(Span::styled(fmt::num(y.delta_loss), theme.variant(v))),
        None => Cell::from(Span::styled("-", theme.dim())),
    }
}

/// The rows of the lesion table: one per block, a blank line, one per (ranking, k).
pub fn rows<'a>(theme: &Theme, res: &Lesions, plain: &Lesions) -> Vec<Row<'a>> {
    use Counterfactual::{Identity, Zero};
    let depth = res.single.iter().map(|x| x.block + 1).max().unwrap_or(0);
    let mut out: Vec<Row> = (0..depth)
        .map(|b| {
            Row::new(vec![
                Cell::from(format!("block {b}")),
                delta(theme, Variant::Residual, res.single(b, Identity)),
                delta(theme, Variant::Plain, plain.single(b, Identity)),
                delta(theme, Variant::Plain, plain.single(b, Zero)),
            ])
        })
        .collect();
    if !res.sweep.is_empty() {
        out.push(Row::new(vec![Cell::from(Span::styled(
            "k least important, by",
            theme.title(),
        ))]));
        for x in res.sweep.iter().filter(|x| x.counterfactual == Identity) {
            let name = x.criterion.map_or("oracle", |m| m.name());
            out.push(Row::new(vec![
                Cell::from(format!("{name} k={}", x.k)),
                Cell::from(Span::styled(fmt::num(x.delta_loss), theme.residual())),
                swept(theme, Variant::Plain, plain, x, Identity),
                swept(theme, Variant::Plain, plain, x, Zero),
            ]));
        }
    }
    out
}

pub fn render(frame: &mut Frame, area: Rect, theme: &Theme, shown: &Shown) {
    let (Some(res), Some(plain)) = (
        shown.variant(Variant::Residual).lesions.as_ref(),
        shown.variant(Variant::Plain).lesions.as_ref(),
    ) else {
        frame.render_widget(
            ratatui::widgets::Paragraph::new("no block lesions in this record"),
            area,
        );
        return;
    };
    let header =
        Row::new(["ΔL when taken out", "residual", "plain id", "plain 0"]).style(theme.title());
    let widths = [
        Constraint::Length(24),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(10),
    ];
    let table = Table::new(rows(theme, res, plain), widths)
        .header(header)
        .column_spacing(1);
    frame.render_widget(table, area);
}
