//! The confirmation dialog: the exact admin SQL, and a deliberate key (capital `Y`; Enter alone
//! never confirms, and the safe answer is every other key).

use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Wrap};
use ratatui::Frame;

use crate::display::sanitize;
use crate::tui::app::{Confirm, OpsConfirm, RuleField, RuleForm};
use crate::tui::theme::Theme;

fn centred(area: Rect, width: u16, height: u16) -> Rect {
    let [v] = Layout::vertical([Constraint::Length(height.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [h] = Layout::horizontal([Constraint::Length(width.min(area.width))])
        .flex(Flex::Center)
        .areas(v);
    h
}

pub fn render_confirm(frame: &mut Frame, area: Rect, confirm: &Confirm, theme: &Theme) {
    let sql: Vec<String> = confirm.statements.iter().map(|s| format!("{s};")).collect();
    render_question(
        frame,
        area,
        &format!("{}?", confirm.action),
        confirm.warning.as_deref(),
        "This runs on the admin interface:",
        &sql,
        theme,
    );
}

/// An operation step or plan: its statements are already `server: SQL` / `proxy LABEL: SQL`.
pub fn render_confirm_ops(frame: &mut Frame, area: Rect, confirm: &OpsConfirm, theme: &Theme) {
    let sent = if confirm.statements.is_empty() {
        "Nothing is sent: the journal records the plan as aborted."
    } else {
        "This sends (to a database server, or to a proxy's admin interface):"
    };
    render_question(
        frame,
        area,
        &confirm.question,
        None,
        sent,
        &confirm.statements,
        theme,
    );
}

/// The dialog: the question, where the statements go, the statements, and the keys.
pub fn render_question(
    frame: &mut Frame,
    area: Rect,
    question: &str,
    warning: Option<&str>,
    sent_to: &str,
    statements: &[String],
    theme: &Theme,
) {
    let width = area.width.saturating_sub(4).min(110);
    let mut lines = vec![Line::styled(question.to_owned(), theme.text)];
    if let Some(w) = warning {
        lines.push(Line::styled(format!("WARNING: {w}"), theme.error));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(sent_to.to_owned(), theme.muted));
    let keys = [
        Line::raw(""),
        Line::from(vec![
            Span::styled("Y", theme.error),
            Span::styled(" (capital) run it    ", theme.text),
            Span::styled("n / Esc", theme.title),
            Span::styled(" cancel", theme.text),
        ]),
    ];
    // Wrapped SQL can take more lines than it has statements; what does not fit is counted,
    // so the question and the keys always stay on screen.
    let inner_width = usize::from(width.saturating_sub(2)).max(1);
    let rows = |l: &Line| l.width().div_ceil(inner_width).max(1);
    let room = usize::from(area.height.saturating_sub(2));
    let mut used: usize = lines.iter().chain(keys.iter()).map(rows).sum();
    let shown: Vec<Line> = statements
        .iter()
        .map(|sql| Line::styled(format!("  {}", sanitize(sql)), theme.sql))
        .collect();
    let all: usize = shown.iter().map(rows).sum();
    if used + all <= room {
        used += all;
        lines.extend(shown);
    } else {
        // Too many to show: the step headers (`-- N. …`) first, so the operator sees every step
        // that will run, and as many statements as fit; one step at a time shows them all.
        let mut headers_left = statements.iter().filter(|s| s.starts_with("-- ")).count();
        let steps = headers_left > 0;
        let mut hidden = 0;
        for (sql, line) in statements.iter().zip(shown) {
            let header = sql.starts_with("-- ");
            headers_left -= usize::from(header);
            if header || used + rows(&line) + 1 + headers_left <= room {
                used += rows(&line);
                lines.push(line);
            } else {
                hidden += 1;
            }
        }
        let how = if steps {
            "n runs one step at a time, each shown whole"
        } else {
            "a taller terminal shows them"
        };
        lines.push(Line::styled(
            format!("  … {hidden} statements not shown: {how}"),
            theme.muted,
        ));
        used += 1;
    }
    lines.extend(keys);
    let text_height = used;
    let area = centred(area, width, text_height as u16 + 2);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(theme.dialog_border)
                .title(Span::styled(" Confirm ", theme.dialog_border)),
        ),
        area,
    );
}

/// A one-line input box over the view, for the numbers a server setting takes (weight, tier).
pub fn render_prompt(frame: &mut Frame, area: Rect, title: &str, input: &str, theme: &Theme) {
    let area = centred(area, area.width.saturating_sub(8).min(60), 3);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(format!("{input}_")).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(theme.border)
                .title(Span::styled(format!(" {title} "), theme.title)),
        ),
        area,
    );
}

/// The query-rule editor: the three fields operators change most, the focused one marked.
pub fn render_rule_form(frame: &mut Frame, area: Rect, form: &RuleForm, theme: &Theme) {
    let width = area.width.saturating_sub(4).min(100);
    let field = |label: &str, value: String, focus: bool| {
        let marker = if focus { "> " } else { "  " };
        let cursor = if focus { "_" } else { "" };
        Line::from(vec![
            Span::styled(
                format!("{marker}{label:<22}"),
                if focus { theme.title } else { theme.muted },
            ),
            Span::styled(format!("{}{cursor}", sanitize(&value)), theme.text),
        ])
    };
    let lines = vec![
        field(
            "match_pattern",
            form.match_pattern.clone(),
            form.focus == RuleField::MatchPattern,
        ),
        field(
            "destination_hostgroup",
            form.destination_hostgroup.clone(),
            form.focus == RuleField::DestinationHostgroup,
        ),
        field(
            "active",
            if form.active {
                "yes".into()
            } else {
                "no".into()
            },
            form.focus == RuleField::Active,
        ),
        Line::raw(""),
        Line::styled(
            "Tab next field, Space toggles active, Enter shows the SQL, Esc cancels",
            theme.muted,
        ),
    ];
    let area = centred(area, width, lines.len() as u16 + 2);
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(theme.dialog_border)
                .title(Span::styled(
                    format!(" Edit query rule {} ", form.rule_id),
                    theme.dialog_border,
                )),
        ),
        area,
    );
}
