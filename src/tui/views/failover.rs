//! Failover: the replication topology behind the writer hostgroup (who is primary, what each
//! server has executed and received, lag, how each proxy routes it), the plan of a failover,
//! switchover or rejoin with a line per step, and the latest events of the proxy.
//!
//! The topology is a table like the others (select, filter, sort); the plan and events are
//! drawn below it. Nothing here reads the network: the operations worker reports into
//! [`Operations`] and this only draws it.

use ratatui::layout::Constraint::{Length, Min};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

use super::{col, date_clock, wide, Cell, Role, RowData, RowKey, TableData, ViewState};
use crate::control::{ServerStatus, ServerTarget};
use crate::display::sanitize;
use crate::ops::{Plan, PlanState, ServerView, StepState, Topology};
use crate::tui::model::{Model, Operations};
use crate::tui::theme::Theme;
use crate::tui::widgets::render_table;

/// What a server is in the topology, and its state in words (colour only repeats them).
pub fn role_of(topo: &Topology, s: &ServerView) -> (&'static str, String, Role) {
    let is_primary = topo.primary().is_some_and(|p| p.endpoint == s.endpoint);
    let role = if is_primary {
        "primary"
    } else if s.replica.is_some() {
        "replica"
    } else {
        "standalone"
    };
    let (state, style) = match (s.reachable, s.fenced_in_proxy()) {
        (false, true) => ("DOWN, fenced", Role::Error),
        (false, false) => ("DOWN", Role::Error),
        (true, true) => ("fenced", Role::Warning),
        (true, false) if is_primary && s.read_only == Some(true) => ("read-only", Role::Warning),
        (true, false) => ("up", Role::Text),
    };
    (role, state.to_owned(), style)
}

fn note(s: &ServerView) -> Cell {
    let mut parts = Vec::new();
    if s.never_promote {
        parts.push("never-promote".to_owned());
    }
    if let Some(r) = &s.replica {
        if r.sql_delay_secs > 0 {
            parts.push(format!("delayed {}s", r.sql_delay_secs));
        }
        if !r.last_io_error.is_empty() {
            parts.push(format!("IO error: {}", r.last_io_error));
        }
        if !r.last_sql_error.is_empty() {
            parts.push(format!("SQL error: {}", r.last_sql_error));
        }
    }
    if let Some(e) = &s.error {
        parts.push(e.clone());
    }
    if !s.missing_grants.is_empty() {
        parts.push(format!(
            "the login lacks {} privilege(s): see the plan's refusal",
            s.missing_grants.len()
        ));
    }
    let text = parts.join("; ");
    let role = if s.error.is_some()
        || !s.missing_grants.is_empty()
        || s.replica
            .as_ref()
            .is_some_and(|r| !r.last_io_error.is_empty() || !r.last_sql_error.is_empty())
    {
        Role::Error
    } else {
        Role::Muted
    };
    Cell::text(&text).role(role)
}

/// The topology as a table; a row's key is the server (every hostgroup), which is what
/// switchover and rejoin act on.
pub fn table(ops: &Operations) -> TableData {
    let mut notes = Vec::new();
    if let Some(e) = &ops.error {
        notes.push(sanitize(e));
    }
    let Some(topo) = &ops.topology else {
        if ops.error.is_none() {
            notes.push("reading the topology… (R reads it again)".into());
        }
        return TableData {
            columns: columns(),
            rows: vec![],
            default_sort: (0, false),
            notes,
        };
    };
    let rows = topo
        .servers
        .iter()
        .map(|s| {
            let (role, state, state_style) = role_of(topo, s);
            let order = if topo.primary().is_some_and(|p| p.endpoint == s.endpoint) {
                0.0
            } else {
                1.0
            };
            let routing = s
                .proxy_rows
                .iter()
                .map(|(hg, st)| format!("{hg}:{st}"))
                .collect::<Vec<_>>()
                .join(" ");
            let routing_role = if s.fenced_in_proxy() {
                Role::Status(ServerStatus::OfflineHard)
            } else {
                Role::Text
            };
            let gtid = |p: Option<String>| p.map_or_else(|| Cell::missing("-"), |t| Cell::text(&t));
            let (lag, threads, source) = match &s.replica {
                Some(r) => (
                    r.seconds_behind.map_or_else(
                        || Cell::missing("-").role(Role::Warning),
                        |v| Cell::shown(format!("{v}s"), v as f64),
                    ),
                    Cell::text(&format!(
                        "{}/{}",
                        r.io_running,
                        if r.sql_running { "Yes" } else { "No" }
                    ))
                    .role(if r.io_running == "Yes" && r.sql_running {
                        Role::Text
                    } else {
                        Role::Warning
                    }),
                    Cell::text(&r.source.to_string()),
                ),
                None => (Cell::missing("-"), Cell::missing("-"), Cell::missing("-")),
            };
            RowData {
                cells: vec![
                    Cell::shown(role.to_owned(), order),
                    Cell::text(&s.endpoint.to_string()),
                    Cell::text(&state).role(state_style),
                    match s.read_only {
                        Some(true) => Cell::text("ON"),
                        Some(false) => Cell::text("OFF"),
                        None => Cell::missing("?"),
                    },
                    Cell::text(&routing).role(routing_role),
                    gtid(s.executed.as_ref().map(ToString::to_string)),
                    gtid(s.replica.as_ref().map(|r| r.received.to_string())),
                    lag,
                    threads,
                    source,
                    note(s),
                ],
                key: RowKey::Server(ServerTarget::new(None, &s.endpoint.host, s.endpoint.port)),
            }
        })
        .collect();
    TableData {
        columns: columns(),
        rows,
        default_sort: (0, false),
        notes,
    }
}

fn columns() -> Vec<super::Column> {
    vec![
        col("Role", Length(10)),
        col("Server", Length(17)),
        col("State", Length(12)),
        col("RO", Length(3)),
        wide("Proxy HG:status", Length(30)),
        col("Executed GTID", Min(14)),
        widest("Received GTID", Min(14)),
        col("Lag", Length(5)),
        wide("IO/SQL", Length(10)),
        widest("Source", Length(17)),
        widest("Note", Min(10)),
    ]
}

/// A column for terminals of 160 columns and more: below that the server addresses and the
/// states keep their full width.
fn widest(title: &'static str, width: Constraint) -> super::Column {
    super::Column {
        title,
        width,
        hide_below: 160,
    }
}

/// The whole view: topology table, plan, events.
pub fn render(frame: &mut Frame, area: Rect, model: &Model, state: &ViewState, theme: &Theme) {
    let ops = &model.ops;
    let data = table(ops);
    let topo_rows = (data.rows.len().max(1) + data.notes.len() + 3) as u16;
    let (plan_lines, plan_title) = plan_lines(ops, area.width >= 120, theme);
    // Wrapped lines at 80 columns take two rows; the events get what is left, at least 4.
    let plan_rows = plan_lines
        .iter()
        .map(|l| {
            l.width()
                .div_ceil(usize::from(area.width.saturating_sub(2)).max(1))
                .max(1)
        })
        .sum::<usize>() as u16
        + 2;
    let [top, middle, bottom] = Layout::vertical([
        Constraint::Length(topo_rows.min(area.height / 3).max(5)),
        Constraint::Length(plan_rows),
        Constraint::Min(4),
    ])
    .areas(area);
    let title = match &ops.topology {
        Some(t) => format!(
            "Topology: writer hostgroup {}, read {}",
            t.writer_hostgroup,
            date_clock(ops.topology_at_ms)
        ),
        None => "Topology".to_owned(),
    };
    render_table(frame, top, &title, &data, state, theme);
    frame.render_widget(
        Paragraph::new(plan_lines).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(theme.border)
                .title(plan_title),
        ),
        middle,
    );
    render_events(frame, bottom, model, theme);
}

/// A switchover stopped between holding writes and repointing: clients are waiting.
fn writes_held(plan: &Plan) -> bool {
    let done = |name: &str| {
        plan.steps
            .iter()
            .any(|s| s.step.name() == name && s.state == StepState::Done)
    };
    plan.state != PlanState::Done && done("hold_writes") && !done("repoint")
}

fn mark(state: StepState) -> &'static str {
    match state {
        StepState::Done => "✓",
        StepState::Running => "▶",
        StepState::Failed => "✗",
        StepState::Pending => "·",
    }
}

fn plan_state(plan: &Plan) -> String {
    let at = plan.next_step().map_or(0, |i| i + 1);
    match plan.state {
        PlanState::Planned => "planned, nothing ran yet".into(),
        PlanState::Running => format!("running step {at}"),
        PlanState::Paused => format!("paused before step {at}"),
        PlanState::Failed => format!("STOPPED at step {at}"),
        PlanState::Done => "done".into(),
        PlanState::Aborted => "aborted".into(),
    }
}

/// The plan panel's lines and title: a line per step, the detail of the step that needs
/// attention, the error, and the keys that apply now.
fn plan_lines<'a>(ops: &Operations, wide: bool, theme: &Theme) -> (Vec<Line<'a>>, Span<'a>) {
    let mut lines = Vec::new();
    if let Some(b) = &ops.busy {
        lines.push(Line::styled(format!("⟳ {}", sanitize(b)), theme.warning));
    }
    let Some(plan) = &ops.plan else {
        lines.push(Line::styled(
            "No plan. F plans a failover (the primary must be down), S a switchover to the \
             selected replica, J a rejoin of the selected former primary.",
            theme.muted,
        ));
        return (lines, Span::styled("Plan", theme.title));
    };
    let title = format!(
        "Plan {}: {} {} → {}, {}",
        plan.id,
        plan.kind,
        plan.old_primary,
        plan.candidate,
        plan_state(plan)
    );
    let title_style = match plan.state {
        PlanState::Failed | PlanState::Aborted => theme.error,
        PlanState::Done => theme.title,
        _ => theme.warning,
    };
    let next = plan.next_step();
    for (i, s) in plan.steps.iter().enumerate() {
        let style = match s.state {
            StepState::Done => theme.text,
            StepState::Running => theme.warning,
            StepState::Failed => theme.error,
            StepState::Pending => theme.muted,
        };
        let took = match (s.started_ms, s.finished_ms) {
            (Some(a), Some(b)) => format!("  {} ms", b.saturating_sub(a)),
            _ => String::new(),
        };
        let pointer = if Some(i) == next && s.state != StepState::Running {
            "→"
        } else {
            " "
        };
        // Narrow terminals keep the description, which says what the step name says.
        let name = if wide {
            format!("{:<21}", s.step.name())
        } else {
            String::new()
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{pointer}{} {:>2} ", mark(s.state), i + 1), style),
            Span::styled(name, style),
            Span::styled(sanitize(&s.description), style),
            Span::styled(took, theme.muted),
        ]));
        // The detail of the step that needs attention stays visible.
        if matches!(s.state, StepState::Failed | StepState::Running) {
            for d in &s.detail {
                lines.push(Line::styled(format!("        {}", sanitize(d)), style));
            }
        }
    }
    if let Some(e) = &plan.error {
        lines.push(Line::styled(sanitize(e), theme.error));
    }
    if writes_held(plan) {
        lines.push(Line::styled(
            "Writes are held in the proxies (old primary OFFLINE_SOFT) until the plan goes on.",
            theme.warning,
        ));
    }
    let keys = match plan.state {
        PlanState::Planned | PlanState::Paused | PlanState::Failed => {
            "n runs the next step (confirmed), A runs all that are left, X abandons the plan"
        }
        PlanState::Running if ops.busy.is_none() => {
            "running elsewhere, or cut off: R reads the journal again; if nothing runs it, n \
             retries the step (refused while another process holds the plan), X abandons it"
        }
        PlanState::Done | PlanState::Aborted => "F, S or J makes a new plan",
        PlanState::Running => "",
    };
    if !keys.is_empty() {
        lines.push(Line::styled(keys, theme.muted));
    }
    (lines, Span::styled(title, title_style))
}

/// The newest events of the proxy (and of this console), one line each.
fn render_events(frame: &mut Frame, area: Rect, model: &Model, theme: &Theme) {
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border)
        .title(Span::styled(
            "Latest events (0 shows them all)",
            theme.title,
        ));
    let inner_rows = usize::from(area.height.saturating_sub(2));
    let mut events: Vec<_> = model
        .current()
        .and_then(|s| s.events.as_ref())
        .into_iter()
        .flatten()
        .chain(model.local_events.iter())
        .collect();
    events.sort_by_key(|e| std::cmp::Reverse(e.time_ms));
    let lines: Vec<Line> = events
        .into_iter()
        .take(inner_rows)
        .map(|e| {
            Line::from(vec![
                Span::styled(format!("{} ", date_clock(e.time_ms)), theme.muted),
                Span::styled(format!("{:<10} ", sanitize(&e.kind)), theme.title),
                Span::styled(format!("{} ", sanitize(&e.server)), theme.text),
                Span::styled(sanitize(&e.reason), theme.text),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
