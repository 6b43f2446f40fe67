//! From results to advice: the fastest method within the donor CPU budget, why it won, and the
//! `[sst]` section that makes MariaDB 10.11's `wsrep_sst_mariabackup` use it.

use serde::{Deserialize, Serialize};

use super::codecs::Method;
use super::pipeline::{Engine, Stage};
use super::report::MethodResult;
use super::throttle::{Bandwidth, ByteSize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recommendation {
    /// The winner; absent when no method stayed within the budget.
    pub method: Option<Method>,
    pub engine: Option<Engine>,
    pub duration_s: Option<f64>,
    pub speedup_vs_none: Option<f64>,
    /// The winner's compressor CPU as a share of the donor's cores.
    pub donor_cpu_pct: Option<f64>,
    pub max_donor_cpu_pct: f64,
    pub bottleneck: Option<Stage>,
    /// Sentences: why the winner won, what limited it, what limited the others.
    pub explanation: Vec<String>,
    /// `[sst] compressor=` / `decompressor=` values (absent for `none`).
    pub compressor: Option<String>,
    pub decompressor: Option<String>,
    /// The `[sst]` section to put in the my.cnf of every node.
    pub sst_section: String,
    /// Methods left out, and why (over the CPU budget, failed).
    pub excluded: Vec<Excluded>,
    pub input: String,
    pub bandwidth: Option<String>,
    pub cores: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Excluded {
    pub method: Method,
    pub engine: Engine,
    pub reason: String,
}

/// What the advice depends on besides the results.
#[derive(Debug, Clone)]
pub struct Context {
    pub input: String,
    pub bandwidth: Option<Bandwidth>,
    pub cores: usize,
    pub max_donor_cpu_pct: f64,
    /// How `[sst]` lines call this program (absolute path of the binary, or `switchyard`).
    pub switchyard: String,
}

/// The `switchyard codec` command lines for `method` on `threads` threads.
pub fn codec_commands(switchyard: &str, method: Method, threads: usize) -> (String, String) {
    let threads = if method.is_parallel() || (method == Method::Qpress && threads > 1) {
        format!(" --threads {threads}")
    } else {
        String::new()
    };
    (
        format!("{switchyard} codec compress --method {method}{threads}"),
        format!("{switchyard} codec decompress --method {method}"),
    )
}

/// The commands an SST would run for a result row: the tool it measured, or for the builtin
/// engine the same codec as a `switchyard codec` filter.
fn sst_commands(row: &MethodResult, switchyard: &str) -> Option<(String, String)> {
    if row.method == Method::None {
        return None;
    }
    match (row.engine, &row.compressor, &row.decompressor) {
        (Engine::Cli, Some(c), Some(d)) => Some((c.clone(), d.clone())),
        _ => Some(codec_commands(switchyard, row.method, row.threads)),
    }
}

fn pct(v: f64) -> String {
    format!("{v:.0} %")
}

/// Why a row took as long as it did, in a DBA's words.
pub fn explain_bottleneck(row: &MethodResult, bandwidth: Option<Bandwidth>) -> String {
    let link = bandwidth.map_or("the unthrottled link".to_string(), |b| {
        format!("the {b} link")
    });
    match row.bottleneck {
        Stage::Link => format!(
            "{} was limited by {link}: it compresses faster than the link carries its output, so \
             the transfer takes wire bytes / bandwidth ({} at ratio {:.2})",
            row.label(),
            ByteSize(row.wire_bytes),
            row.ratio
        ),
        Stage::Compress => format!(
            "{} was limited by its compressor on the donor ({} thread{}, {:.1} CPU s, {} of {} \
             cores): the link waited for data",
            row.label(),
            row.threads,
            if row.threads == 1 { "" } else { "s" },
            row.compress_cpu_s,
            pct(row.compress_cpu_pct),
            row.cores
        ),
        Stage::Decompress => format!(
            "{} was limited by its decompressor on the joiner ({:.1} CPU s, single-threaded)",
            row.label(),
            row.decompress_cpu_s
        ),
        Stage::Source | Stage::Sink => format!(
            "{} was limited by the benchmark's own {} (reading the input / checking the output) \
             on this machine, not by the codec or the link: use a slower --bandwidth or a faster \
             disk to compare codecs",
            row.label(),
            row.bottleneck
        ),
    }
}

/// The winner's compressor and decompressor as `[sst]` lines (with Debian's tool as an
/// alternative to a builtin codec); the commands, or none for `none`.
fn sst_commands_section(
    w: &MethodResult,
    ctx: &Context,
    section: &mut String,
) -> (Option<String>, Option<String>) {
    match sst_commands(w, &ctx.switchyard) {
        Some((c, d)) => {
            section.push_str(&format!("compressor='{c}'\ndecompressor='{d}'\n"));
            if w.engine == Engine::Builtin {
                if let Some(tool) = w.method.debian_tool(w.threads) {
                    section.push_str(&format!(
                        "# or Debian's {}: compressor='{}' decompressor='{}'\n",
                        tool.package,
                        tool.compress.join(" "),
                        tool.decompress.join(" ")
                    ));
                }
            }
            (Some(c), Some(d))
        }
        None => {
            section.push_str("# no compressor: send the backup stream as it is\n");
            (None, None)
        }
    }
}

/// Picks the fastest row whose donor CPU stays within the budget.
pub fn recommend(
    results: &[MethodResult],
    mut excluded: Vec<Excluded>,
    ctx: &Context,
) -> Recommendation {
    let budget = ctx.max_donor_cpu_pct;
    // `none` runs no compressor in an SST: whatever copying cost it shows is not donor load.
    let within = |r: &MethodResult| r.method == Method::None || r.compress_cpu_pct <= budget;
    for r in results {
        if !within(r) {
            excluded.push(Excluded {
                method: r.method,
                engine: r.engine,
                reason: format!(
                    "donor CPU {} of {} cores is over the {} budget",
                    pct(r.compress_cpu_pct),
                    r.cores,
                    pct(budget)
                ),
            });
        }
    }
    let winner = results
        .iter()
        .filter(|r| within(r))
        .min_by(|a, b| a.duration_s.total_cmp(&b.duration_s));
    let none = results
        .iter()
        .find(|r| r.method == Method::None && r.engine == Engine::Builtin);
    let link = ctx
        .bandwidth
        .map_or("an unthrottled link".to_string(), |b| format!("{b}"));

    let mut explanation = Vec::new();
    let mut section = String::from("[sst]\n");
    let (mut compressor, mut decompressor) = (None, None);
    if let Some(w) = winner {
        let vs_none = match (none, w.method) {
            (Some(n), m) if m != Method::None => format!(
                " vs {:.2} s uncompressed ({:.2}× {})",
                n.duration_s,
                (n.duration_s / w.duration_s).max(w.duration_s / n.duration_s),
                if w.duration_s <= n.duration_s {
                    "faster"
                } else {
                    "slower"
                }
            ),
            _ => String::new(),
        };
        explanation.push(format!(
            "At {link} with {} cores, {} is the fastest method within the {} donor CPU budget: \
             {:.2} s{vs_none}, {:.0} % of the input on the wire (ratio {:.2}), donor CPU {}.",
            ctx.cores,
            w.label(),
            pct(budget),
            w.duration_s,
            100.0 / w.ratio.max(f64::MIN_POSITIVE),
            w.ratio,
            pct(w.compress_cpu_pct)
        ));
        explanation.push(format!("{}.", explain_bottleneck(w, ctx.bandwidth)));
        for r in results.iter().filter(|r| !std::ptr::eq(*r, w)) {
            explanation.push(format!(
                "{}: {:.2} s, ratio {:.2}, donor CPU {}; bottleneck {}.",
                r.label(),
                r.duration_s,
                r.ratio,
                pct(r.compress_cpu_pct),
                r.bottleneck
            ));
        }
        section.push_str(&format!(
            "# switchyard sst-bench: {} {:.2} s at {link}, {} cores ({})\n",
            w.label(),
            w.duration_s,
            ctx.cores,
            ctx.input
        ));
        (compressor, decompressor) = sst_commands_section(w, ctx, &mut section);
    } else {
        explanation.push(format!(
            "No method stayed within the {} donor CPU budget; raise --max-donor-cpu or add \
             `none` to --methods.",
            pct(budget)
        ));
        section.push_str("# no method fits the donor CPU budget\n");
    }
    Recommendation {
        method: winner.map(|w| w.method),
        engine: winner.map(|w| w.engine),
        duration_s: winner.map(|w| w.duration_s),
        speedup_vs_none: winner.and_then(|w| w.speedup_vs_none),
        donor_cpu_pct: winner.map(|w| w.compress_cpu_pct),
        max_donor_cpu_pct: budget,
        bottleneck: winner.map(|w| w.bottleneck),
        explanation,
        compressor,
        decompressor,
        sst_section: section,
        excluded,
        input: ctx.input.clone(),
        bandwidth: ctx.bandwidth.map(|b| b.to_string()),
        cores: ctx.cores,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(method: Method, engine: Engine, duration: f64, cpu_pct: f64, b: Stage) -> MethodResult {
        MethodResult {
            method,
            engine,
            compressor: (engine == Engine::Cli).then(|| "lz4 -1 -c".to_string()),
            decompressor: (engine == Engine::Cli).then(|| "lz4 -d -c".to_string()),
            threads: method.threads(4),
            runs: 3,
            duration_s: duration,
            duration_min_s: duration,
            duration_max_s: duration,
            input_bytes: 1 << 30,
            wire_bytes: 1 << 29,
            ratio: 2.0,
            compress_cpu_s: cpu_pct * duration * 4.0 / 100.0,
            decompress_cpu_s: 1.0,
            compress_cpu_pct: cpu_pct,
            decompress_cpu_pct: 5.0,
            bottleneck: b,
            speedup_vs_none: None,
            bandwidth_bps: Some(300e6),
            cores: 4,
            stages: Vec::new(),
            modelled: false,
            breakeven_bps: None,
        }
    }

    fn ctx(budget: f64) -> Context {
        Context {
            input: "test data".into(),
            bandwidth: Some(Bandwidth::from_bits(300e6)),
            cores: 4,
            max_donor_cpu_pct: budget,
            switchyard: "/usr/local/bin/switchyard".into(),
        }
    }

    #[test]
    fn fastest_within_budget_wins_and_names_switchyard_for_snappy() {
        let results = vec![
            row(Method::None, Engine::Builtin, 30.0, 1.0, Stage::Link),
            row(Method::Pigz, Engine::Builtin, 20.0, 95.0, Stage::Compress),
            row(Method::Snappy, Engine::Builtin, 24.0, 20.0, Stage::Link),
            row(Method::Gzip, Engine::Builtin, 60.0, 25.0, Stage::Compress),
        ];
        let r = recommend(&results, Vec::new(), &ctx(50.0));
        assert_eq!(r.method, Some(Method::Snappy));
        assert_eq!(r.excluded.len(), 1);
        assert_eq!(r.excluded[0].method, Method::Pigz);
        assert!(r.sst_section.starts_with("[sst]\n"));
        assert!(r
            .sst_section
            .contains("compressor='/usr/local/bin/switchyard codec compress --method snappy'\n"));
        assert!(r
            .sst_section
            .contains("decompressor='/usr/local/bin/switchyard codec decompress --method snappy'"));
        assert!(
            r.explanation[0].contains("1.25× faster"),
            "{}",
            r.explanation[0]
        );
        assert!(r.explanation[1].contains("limited by the 300Mbit link"));
        // Without a budget pigz wins and the section names its thread count.
        let r = recommend(&results, Vec::new(), &ctx(100.0));
        assert_eq!(r.method, Some(Method::Pigz));
        assert!(r.sst_section.contains("--method pigz --threads 4'"));
        assert!(r
            .sst_section
            .contains("# or Debian's pigz: compressor='pigz -6 -p 4 -c'"));
    }

    #[test]
    fn cli_rows_name_their_tool_and_none_needs_no_lines() {
        let results = vec![
            row(Method::None, Engine::Builtin, 30.0, 1.0, Stage::Link),
            row(Method::Lz4, Engine::Cli, 20.0, 10.0, Stage::Link),
        ];
        let r = recommend(&results, Vec::new(), &ctx(50.0));
        assert!(r
            .sst_section
            .contains("compressor='lz4 -1 -c'\ndecompressor='lz4 -d -c'\n"));
        let r = recommend(&results[..1], Vec::new(), &ctx(50.0));
        assert_eq!(r.method, Some(Method::None));
        assert!(r.compressor.is_none());
        assert!(!r.sst_section.contains("compressor="));
        let r = recommend(&results[1..], Vec::new(), &ctx(5.0));
        assert_eq!(r.method, None);
    }
}
