//! Drawing: the whole screen from `&App`, nothing mutated, so the same state always gives the
//! same frame (and the snapshot tests mean something).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Gauge, Paragraph};
use ratatui::Frame;

use super::app::{App, BackupPrompt, Mode};
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
        Mode::Help => widgets::render_help(frame, body, app.view(), &app.connect, theme),
        Mode::Confirm(c) => widgets::render_confirm(frame, body, c, theme),
        Mode::ConfirmOps(c) => widgets::render_confirm_ops(frame, body, c, theme),
        Mode::Number {
            field,
            target,
            input,
        } => widgets::render_prompt(
            frame,
            body,
            &format!(
                "New {} for {target} (0-{}, Enter to review, Esc to cancel)",
                field.name(),
                field.max()
            ),
            input,
            theme,
        ),
        Mode::EditRule(form) => widgets::render_rule_form(frame, body, form, theme),
        Mode::BackupForm(form) => {
            views::backups::render_form(frame, body, form, &app.backups, theme)
        }
        Mode::BackupPrompt { what, input } => widgets::render_prompt(
            frame,
            body,
            &match what {
                BackupPrompt::RestoreTo(id) => {
                    format!("Restore {id} to file (Enter to review, Esc)")
                }
                BackupPrompt::PruneKeep => {
                    "Keep the newest N complete backups (Enter to review, Esc)".to_owned()
                }
            },
            input,
            theme,
        ),
        Mode::ConfirmBackup(c) => widgets::render_question(
            frame,
            body,
            &c.question,
            None,
            "It runs as:",
            &c.details,
            theme,
        ),
        Mode::SstEdit { field, input } => widgets::render_prompt(
            frame,
            body,
            &format!(
                "{} (Enter to keep, Esc to cancel)",
                super::app::sst::FIELDS[*field]
            ),
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
    if view == View::Sst {
        views::sst::render(frame, area, &app.sst, theme);
        return;
    }
    if view == View::Failover {
        let state = app.view_state(view);
        views::failover::render(frame, area, &app.model, &state, theme);
        return;
    }
    if view == View::Backups {
        let state = app.view_state(view);
        views::backups::render(frame, area, &app.backups, &state, theme);
        return;
    }
    if view == View::Fleet {
        let state = app.view_state(view);
        let data = views::fleet::table(&app.fleet);
        views::fleet::render(frame, area, &app.fleet, &data, &state, theme);
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
    if view == View::Capacity {
        views::capacity::render(
            frame,
            area,
            &title,
            &data,
            &state,
            app.model.current(),
            theme,
        );
        return;
    }
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
    let block = Block::default()
        .borders(Borders::TOP)
        .border_style(theme.border);
    let inner = block.inner(detail);
    frame.render_widget(block, detail);
    let (lines, drain): (Vec<Line>, _) = match (selected, app.model.current()) {
        (Some(RowKey::Server(t)), Some(snap)) => (
            views::server_detail(snap, &t)
                .into_iter()
                .map(|l| Line::styled(l, theme.text))
                .collect(),
            t.hostgroup
                .and_then(|hg| app.model.drain_progress(hg, &t.host, t.port)),
        ),
        _ => (vec![Line::styled("no server selected", theme.muted)], None),
    };
    let [text, gauge] = Layout::vertical([
        Constraint::Min(0),
        Constraint::Length(u16::from(drain.is_some())),
    ])
    .areas(inner);
    frame.render_widget(Paragraph::new(lines), text);
    if let Some(p) = drain {
        frame.render_widget(
            Gauge::default()
                .ratio(p.ratio())
                .gauge_style(theme.offline_soft)
                .label(format!(
                    "drained {} of {} connections, {} left",
                    p.peak.saturating_sub(p.left),
                    p.peak,
                    p.left
                )),
            gauge,
        );
    }
}
