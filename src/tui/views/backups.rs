//! The backups view: the store's backups as a table (so `/`, sort and selection work as everywhere),
//! the running or last job with its progress below it, and the new-backup form with the sizing advice
//! beside it. Drawing only: every figure comes from the worker's reports or from the advisor's
//! arithmetic on the measured size.

use chrono::Utc;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Gauge, Paragraph, Wrap};
use ratatui::Frame;

use crate::backup::housekeeping::BackupInfo;
use crate::backup::records::CheckRecord;
use crate::backup::units::{fmt_bytes, fmt_bytes_si, fmt_duration, fmt_rate};
use crate::tui::app::{
    advise, chunk_label, mask_password, BackupForm, Backups, FormField, Job, SourceKind,
    XBCLOUD_OBJECT, XBCLOUD_TRIES,
};
use crate::tui::theme::Theme;
use crate::tui::widgets;

use super::{arrange, col, wide, Cell, Role, RowData, RowKey, TableData, ViewState};

/// `45s`, `12m`, `3h`, `5d`: how long ago.
fn ago(t: chrono::DateTime<Utc>) -> String {
    let s = (Utc::now() - t).num_seconds().max(0) as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86400),
    }
}

fn check_cell(r: &Option<CheckRecord>) -> Cell {
    match r {
        None => Cell::missing("-"),
        Some(r) => Cell {
            text: format!("{} {}", if r.ok { "ok" } else { "BAD" }, ago(r.at)),
            sort: super::SortKey::Num(r.at.timestamp() as f64),
            role: if r.ok { Role::Text } else { Role::Error },
        },
    }
}

pub fn table(b: &Backups) -> TableData {
    let rows = b
        .list
        .iter()
        .map(|i: &BackupInfo| RowData {
            cells: vec![
                Cell::text(&i.id),
                match &i.source {
                    Some(s) => Cell::text(s),
                    None => Cell::missing("?"),
                },
                match i.plain_bytes {
                    Some(n) => Cell::shown(fmt_bytes(n), n as f64),
                    None => Cell::missing("incomplete").role(Role::Warning),
                },
                Cell::num(i.chunks),
                match i.chunk_size {
                    Some(c) => Cell::shown(chunk_label(c), c as f64),
                    None => Cell::missing("?"),
                },
                match (i.encrypted, &i.compression) {
                    (Some(e), Some(c)) => Cell::text(&format!(
                        "{}{}",
                        if e { "AES" } else { "no" },
                        if c == "zstd" { "+z" } else { "" }
                    )),
                    _ => Cell::missing("?"),
                },
                match i.time() {
                    Some(t) => Cell::shown(ago(t), -(t.timestamp() as f64)),
                    None => Cell::missing("?"),
                },
                check_cell(&i.last_verify),
                check_cell(&i.last_drill),
            ],
            key: RowKey::Backup(i.id.clone()),
        })
        .collect();
    let mut notes = Vec::new();
    match (&b.settings.store, &b.list_error) {
        (None, _) => notes.push("no store: start the console with --backup-store URL".to_owned()),
        (Some(_), Some(e)) => notes.push(format!("listing failed: {e}")),
        (Some(s), None) if b.listed_at_ms.is_none() => notes.push(format!("listing {s}…")),
        _ => {}
    }
    TableData {
        columns: vec![
            col("id", Constraint::Length(12)),
            col("source", Constraint::Min(8)),
            col("size", Constraint::Length(10)),
            col("chunks", Constraint::Length(6)),
            col("chunk", Constraint::Length(6)),
            col("enc", Constraint::Length(5)),
            col("age", Constraint::Length(4)),
            col("verify", Constraint::Length(7)),
            wide("drill", Constraint::Length(7)),
        ],
        rows,
        default_sort: (6, false),
        notes,
    }
}

pub fn render(frame: &mut Frame, area: Rect, b: &Backups, state: &ViewState, theme: &Theme) {
    let data = table(b);
    let title = match &b.settings.store {
        Some(s) => format!("Backups in {}", mask_password(s)),
        None => "Backups".to_owned(),
    };
    let job_rows = if b.job.is_some() { 4 } else { 0 };
    let [top, bottom] =
        Layout::vertical([Constraint::Min(0), Constraint::Length(4 + job_rows)]).areas(area);
    widgets::render_table(frame, top, &title, &data, state, theme);
    let selected = arrange(&data, state)
        .get(state.selected)
        .and_then(|r| match &r.key {
            RowKey::Backup(id) => b.list.iter().find(|i| i.id == *id),
            _ => None,
        });
    let block = Block::default()
        .borders(Borders::TOP)
        .border_style(theme.border);
    let inner = block.inner(bottom);
    frame.render_widget(block, bottom);
    let [job_area, detail_area] =
        Layout::vertical([Constraint::Length(job_rows), Constraint::Min(0)]).areas(inner);
    if let Some(job) = &b.job {
        render_job(frame, job_area, job, theme);
    }
    let lines = match selected {
        Some(i) => detail(i),
        None => vec!["b starts a backup; ? lists the keys".to_owned()],
    };
    frame.render_widget(
        Paragraph::new(
            lines
                .into_iter()
                .map(|l| Line::styled(crate::display::sanitize(&l), theme.text))
                .collect::<Vec<_>>(),
        ),
        detail_area,
    );
}

fn detail(i: &BackupInfo) -> Vec<String> {
    let check = |name: &str, r: &Option<CheckRecord>| match r {
        None => format!("{name}: never"),
        Some(r) => format!(
            "{name}: {} {} ago: {}",
            if r.ok { "ok" } else { "FAILED" },
            ago(r.at),
            r.summary
        ),
    };
    vec![
        format!(
            "{} {}, {} stored, started {}",
            i.id,
            i.status,
            fmt_bytes(i.stored_bytes),
            i.time().map_or("?".into(), |t| t
                .format("%Y-%m-%d %H:%M:%S UTC")
                .to_string())
        ),
        check("last verify", &i.last_verify),
        check("last drill", &i.last_drill),
    ]
}

fn render_job(frame: &mut Frame, area: Rect, job: &Job, theme: &Theme) {
    let [head, gauge, rest] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(0),
    ])
    .areas(area);
    let state = match (&job.outcome, job.running) {
        (_, true) => "running (x cancels)".to_owned(),
        (Some(Ok(_)), _) => "done".to_owned(),
        (Some(Err(_)), _) if job.resumable.is_some() => "stopped (u resumes)".to_owned(),
        (Some(Err(_)), _) => "FAILED".to_owned(),
        (None, false) => String::new(),
    };
    frame.render_widget(
        Paragraph::new(Line::styled(
            format!("{} {}: {state}", job.kind.noun(), job.id),
            theme.title,
        )),
        head,
    );
    let Some(p) = &job.progress else {
        frame.render_widget(
            Paragraph::new(Line::styled("starting…", theme.muted)),
            gauge,
        );
        return;
    };
    // An estimate the stream outgrew says nothing more: no total, no ETA.
    let expected = p.expected_bytes.filter(|e| *e > 0 && *e >= p.bytes_done);
    let ratio = expected.map(|e| (p.bytes_done as f64 / e as f64).clamp(0.0, 1.0));
    let label = format!(
        "{} {}{}",
        job.kind.verb(),
        fmt_bytes(p.bytes_done),
        expected
            .map(|e| format!(" of {}", fmt_bytes(e)))
            .unwrap_or_default()
    );
    frame.render_widget(
        Gauge::default()
            .ratio(ratio.unwrap_or(0.0))
            .gauge_style(theme.online)
            .label(label),
        gauge,
    );
    let mut lines = vec![Line::styled(
        format!(
            "chunks {} done, {} in flight, {} retried{} · {} · {}{}",
            p.chunks_done,
            p.chunks_in_flight,
            p.retries,
            if p.chunks_skipped > 0 {
                format!(", {} kept", p.chunks_skipped)
            } else {
                String::new()
            },
            fmt_rate(p.throughput),
            fmt_duration(p.elapsed_secs),
            match (job.running, p.eta_secs, expected) {
                (true, Some(e), Some(_)) => format!(" · ETA {}", fmt_duration(e)),
                _ => String::new(),
            }
        ),
        theme.text,
    )];
    if let Some(o) = &job.outcome {
        let (t, style) = match o {
            Ok(t) => (t, theme.text),
            Err(e) => (e, theme.error),
        };
        lines.push(Line::styled(crate::display::sanitize(t), style));
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: true }), rest);
}

/// The new-backup form, with the advice beside it (below it when the terminal is narrow).
pub fn render_form(frame: &mut Frame, area: Rect, form: &BackupForm, b: &Backups, theme: &Theme) {
    frame.render_widget(Clear, area);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border)
        .title(Span::styled(
            " New backup: Tab moves, Space toggles, +/- change, Enter reviews, Esc ",
            theme.title,
        ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(48), Constraint::Percentage(52)]).areas(inner);
    let field = |f: FormField, label: &str, value: String| {
        let focus = form.focus == f;
        Line::from(vec![
            Span::styled(
                format!("{}{label:<9}", if focus { ">" } else { " " }),
                if focus { theme.title } else { theme.muted },
            ),
            Span::styled(
                format!(
                    "{}{}",
                    crate::display::sanitize(&value),
                    if focus { "_" } else { "" }
                ),
                theme.text,
            ),
        ])
    };
    let key_note = if b.settings.key_file.is_some() {
        if form.encrypt {
            "AES-256-GCM"
        } else {
            "no"
        }
    } else {
        "no (no --backup-key-file)"
    };
    let lines = vec![
        field(
            FormField::Source,
            "source",
            match form.kind {
                SourceKind::Server => "server (mariabackup)".into(),
                SourceKind::File => "file".into(),
            },
        ),
        field(
            FormField::Input,
            match form.kind {
                SourceKind::Server => "server",
                SourceKind::File => "path",
            },
            match form.kind {
                SourceKind::Server => mask_password(&form.server),
                SourceKind::File => form.file.clone(),
            },
        ),
        field(FormField::Id, "id", form.id.clone()),
        field(
            FormField::ChunkSize,
            "chunk",
            chunk_label(form.chunk_size()),
        ),
        field(FormField::Parallel, "parallel", form.parallel.to_string()),
        field(
            FormField::Compress,
            "compress",
            if form.compress { "zstd" } else { "no" }.into(),
        ),
        field(FormField::Encrypt, "encrypt", key_note.into()),
    ];
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), left);
    frame.render_widget(
        Paragraph::new(advice_lines(form, b, theme)).wrap(Wrap { trim: false }),
        right,
    );
}

fn pct(p: f64) -> String {
    let v = p * 100.0;
    if p == 0.0 {
        "0 %".into()
    } else if v >= 0.01 {
        format!("{v:.2} %")
    } else {
        format!("{v:.0e} %")
    }
}

fn advice_lines<'a>(form: &BackupForm, b: &Backups, theme: &Theme) -> Vec<Line<'a>> {
    let source = form.source();
    let Some(m) = b.size_of(&source) else {
        return vec![Line::styled("measuring the source…", theme.muted)];
    };
    let size = m.result.as_ref().ok().copied();
    let a = advise(
        &b.settings,
        b.measured_throughput,
        size.unwrap_or(0),
        form.chunk_size(),
        form.parallel,
        form.compress,
    );
    let s = &b.settings;
    let row = |k: &str, v: String| {
        Line::from(vec![
            Span::styled(format!("{k:<8}"), theme.muted),
            Span::styled(v, theme.text),
        ])
    };
    let memory = row(
        "memory",
        format!(
            "{}{}",
            fmt_bytes(a.memory.total),
            s.available_memory
                .map(|m| format!(" of {} free", fmt_bytes(m)))
                .unwrap_or_default()
        ),
    );
    let mut lines = match size {
        None => vec![
            Line::styled("advice", theme.title),
            Line::styled(
                format!(
                    "size unknown: {}",
                    crate::display::sanitize(m.result.as_ref().err().map_or("", String::as_str))
                ),
                theme.warning,
            ),
            Line::styled("objects, cost, odds and time need it", theme.muted),
            memory,
        ],
        Some(size) => vec![
            Line::styled(
                format!(
                    "advice  vs xbcloud ({} objects, {XBCLOUD_TRIES} tries)",
                    fmt_bytes_si(XBCLOUD_OBJECT)
                ),
                theme.title,
            ),
            row("size", format!("{} ({})", fmt_bytes(size), m.how)),
            row(
                "objects",
                format!("{} vs {}", a.mine.objects, a.xbcloud.objects),
            ),
            row(
                "cost",
                format!(
                    "${:.4} vs ${:.4} ({})",
                    a.mine.operations_usd, a.xbcloud.operations_usd, s.profile.name
                ),
            ),
            row(
                "P(fail)",
                format!(
                    "{} ({} tries) vs {}",
                    pct(a.mine.failure_probability),
                    s.tries,
                    pct(a.xbcloud.failure_probability)
                ),
            ),
            memory,
            row(
                "time",
                format!(
                    "{} vs {} at {}",
                    fmt_duration(a.mine.duration_secs),
                    fmt_duration(a.xbcloud.duration_secs),
                    fmt_rate(a.bandwidth)
                ),
            ),
            Line::styled(
                format!(
                    "  rate: {}; p={} per request",
                    a.bandwidth_source, s.request_failure_rate
                ),
                theme.muted,
            ),
        ],
    };
    for (refuse, w) in &a.warnings {
        lines.push(Line::styled(
            format!("{}: {w}", if *refuse { "UNSAFE" } else { "warning" }),
            if *refuse { theme.error } else { theme.warning },
        ));
    }
    lines
}
