//! `?`: the keys of the current view, from the same table that dispatches them, and a glossary.
//! Laid out in as many columns as fit, so the whole help shows at 80×24.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use crate::tui::event::bindings_for;
use crate::tui::theme::Theme;
use crate::tui::views::View;

const GLOSSARY: &[(&str, &str)] = &[
    ("HG", "hostgroup"),
    ("SHUNNED", "out after errors"),
    ("OFFLINE_SOFT", "draining"),
    ("OFFLINE_HARD", "fenced until unfenced"),
    ("Tier", "priority; 0 used first"),
    ("Pinned", "owns a backend conn"),
];

const COLUMN_WIDTH: u16 = 38;

/// Lays `lines` out column by column.
fn columns(frame: &mut Frame, area: Rect, lines: Vec<Line<'static>>) {
    let n = usize::from((area.width / COLUMN_WIDTH).max(1));
    let per = lines.len().div_ceil(n).max(1);
    let areas = Layout::horizontal(vec![Constraint::Ratio(1, n as u32); n]).split(area);
    let mut lines = lines.into_iter();
    for col in areas.iter() {
        let chunk: Vec<Line> = lines.by_ref().take(per).collect();
        frame.render_widget(Paragraph::new(chunk), *col);
    }
}

/// `connect`: how to reach the proxy and its admin interface (the demo's connection lines), shown
/// first so they stay one key away once the console has covered the terminal.
pub fn render_help(frame: &mut Frame, area: Rect, view: View, connect: &[String], theme: &Theme) {
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border)
        .title(Span::styled(" Help (Esc or ? to close) ", theme.title));
    let inner = block.inner(area);
    frame.render_widget(Clear, area);
    frame.render_widget(block, area);

    let mut keys = vec![Line::from(vec![
        Span::styled(format!("{:<10}", "1-9 0"), theme.header),
        Span::styled("switch view", theme.text),
    ])];
    for b in bindings_for(view) {
        keys.push(Line::from(vec![
            Span::styled(format!("{:<10}", b.label), theme.header),
            Span::styled(b.help, theme.text),
        ]));
    }
    let glossary: Vec<Line> = GLOSSARY
        .iter()
        .map(|(term, meaning)| {
            Line::from(vec![
                Span::styled(format!("{term:<13}"), theme.muted),
                Span::styled(*meaning, theme.muted),
            ])
        })
        .collect();
    let n = usize::from((inner.width / COLUMN_WIDTH).max(1));
    let key_rows = keys.len().div_ceil(n) as u16;
    let glossary_rows = glossary.len().div_ceil(n) as u16;
    let connect_rows = connect.len() as u16;
    let [connect_area, about, key_area, gap, glossary_area] = Layout::vertical([
        Constraint::Length(connect_rows),
        Constraint::Length(1),
        Constraint::Length(key_rows),
        Constraint::Length(1),
        Constraint::Length(glossary_rows),
    ])
    .areas(inner);
    frame.render_widget(
        Paragraph::new(Line::styled(
            format!("{}: {}", view.title(), view.about()),
            theme.title,
        )),
        about,
    );
    let connect: Vec<Line> = connect
        .iter()
        .map(|l| Line::styled(l.clone(), theme.text))
        .collect();
    frame.render_widget(Paragraph::new(connect), connect_area);
    columns(frame, key_area, keys);
    let _ = gap;
    columns(frame, glossary_area, glossary);
}
