//! The SST benchmark view: the form, then either the live line of each method or the result
//! table with bars of duration and bytes on the wire, the recommendation and its `[sst]`.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};
use ratatui::Frame;

use crate::sstbench::report::BenchReport;
use crate::sstbench::throttle::ByteSize;
use crate::tui::app::sst::{LineState, SstLine, SstState, FIELDS, HINTS};
use crate::tui::theme::Theme;

/// A horizontal bar of `value` against `max`, `width` cells, in eighths.
pub fn bar(value: f64, max: f64, width: usize) -> String {
    const PARTS: [char; 8] = [' ', '▏', '▎', '▍', '▌', '▋', '▊', '▉'];
    let eighths = if max > 0.0 && value.is_finite() {
        ((value / max).clamp(0.0, 1.0) * (width * 8) as f64).round() as usize
    } else {
        0
    };
    let mut s = "█".repeat(eighths / 8);
    if eighths % 8 > 0 {
        s.push(PARTS[eighths % 8]);
    }
    format!("{s:<width$}")
}

pub fn render(frame: &mut Frame, area: Rect, sst: &SstState, theme: &Theme) {
    let rows = FIELDS.len().div_ceil(2) as u16;
    let [form, rest] =
        Layout::vertical([Constraint::Length(rows + 3), Constraint::Min(0)]).areas(area);
    render_form(frame, form, sst, theme);
    match &sst.report {
        Some(report) if !sst.running => render_report(frame, rest, report, theme),
        _ => render_runs(frame, rest, sst, theme),
    }
}

fn render_form(frame: &mut Frame, area: Rect, sst: &SstState, theme: &Theme) {
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(theme.border)
        .title(Span::styled(
            " SST benchmark: Enter edit, r run, x cancel, w write [sst] ",
            theme.title,
        ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let half = usize::from(inner.width / 2);
    let rows = FIELDS.len().div_ceil(2);
    let mut lines: Vec<Line> = Vec::new();
    for r in 0..rows {
        let mut spans = Vec::new();
        for i in [r, r + rows] {
            let Some(name) = FIELDS.get(i) else { continue };
            let style = if i == sst.selected {
                theme.selected
            } else {
                theme.text
            };
            let cell = format!("{name:<11}{}", sst.form[i]);
            let cell: String = cell.chars().take(half.saturating_sub(1)).collect();
            spans.push(Span::styled(format!("{cell:<half$}"), style));
        }
        lines.push(Line::from(spans));
    }
    lines.push(Line::styled(HINTS[sst.selected], theme.muted));
    frame.render_widget(Paragraph::new(lines), inner);
}

fn line_text(l: &SstLine) -> String {
    let mb = |b: f64| b / 1e6;
    match &l.state {
        LineState::Waiting => format!("{:<16} waiting", l.label),
        LineState::Running => {
            let rate = if l.elapsed_s > 0.0 {
                mb(l.done as f64) / l.elapsed_s
            } else {
                0.0
            };
            format!(
                "{:<16} {} {:>9}/{:<9} {:>6.1} MB/s {:>5.1}s CPU {:>3.0}%",
                l.label,
                bar(l.done as f64, l.total as f64, 10),
                ByteSize(l.done).to_string(),
                ByteSize(l.total).to_string(),
                rate,
                l.elapsed_s,
                l.cpu_pct
            )
        }
        LineState::Done(s) => format!(
            "{:<16} done {:>6.2}s {:>9} on the wire, ratio {:.2}, donor CPU {:.0}%",
            l.label,
            s.duration_s,
            ByteSize(s.wire_bytes).to_string(),
            s.ratio,
            s.compress_cpu_pct
        ),
        LineState::Failed(e) => format!("{:<16} FAILED: {e}", l.label),
    }
}

fn render_runs(frame: &mut Frame, area: Rect, sst: &SstState, theme: &Theme) {
    let mut lines = Vec::new();
    let head = match (&sst.note, sst.running) {
        (Some(note), _) => note.clone(),
        (None, true) => format!("run {} of {}", sst.runs_done + 1, sst.runs_total),
        (None, false) if sst.lines.is_empty() => {
            "r runs the benchmark with these settings (the same engine as `switchyard sst-bench`)"
                .to_owned()
        }
        (None, false) => String::new(),
    };
    lines.push(Line::styled(head, theme.header));
    for l in &sst.lines {
        let style = match l.state {
            LineState::Failed(_) => theme.error,
            LineState::Running => theme.text,
            _ => theme.muted,
        };
        lines.push(Line::styled(line_text(l), style));
    }
    frame.render_widget(Paragraph::new(lines), area);
}

fn render_report(frame: &mut Frame, area: Rect, report: &BenchReport, theme: &Theme) {
    let results = &report.results;
    let [table, advice] = Layout::vertical([
        Constraint::Length(results.len() as u16 + 1),
        Constraint::Min(0),
    ])
    .areas(area);
    let max_d = results.iter().map(|r| r.duration_s).fold(0.0, f64::max);
    let max_b = results.iter().map(|r| r.wire_bytes).max().unwrap_or(0) as f64;
    // What the other columns take: method 16, durations 7, bytes 9, ratio, CPU, the limit.
    let bar_w = usize::from(area.width.saturating_sub(62) / 2).clamp(4, 30);
    let winner = (report.recommendation.method, report.recommendation.engine);
    let mut lines = vec![Line::styled(
        format!(
            "{:<16} {:<w$} {:>7} {:<w$} {:>9} {:>5} {:>4} {}",
            "method",
            "duration",
            "",
            "on the wire",
            "",
            "ratio",
            "CPU",
            "limit",
            w = bar_w
        ),
        theme.header,
    )];
    for r in results {
        let label = match r.engine {
            crate::sstbench::pipeline::Engine::Builtin => r.method.name().to_string(),
            crate::sstbench::pipeline::Engine::Cli => format!("{} (cli)", r.method.name()),
        };
        let style = if (Some(r.method), Some(r.engine)) == winner {
            theme.ok
        } else {
            theme.text
        };
        lines.push(Line::styled(
            format!(
                "{label:<16} {} {:>6.2}s {} {:>9} {:>5.2} {:>3.0}% {}",
                bar(r.duration_s, max_d, bar_w),
                r.duration_s,
                bar(r.wire_bytes as f64, max_b, bar_w),
                ByteSize(r.wire_bytes).to_string(),
                r.ratio,
                r.compress_cpu_pct,
                r.bottleneck
            ),
            style,
        ));
    }
    frame.render_widget(Paragraph::new(lines), table);

    let rec = &report.recommendation;
    // The advice and its section first: on a short terminal the details are what is cut.
    let mut text: Vec<Line> = rec
        .explanation
        .iter()
        .take(1)
        .map(|l| Line::styled(l.clone(), theme.text))
        .collect();
    text.extend(
        rec.sst_section
            .lines()
            .map(|l| Line::styled(l.to_owned(), theme.sql)),
    );
    for e in &rec.excluded {
        text.push(Line::styled(
            format!("excluded {} ({}): {}", e.method, e.engine, e.reason),
            theme.warning,
        ));
    }
    text.extend(
        rec.explanation
            .iter()
            .skip(1)
            .map(|l| Line::styled(l.clone(), theme.muted)),
    );
    frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: false }), advice);
}

#[cfg(test)]
mod tests {
    use super::bar;

    #[test]
    fn bars_scale_to_the_largest_value() {
        assert_eq!(bar(10.0, 10.0, 4), "████");
        assert_eq!(bar(5.0, 10.0, 4), "██  ");
        assert_eq!(bar(0.0, 10.0, 4), "    ");
        assert_eq!(bar(1.0, 0.0, 3), "   ");
        assert_eq!(bar(1.0, 16.0, 2), "▏ ");
    }
}
