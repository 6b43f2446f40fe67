//! Capacity (`stats_switchyard_capacity`): the USL fit per server and hostgroup in a table, and
//! for the selected row its measured points with the fitted curve and the peak.

use ratatui::layout::Constraint::{self, Length, Min};
use ratatui::layout::{Layout, Rect};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph};
use ratatui::Frame;

use super::{
    arrange, col, human, unavailable, wide, Cell, Role, RowData, RowKey, Scope, TableData,
    ViewState,
};
use crate::control::{CapacityRow, Extra, ServerTarget, Snapshot};
use crate::tui::theme::Theme;
use crate::tui::widgets::render_table;

/// Samples of the drawn curve.
const CURVE_STEPS: usize = 120;

fn target(r: &CapacityRow) -> RowKey {
    if r.is_hostgroup() {
        RowKey::Hostgroup(r.hostgroup)
    } else {
        RowKey::Server(ServerTarget::new(
            Some(r.hostgroup),
            &r.srv_host,
            r.srv_port,
        ))
    }
}

fn opt(v: Option<f64>, text: impl Fn(f64) -> String) -> Cell {
    v.map_or_else(|| Cell::missing("-"), |v| Cell::shown(text(v), v))
}

pub fn table(snap: &Snapshot, scope: &Scope) -> TableData {
    let mut notes = Vec::new();
    let rows = match &snap.capacity {
        None => {
            notes.push(unavailable(
                Extra::Capacity.feature(),
                Extra::Capacity.table(),
            ));
            Vec::new()
        }
        Some(rows) => rows
            .iter()
            .filter(|r| {
                if r.is_hostgroup() {
                    !matches!(scope, Scope::Server(_)) && scope.matches(r.hostgroup, "", 0)
                } else {
                    scope.matches(r.hostgroup, &r.srv_host, r.srv_port)
                }
            })
            .map(|r| RowData {
                cells: vec![
                    Cell::num(u64::from(r.hostgroup)),
                    if r.is_hostgroup() {
                        Cell::text("(hostgroup)").role(Role::Muted)
                    } else {
                        Cell::text(&ServerTarget::new(None, &r.srv_host, r.srv_port).address())
                    },
                    Cell::num(r.points),
                    opt(r.lambda.map(|e| e.value), human),
                    opt(r.sigma.map(|e| e.value), |v| format!("{v:.3}")),
                    opt(r.kappa.map(|e| e.value), |v| format!("{v:.1e}")),
                    match (r.peak_n, r.fit.as_str()) {
                        (Some(n), _) => Cell::shown(format!("{n:.1}"), n),
                        (None, "unbounded") => Cell::missing("unbounded"),
                        _ => Cell::missing("-"),
                    },
                    opt(r.peak_x, human),
                    opt(r.current_n, |v| format!("{v:.2}")),
                    opt(r.current_x, human),
                    match r.load_pct {
                        Some(p) if p > 100.0 => {
                            Cell::shown(format!("{p:.0}%"), p).role(Role::Warning)
                        }
                        other => opt(other, |p| format!("{p:.0}%")),
                    },
                    opt(r.max_err_pct, |p| format!("{p:.1}%")),
                    r.cap.map_or_else(|| Cell::missing("-"), Cell::num),
                    Cell::text(&r.fit),
                ],
                key: target(r),
            })
            .collect(),
    };
    TableData {
        columns: vec![
            col("HG", Length(3)),
            col("Server", Length(17)),
            wide("Points", Length(6)),
            col("λ", Length(6)),
            col("σ", Length(6)),
            col("κ", Length(7)),
            col("Peak N", Length(9)),
            wide("Peak X", Length(6)),
            col("Now N", Length(6)),
            wide("Now X", Length(6)),
            col("Load", Length(5)),
            wide("MaxErr", Length(6)),
            wide("Cap", Length(4)),
            col("Fit", Min(8)),
        ],
        rows,
        default_sort: (0, false),
        notes,
    }
}

/// The selected row's window: the measured points and the fitted curve, or why there is none.
fn chart(frame: &mut Frame, area: Rect, snap: &Snapshot, row: &CapacityRow, theme: &Theme) {
    let title = if row.is_hostgroup() {
        format!(
            "hostgroup {}: X (statements/s) by N (running at once)",
            row.hostgroup
        )
    } else {
        format!(
            "{} in hostgroup {}: X (statements/s) by N (running at once)",
            ServerTarget::new(None, &row.srv_host, row.srv_port).address(),
            row.hostgroup
        )
    };
    let block = Block::default()
        .borders(Borders::TOP)
        .border_style(theme.border)
        .title(Span::styled(title, theme.title));
    let points: Vec<(f64, f64)> = snap
        .capacity_points
        .iter()
        .filter(|p| p.of(row))
        .map(|p| (p.n, p.x))
        .collect();
    if points.is_empty() {
        frame.render_widget(
            Paragraph::new(format!("no measured points yet ({})", row.fit))
                .style(theme.muted)
                .block(block),
            area,
        );
        return;
    }
    let measured_max = points.iter().map(|p| p.0).fold(0.0_f64, f64::max);
    let x_max = (measured_max.max(row.peak_n.unwrap_or(0.0)) * 1.2).max(1.0);
    let curve: Vec<(f64, f64)> = (0..=CURVE_STEPS)
        .filter_map(|i| {
            let n = x_max * i as f64 / CURVE_STEPS as f64;
            row.curve(n).map(|x| (n, x))
        })
        .collect();
    let peak: Vec<(f64, f64)> = row
        .peak_n
        .zip(row.peak_x)
        .map(|(n, x)| vec![(n, 0.0), (n, x)])
        .unwrap_or_default();
    let y_max = points
        .iter()
        .chain(curve.iter())
        .map(|p| p.1)
        .fold(0.0_f64, f64::max)
        .max(1.0)
        * 1.1;
    let mut datasets = vec![Dataset::default()
        .name("measured")
        .marker(Marker::Dot)
        .graph_type(GraphType::Scatter)
        .style(theme.text)
        .data(&points)];
    if !curve.is_empty() {
        datasets.push(
            Dataset::default()
                .name("USL fit")
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(theme.ok)
                .data(&curve),
        );
    }
    if !peak.is_empty() {
        datasets.push(
            Dataset::default()
                .name("peak N*")
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(theme.warning)
                .data(&peak),
        );
    }
    let label = |v: f64| Span::styled(human(v), theme.muted);
    let chart = Chart::new(datasets)
        .block(block)
        .x_axis(
            Axis::default()
                .title(Span::styled("N", theme.muted))
                .bounds([0.0, x_max])
                .labels(vec![label(0.0), label(x_max / 2.0), label(x_max)]),
        )
        .y_axis(
            Axis::default()
                .title(Span::styled("X", theme.muted))
                .bounds([0.0, y_max])
                .labels(vec![label(0.0), label(y_max / 2.0), label(y_max)]),
        );
    frame.render_widget(chart, area);
}

/// The table on top, the chart of the selected row below.
pub fn render(
    frame: &mut Frame,
    area: Rect,
    title: &str,
    data: &TableData,
    state: &ViewState,
    snap: Option<&Snapshot>,
    theme: &Theme,
) {
    let table_rows = (data.rows.len().max(1) + data.notes.len() + 3) as u16;
    let [top, bottom] = Layout::vertical([
        Constraint::Length(table_rows.min(area.height / 3).max(5)),
        Constraint::Min(6),
    ])
    .areas(area);
    render_table(frame, top, title, data, state, theme);
    let selected = arrange(data, state)
        .get(state.selected)
        .map(|r| r.key.clone());
    let row = snap.zip(selected).and_then(|(snap, key)| {
        snap.capacity
            .as_ref()?
            .iter()
            .find(|r| target(r) == key)
            .map(|r| (snap, r))
    });
    match row {
        Some((snap, row)) => chart(frame, bottom, snap, row, theme),
        None => frame.render_widget(
            Paragraph::new(Line::styled(
                "select a server or hostgroup to see its points and curve",
                theme.muted,
            )),
            bottom,
        ),
    }
}
