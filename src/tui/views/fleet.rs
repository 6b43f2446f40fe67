//! Fleet (`E`): a cluster's proxies as `switchyard fleet status` reads them (admin address,
//! health and readiness, the revision each runs and its lag, write fence), who holds the
//! operation lock, and the revision history; the selected revision's diff against its parent
//! below. The data comes from etcd (see `fleet_worker`), not from the admin snapshot.

use ratatui::layout::Constraint::{self, Length, Min};
use ratatui::layout::{Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

use switchyard_proxy::fleet::document::diff;
use switchyard_proxy::fleet::{Member, Revision};

use super::{arrange, col, date_clock, wide, Cell, Role, RowData, RowKey, TableData, ViewState};
use crate::control::fleet::FleetStatus;
use crate::display::{sanitize, when};
use crate::tui::app::FleetPane;
use crate::tui::theme::Theme;
use crate::tui::widgets::{render_table, role_style};

/// What the view says without `--etcd` and `--cluster`.
pub const OFF: &str = "fleet view off: start the console with --etcd http://HOST:2379 --cluster NAME (as `switchyard fleet`)";

fn member_row(status: &FleetStatus, m: &Member) -> Vec<Cell> {
    let lag = status.lag(m);
    let ok = m.health == "ok";
    // The reasons are long: they share the last column, the states stay short and written.
    // The fence first: it is what decides whether writes reach the servers.
    let mut why = Vec::new();
    if let Some(w) = &m.write_fenced {
        why.push(format!("fenced: {w}"));
    }
    if let Some(r) = &m.not_ready {
        why.push(format!("not ready: {r}"));
    }
    if !ok {
        why.push(m.health.clone());
    }
    let updated = u64::try_from(m.updated_ms).map_or_else(|_| "-".to_owned(), date_clock);
    vec![
        Cell::text(&m.name),
        Cell::text(&m.admin),
        Cell::num(m.revision),
        if lag > 0 {
            Cell::num(lag).role(Role::Warning)
        } else {
            Cell::num(lag)
        },
        if ok {
            Cell::text("ok")
        } else {
            Cell::text("FAILING").role(Role::Error)
        },
        match m.not_ready {
            None => Cell::text("ready"),
            Some(_) => Cell::text("NOT READY").role(Role::Error),
        },
        match m.write_fenced {
            None => Cell::text("routed"),
            Some(_) => Cell::text("FENCED").role(Role::Error),
        },
        if why.is_empty() {
            Cell::missing("")
        } else {
            Cell::text(&why.join("; ")).role(Role::Warning)
        },
        Cell::text(&m.version).role(Role::Muted),
        Cell::text(&updated).role(Role::Muted),
    ]
}

/// The live proxies, by name.
pub fn members(status: &FleetStatus) -> TableData {
    TableData {
        columns: vec![
            col("Proxy", Length(10)),
            col("Admin", Length(15)),
            col("Rev", Length(4)),
            col("Lag", Length(4)),
            col("Health", Length(7)),
            col("Ready", Length(9)),
            col("Writes", Length(6)),
            col("Why", Min(10)),
            wide("Version", Length(8)),
            wide("Updated", Length(14)),
        ],
        rows: status
            .members
            .iter()
            .map(|m| RowData {
                cells: member_row(status, m),
                key: RowKey::None,
            })
            .collect(),
        default_sort: (0, false),
        notes: Vec::new(),
    }
}

/// The revision history, newest first: the table Up/Down, `/` and sort work on.
pub fn table(pane: &FleetPane) -> TableData {
    let history = pane.data.as_ref().map_or(&[][..], |d| &d.history[..]);
    let latest = pane.data.as_ref().map_or(0, |d| d.status.latest());
    TableData {
        columns: vec![
            col("Rev", Length(4)),
            col("Parent", Length(6)),
            col("Who", Length(16)),
            col("When", Length(23)),
            col("Why", Min(10)),
        ],
        rows: history
            .iter()
            .map(|r| RowData {
                cells: vec![
                    if r.revision == latest {
                        Cell::num(r.revision).role(Role::Changed)
                    } else {
                        Cell::num(r.revision)
                    },
                    Cell::num(r.parent),
                    Cell::text(&r.who),
                    Cell::text(&when(r.when_ms)),
                    Cell::text(&r.why),
                ],
                key: RowKey::Revision(r.revision),
            })
            .collect(),
        default_sort: (0, true),
        notes: Vec::new(),
    }
}

/// The selected revision's rows against its parent's, as `fleet diff` lists them.
fn diff_lines<'a>(history: &[Revision], revision: u64, theme: &Theme) -> Vec<Line<'a>> {
    let Some(rev) = history.iter().find(|r| r.revision == revision) else {
        return vec![Line::styled("no revision selected", theme.muted)];
    };
    let empty = Default::default();
    let parent = history.iter().find(|r| r.revision == rev.parent);
    if rev.parent != 0 && parent.is_none() {
        return vec![Line::styled(
            format!(
                "revision {}'s parent {} is not in the history",
                rev.revision, rev.parent
            ),
            theme.warning,
        )];
    }
    let changes = diff(parent.map_or(&empty, |p| &p.tables), &rev.tables);
    if changes.is_empty() {
        return vec![Line::styled(
            format!(
                "revision {} changes no row of revision {}",
                rev.revision, rev.parent
            ),
            theme.muted,
        )];
    }
    changes
        .iter()
        .map(|c| {
            let style = if c.op == '+' { theme.ok } else { theme.error };
            Line::from(vec![
                Span::styled(format!("{} ", c.op), style),
                Span::styled(format!("{}: ", c.table), theme.muted),
                Span::styled(sanitize(&c.row), theme.text),
            ])
        })
        .collect()
}

/// A table drawn without a selection (the members: the selection is the history's).
fn render_plain(frame: &mut Frame, area: Rect, title: &str, data: &TableData, theme: &Theme) {
    let shown: Vec<usize> = (0..data.columns.len())
        .filter(|i| data.columns[*i].hide_below <= area.width)
        .collect();
    let header = Row::new(shown.iter().map(|&i| data.columns[i].title)).style(theme.header);
    let widths: Vec<Constraint> = shown.iter().map(|&i| data.columns[i].width).collect();
    let body = data.rows.iter().map(|r| {
        Row::new(shown.iter().filter_map(|&i| r.cells.get(i)).map(|c| {
            ratatui::widgets::Cell::from(Span::styled(c.text.as_str(), role_style(theme, c.role)))
        }))
    });
    let table = Table::new(body, widths)
        .header(header)
        .column_spacing(1)
        .block(
            Block::default()
                .borders(Borders::TOP)
                .border_style(theme.border)
                .title(Span::styled(
                    format!(" {title} ({}) ", data.rows.len()),
                    theme.title,
                )),
        );
    frame.render_widget(table, area);
}

pub fn render(
    frame: &mut Frame,
    area: Rect,
    pane: &FleetPane,
    data: &TableData,
    state: &ViewState,
    theme: &Theme,
) {
    let Some(cluster) = &pane.cluster else {
        frame.render_widget(
            Paragraph::new(OFF)
                .style(theme.warning)
                .wrap(Wrap { trim: false }),
            area,
        );
        return;
    };
    let Some(read) = &pane.data else {
        let line = match &pane.error {
            Some(e) => Line::styled(
                format!("cluster {cluster}: etcd read failed: {e}"),
                theme.error,
            ),
            None => Line::styled(format!("cluster {cluster}: reading etcd…"), theme.muted),
        };
        frame.render_widget(Paragraph::new(line).wrap(Wrap { trim: false }), area);
        return;
    };
    let status = &read.status;
    let mut head = vec![
        match &status.current {
            Some(r) => Line::styled(
                sanitize(&format!(
                    "cluster {cluster}: revision {} by {} at {}: {}",
                    r.revision,
                    r.who,
                    when(r.when_ms),
                    r.why
                )),
                theme.text,
            ),
            None => Line::styled(
                format!("cluster {cluster}: no revision published yet"),
                theme.muted,
            ),
        },
        match &status.lock {
            Some(h) => Line::styled(
                sanitize(&format!("operation lock: held by {h}")),
                theme.warning,
            ),
            None => Line::styled("operation lock: free", theme.text),
        },
    ];
    if let Some(e) = &pane.error {
        head.push(Line::styled(
            format!(
                "etcd read failed: {e}; showing the read of {}",
                date_clock(read.read_at_ms)
            ),
            theme.error,
        ));
    }
    // Each table as tall as its rows, up to a third of the screen; the diff gets the rest.
    let tall = |rows: usize| (rows.max(1) + 2).min(usize::from(area.height / 3)).max(3) as u16;
    let [head_area, members_area, history_area, diff_area] = Layout::vertical([
        Length(head.len() as u16),
        Length(tall(status.members.len())),
        Length(tall(data.rows.len())),
        Min(3),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(head), head_area);
    let members = members(status);
    if members.rows.is_empty() {
        frame.render_widget(
            Paragraph::new(Line::styled(
                "no live proxy in this cluster (none has registered, or every lease expired)",
                theme.warning,
            ))
            .block(
                Block::default()
                    .borders(Borders::TOP)
                    .border_style(theme.border)
                    .title(Span::styled(" Proxies (0) ", theme.title)),
            ),
            members_area,
        );
    } else {
        render_plain(frame, members_area, "Proxies", &members, theme);
    }
    render_table(frame, history_area, "Revisions", data, state, theme);
    let selected = arrange(data, state)
        .get(state.selected)
        .map(|r| r.key.clone());
    let (title, lines) = match selected {
        Some(RowKey::Revision(n)) => (
            format!(" revision {n} against its parent "),
            diff_lines(&read.history, n, theme),
        ),
        _ => (
            " diff ".to_owned(),
            vec![Line::styled("no revision selected", theme.muted)],
        ),
    };
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::TOP)
                .border_style(theme.border)
                .title(Span::styled(title, theme.title)),
        ),
        diff_area,
    );
}
