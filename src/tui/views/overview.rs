//! Overview: is the proxy healthy right now? Traffic, frontend against backend connections and
//! the multiplexing ratio over time, pinned sessions by reason, transactions and errors.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, RenderDirection, Sparkline};
use ratatui::Frame;

use super::{human, unavailable, UNKNOWN};
use crate::control::{Extra, ServerStatus, Snapshot};
use crate::tui::model::{Model, Series};
use crate::tui::theme::Theme;

fn spark_block(frame: &mut Frame, area: Rect, theme: &Theme, title: String, series: &Series) {
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border)
        .title(Span::styled(title, theme.title));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    // Newest sample at the right edge, older ones to its left, like every monitor.
    let mut data = series.last(usize::from(inner.width));
    data.reverse();
    frame.render_widget(
        Sparkline::default()
            .data(&data)
            .direction(RenderDirection::RightToLeft)
            .style(theme.sparkline),
        inner,
    );
}

fn ratio_text(series: &Series) -> String {
    match series.latest() {
        Some(r) if r > 0 => format!("{}.{}", r / 10, r % 10),
        _ => "-".to_owned(),
    }
}

pub fn render(frame: &mut Frame, area: Rect, model: &Model, theme: &Theme) {
    let Some(snap) = model.current() else {
        frame.render_widget(
            Paragraph::new("waiting for the first read of the admin interface…").style(theme.muted),
            area,
        );
        return;
    };
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(area);
    let [qps, fe, be, mux] = Layout::vertical([
        Constraint::Ratio(1, 4),
        Constraint::Ratio(1, 4),
        Constraint::Ratio(1, 4),
        Constraint::Ratio(1, 4),
    ])
    .areas(left);
    let latest = |s: &Series| {
        s.latest()
            .map_or_else(|| "-".to_owned(), |v| human(v as f64))
    };
    spark_block(
        frame,
        qps,
        theme,
        format!(" Queries/s {} ", latest(&model.qps)),
        &model.qps,
    );
    spark_block(
        frame,
        fe,
        theme,
        format!(" Frontend connections {} ", latest(&model.frontend)),
        &model.frontend,
    );
    spark_block(
        frame,
        be,
        theme,
        format!(" Backend connections in use {} ", latest(&model.backend)),
        &model.backend,
    );
    spark_block(
        frame,
        mux,
        theme,
        format!(
            " Multiplexing {} clients per backend ",
            ratio_text(&model.mux_ratio_x10)
        ),
        &model.mux_ratio_x10,
    );

    let pinned_height = snap
        .pinned
        .as_ref()
        .map_or(6, |p| p.len().clamp(1, 8) as u16 + 2);
    let [now, pinned] =
        Layout::vertical([Constraint::Min(8), Constraint::Length(pinned_height)]).areas(right);
    render_now(frame, now, model, snap, theme);
    render_pinned(frame, pinned, snap, theme);
}

fn render_now(frame: &mut Frame, area: Rect, model: &Model, snap: &Snapshot, theme: &Theme) {
    let g = |name: &str| snap.global_u64(name);
    // A counter the proxy does not report (an older proxy, a ProxySQL without it) is unknown.
    let show = |v: Option<u64>| v.map_or_else(|| UNKNOWN.to_owned(), |v| human(v as f64));
    let per_s = |name: &str| {
        model
            .rate_of_global(name)
            .map_or_else(String::new, |r| format!(" ({}/s)", human(r)))
    };
    let kv = |k: &str, v: String, style| {
        Line::from(vec![
            Span::styled(format!("{k:<14}"), theme.muted),
            Span::styled(v, style),
        ])
    };
    let used: u64 = snap.pools.iter().map(|p| p.conn_used).sum();
    let free: u64 = snap.pools.iter().map(|p| p.conn_free).sum();
    let conn_err: u64 = snap.pools.iter().map(|p| p.conn_err).sum();
    let count = |f: fn(ServerStatus) -> bool| snap.servers.iter().filter(|s| f(s.status)).count();
    let online = count(|s| s == ServerStatus::Online);
    let shunned = count(ServerStatus::is_shunned);
    let draining = count(|s| s == ServerStatus::OfflineSoft);
    let fenced = count(|s| s == ServerStatus::OfflineHard);
    let warn = |n: usize, style| if n > 0 { style } else { theme.text };
    let errors = g("generated_error_packets");
    let mut lines = vec![
        kv("Transactions", show(g("Active_Transactions")), theme.text),
        kv(
            "Clients",
            show(g("Client_Connections_connected")),
            theme.text,
        ),
        kv("Backend", format!("{used} used, {free} free"), theme.text),
        kv(
            "Servers",
            format!("{online} online of {}", snap.servers.len()),
            theme.text,
        ),
        Line::from(vec![
            Span::styled(format!("{shunned} shunned"), warn(shunned, theme.shunned)),
            Span::raw(" "),
            Span::styled(
                format!("{draining} draining"),
                warn(draining, theme.offline_soft),
            ),
            Span::raw(" "),
            Span::styled(format!("{fenced} fenced"), warn(fenced, theme.offline_hard)),
        ]),
        kv(
            "Conn errors",
            format!("{conn_err}{}", per_s_pool(model)),
            if conn_err > 0 {
                theme.warning
            } else {
                theme.text
            },
        ),
        kv(
            "Client errors",
            format!("{}{}", show(errors), per_s("generated_error_packets")),
            if errors.unwrap_or(0) > 0 {
                theme.warning
            } else {
                theme.text
            },
        ),
        kv(
            "Access denied",
            show(g("Access_Denied_Wrong_Password")),
            theme.text,
        ),
        kv(
            "Slow queries",
            format!("{}{}", show(g("Slow_queries")), per_s("Slow_queries")),
            theme.text,
        ),
    ];
    if let Some(rows) = snap.multiplexing.as_ref().filter(|r| !r.is_empty()) {
        lines.push(Line::raw(""));
        lines.push(Line::styled("HG  clients backend pinned", theme.header));
        for r in rows {
            lines.push(Line::styled(
                format!(
                    "{:<3} {:>7} {:>7} {:>6}",
                    r.hostgroup, r.frontend_sessions, r.backend_connections, r.pinned_sessions
                ),
                theme.text,
            ));
        }
    }
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border)
        .title(Span::styled(" Now ", theme.title));
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

/// Backend connect errors per second, from the pools of the two latest snapshots.
fn per_s_pool(model: &Model) -> String {
    let (Some(prev), Some(cur), Some(secs)) =
        (model.previous(), model.current(), model.interval_secs())
    else {
        return String::new();
    };
    let sum = |s: &Snapshot| s.pools.iter().map(|p| p.conn_err).sum::<u64>();
    crate::tui::model::rate(sum(prev), sum(cur), secs)
        .map_or_else(String::new, |r| format!(" ({}/s)", human(r)))
}

fn render_pinned(frame: &mut Frame, area: Rect, snap: &Snapshot, theme: &Theme) {
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border)
        .title(Span::styled(" Pinned sessions by reason ", theme.title));
    let lines: Vec<Line> = match snap.pinned.as_ref() {
        None => vec![Line::styled(
            unavailable("pinning", Extra::PinnedSessions.table()),
            theme.muted,
        )],
        Some(rows) if rows.is_empty() => vec![Line::styled("none pinned", theme.muted)],
        Some(rows) => {
            let mut totals: Vec<(String, u64)> = Vec::new();
            for r in rows {
                match totals.iter_mut().find(|(reason, _)| *reason == r.reason) {
                    Some((_, n)) => *n += r.sessions,
                    None => totals.push((r.reason.clone(), r.sessions)),
                }
            }
            totals.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            totals
                .into_iter()
                .map(|(reason, n)| {
                    Line::from(vec![
                        Span::styled(
                            format!("{:<21}", crate::display::sanitize(&reason)),
                            theme.text,
                        ),
                        Span::styled(n.to_string(), theme.text),
                    ])
                })
                .collect()
        }
    };
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .wrap(ratatui::widgets::Wrap { trim: true }),
        area,
    );
}
