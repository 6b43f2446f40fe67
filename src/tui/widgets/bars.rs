//! The title bar with the view tabs, the status line, and the "terminal too small" screen.

use ratatui::layout::{Alignment, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::display::{date_clock, fmt_interval, sanitize};
use crate::tui::app::{App, Mode, Tone};
use crate::tui::theme::Theme;
use crate::tui::views::View;

/// Below this the layout cannot show a server row with its status; say so instead.
pub const MIN_WIDTH: u16 = 80;
pub const MIN_HEIGHT: u16 = 24;

pub fn render_tabs(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    // Full titles when they all fit with the product name, the short ones otherwise.
    let full: usize =
        " switchyard ".len() + View::ALL.iter().map(|v| v.title().len() + 3).sum::<usize>();
    let wide = usize::from(area.width) > full;
    // Narrower still, a digit sits against its label ("1Ovw", while "F Fail" keeps its space
    // to stay readable): every tab stays on screen at 80 columns.
    let short: usize = View::ALL.iter().map(|v| v.short().len() + 3).sum();
    let compact = !wide && usize::from(area.width) <= short;
    // The letter views keep their space unless that pushes the last tab off screen.
    let compact_with_gaps: usize = View::ALL
        .iter()
        .map(|v| v.short().len() + if v.key().is_ascii_digit() { 2 } else { 3 })
        .sum();
    let letter_gaps = compact_with_gaps <= usize::from(area.width);
    // At 80 columns every tab needs the room the product name would take.
    let mut spans = if area.width >= 100 {
        vec![Span::styled(" switchyard ", theme.title)]
    } else {
        vec![Span::raw("")]
    };
    for view in View::ALL {
        let label = if wide { view.title() } else { view.short() };
        let style = if view == app.view() {
            theme.tab_active
        } else {
            theme.tab
        };
        let key = view.key();
        let gap = if compact && (key.is_ascii_digit() || !letter_gaps) {
            ""
        } else {
            " "
        };
        spans.push(Span::styled(format!(" {key}{gap}{label}"), style));
    }
    let used: usize = spans.iter().map(|s| s.content.chars().count()).sum();
    let right = if app.read_only { " READ-ONLY " } else { "" };
    let target = sanitize(&app.admin_label);
    let room = usize::from(area.width).saturating_sub(used + right.len() + 1);
    // The target is shown right-aligned, cut to the room left, and always apart from the tabs.
    if room > 8 {
        let shown: String = target.chars().take(room - 1).collect();
        spans.push(Span::styled(
            format!(" {shown:>width$}", width = room - 1),
            theme.muted,
        ));
    }
    if !right.is_empty() {
        spans.push(Span::raw(" "));
        spans.push(Span::styled(right, theme.error));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

pub fn render_status_line(frame: &mut Frame, area: Rect, app: &App, theme: &Theme) {
    let mut left: Vec<Span> = Vec::new();
    let state = app.view_state(app.view());
    if let Mode::Filter = app.mode {
        left.push(Span::styled(
            format!(" filter: {}_ ", state.filter),
            theme.status_line,
        ));
    } else if let Some(err) = &app.model.read_error {
        left.push(Span::styled(
            format!(" read failed: {} ", sanitize(err)),
            theme.error,
        ));
    } else if let Some(status) = &app.status {
        let style = match status.tone {
            Tone::Info => theme.text,
            Tone::Error => theme.error,
        };
        left.push(Span::styled(format!(" {} ", sanitize(&status.text)), style));
    }
    let mut right = Vec::new();
    if let Some(scope) = app.scope().label() {
        right.push(format!("in {scope}"));
    }
    if !state.filter.is_empty() && app.mode != Mode::Filter {
        right.push(format!("filter: {}", state.filter));
    }
    // When the data on screen is not fresh, say how old it is.
    let taken = app.model.current().map(|s| date_clock(s.taken_at_ms));
    if let Some(replay) = &app.replay_line {
        right.push(replay.clone());
    } else if app.paused {
        right.push(format!(
            "PAUSED, data of {}",
            taken.as_deref().unwrap_or("-")
        ));
    } else if app.model.read_error.is_some() {
        right.push(format!("data of {}", taken.as_deref().unwrap_or("-")));
    } else {
        right.push(format!("every {}", fmt_interval(app.refresh)));
    }
    right.push("? help".to_owned());
    let right = format!(" {} ", right.join(" | "));
    // The message gives way to the right part (scope, pause, refresh), which must stay visible.
    let room = usize::from(area.width).saturating_sub(right.chars().count());
    if let Some(first) = left.first_mut() {
        if first.content.chars().count() > room {
            let cut: String = first.content.chars().take(room.saturating_sub(1)).collect();
            first.content = format!("{cut}…").into();
        }
    }
    let left_len: usize = left.iter().map(|s| s.content.chars().count()).sum();
    let pad = usize::from(area.width).saturating_sub(left_len + right.chars().count());
    left.push(Span::raw(" ".repeat(pad)));
    left.push(Span::styled(right, theme.status_line));
    frame.render_widget(Paragraph::new(Line::from(left)), area);
}

pub fn render_too_small(frame: &mut Frame, area: Rect, theme: &Theme) {
    let lines = vec![
        Line::styled("Terminal too small", theme.error),
        Line::styled(
            format!("current {}x{}", area.width, area.height),
            theme.text,
        ),
        Line::styled(format!("needs {MIN_WIDTH}x{MIN_HEIGHT}"), theme.text),
        Line::styled("resize, or press q to quit", theme.muted),
    ];
    let top = area.height.saturating_sub(lines.len() as u16) / 2;
    let inner = Rect {
        y: area.y + top,
        height: area.height.saturating_sub(top),
        ..area
    };
    frame.render_widget(Paragraph::new(lines).alignment(Alignment::Center), inner);
}
