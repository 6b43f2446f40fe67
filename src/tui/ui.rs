//! Drawing: the whole screen from `&App`, nothing mutated, so the same state always gives the
//! same frame (and the snapshot tests mean something).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph};
use ratatui::Frame;

use super::app::{App, Mode};
use super::theme::Theme;
use super::views::{self, arrange, RowKey, View};
use super::widgets;

pub fn draw(frame: &mut Frame, app: &App, theme: &Theme) {
    let area = frame.area();
    if area.width < widgets::MIN_WIDTH || area.height < widgets::MIN_HEIGHT {
        widgets::render_too_small(frame, area, theme);
        return;
    }
    let [top, body, bottom] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(area);
    widgets::render_tabs(frame, top, app, theme);
    draw_body(frame, body, app, theme);
    widgets::render_status_line(frame, bottom, app, theme);
    match &app.mode {
        Mode::Help => widgets::render_help(frame, body, app.view(), theme),
        Mode::Confirm(c) => widgets::render_confirm(frame, body, c, theme),
        Mode::Weight { target, input } => widgets::render_prompt(
            frame,
            body,
            &format!("New weight for {target} (0-10000000, Enter to review, Esc to cancel)"),
            input,
            theme,
        ),
        Mode::Normal | Mode::Filter => {}
    }
}

fn draw_body(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let view = app.view();
    if view == View::Overview {
        views::render_overview(frame, area, &app.model, theme);
        return;
    }
    let Some(data) = views::table(view, &app.model, app.scope()) else {
        frame.render_widget(
            Paragraph::new("waiting for the first read of the admin interface…").style(theme.muted),
            area,
        );
        return;
    };
    let state = app.view_state(view);
    let title = match app.scope().label() {
        Some(scope) => format!("{} in {scope}", view.title()),
        None => view.title().to_owned(),
    };
    if view != View::Servers {
        widgets::render_table(frame, area, &title, &data, &state, theme);
        return;
    }
    // Servers: a detail pane keeps the whole "why" visible when the column is cut.
    let [table, detail] = Layout::vertical([Constraint::Min(0), Constraint::Length(4)]).areas(area);
    widgets::render_table(frame, table, &title, &data, &state, theme);
    let selected = arrange(&data, &state)
        .get(state.selected)
        .map(|r| r.key.clone());
    let lines: Vec<Line> = match (selected, app.model.current()) {
        (Some(RowKey::Server(t)), Some(snap)) => views::server_detail(snap, &t)
            .into_iter()
            .map(|l| Line::styled(l, theme.text))
            .collect(),
        _ => vec![Line::styled("no server selected", theme.muted)],
    };
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::TOP)
                .border_style(theme.border),
        ),
        detail,
    );
}
