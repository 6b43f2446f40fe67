//! The table every list view uses: header with the sort marker, rows with role styles, the
//! selection, and the notes about unavailable features above it.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use crate::tui::theme::Theme;
use crate::tui::views::{arrange, Role, TableData, ViewState};

pub fn role_style(theme: &Theme, role: Role) -> ratatui::style::Style {
    match role {
        Role::Text => theme.text,
        Role::Muted => theme.muted,
        Role::Status(s) => theme.status(s),
        Role::Changed => theme.changed,
        Role::Warning => theme.warning,
        Role::Error => theme.error,
    }
}

pub fn render_table(
    frame: &mut Frame,
    area: Rect,
    title: &str,
    data: &TableData,
    state: &ViewState,
    theme: &Theme,
) {
    let width = usize::from(area.width.max(1));
    let note_rows: usize = data
        .notes
        .iter()
        .map(|n| n.chars().count().div_ceil(width).max(1))
        .sum();
    let [notes_area, table_area] =
        Layout::vertical([Constraint::Length(note_rows as u16), Constraint::Min(0)]).areas(area);
    let notes: Vec<Line> = data
        .notes
        .iter()
        .map(|n| Line::styled(n.as_str(), theme.warning))
        .collect();
    frame.render_widget(
        Paragraph::new(notes).wrap(ratatui::widgets::Wrap { trim: false }),
        notes_area,
    );

    let rows = arrange(data, state);
    let (sort_col, desc) = state.sort_or(data);
    let shown_cols: Vec<usize> = (0..data.columns.len())
        .filter(|i| data.columns[*i].hide_below <= area.width)
        .collect();
    let header = Row::new(
        shown_cols
            .iter()
            .map(|&i| (i, &data.columns[i]))
            .map(|(i, c)| {
                let marker = match (i == sort_col, desc) {
                    (true, true) => "▼",
                    (true, false) => "▲",
                    _ => "",
                };
                format!("{}{marker}", c.title)
            }),
    )
    .style(theme.header);
    let widths: Vec<Constraint> = shown_cols.iter().map(|&i| data.columns[i].width).collect();
    let count = rows.len();
    let body = rows.into_iter().map(|r| {
        Row::new(shown_cols.iter().filter_map(|&i| r.cells.get(i)).map(|c| {
            ratatui::widgets::Cell::from(Span::styled(c.text.as_str(), role_style(theme, c.role)))
        }))
    });
    let shown = format!(
        " {title} ({count}{}) ",
        if data.rows.len() != count {
            format!(" of {}", data.rows.len())
        } else {
            String::new()
        }
    );
    let table = Table::new(body, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(theme.selected)
        .block(
            Block::default()
                .borders(Borders::TOP)
                .border_style(theme.border)
                .title(Span::styled(shown, theme.title)),
        );
    let mut ts = TableState::default().with_selected((count > 0).then_some(state.selected));
    frame.render_stateful_widget(table, table_area, &mut ts);
}
