//! The report of `linnet bench compare`: reduces the runs of a [`CompareResult`] to medians,
//! spread (min–max) and ratios against the baseline broker, and renders them as a Markdown
//! table and a self-contained HTML page with SVG charts (no scripts, no external files).

use std::fmt::Write as _;

use crate::compare::CompareResult;
use crate::report::Report;

/// Median, lowest and highest of a set of runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub runs: usize,
}

impl Spread {
    fn of(mut values: Vec<f64>) -> Option<Self> {
        values.retain(|v| v.is_finite());
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let median = if n % 2 == 1 {
            values[n / 2]
        } else {
            (values[n / 2 - 1] + values[n / 2]) / 2.0
        };
        Some(Self {
            median,
            min: values[0],
            max: values[n - 1],
            runs: n,
        })
    }
}

/// Percentile labels of the latency profile, in order.
pub const PROFILE: [&str; 5] = ["p50", "p90", "p99", "p99.9", "max"];

/// One broker's runs of one case, reduced.
#[derive(Debug, Clone, PartialEq)]
pub struct BrokerFigures {
    pub broker: usize,
    pub failed: usize,
    /// Errors of failed runs (first few).
    pub errors: Vec<String>,
    /// Received msg/s, or connects/s for `conn`.
    pub rate: Option<Spread>,
    pub p50: Option<Spread>,
    pub p99: Option<Spread>,
    pub p999: Option<Spread>,
    /// Median of each percentile in [`PROFILE`] over the runs, µs (connect latency for `conn`).
    pub profile: Option<[f64; 5]>,
    pub lost: u64,
    pub duplicated: u64,
    pub reordered: u64,
    /// Broker memory growth per connection (`conn` against a started broker).
    pub bytes_per_connection: Option<Spread>,
}

/// One case, every broker.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseFigures {
    pub label: String,
    pub is_conn: bool,
    pub brokers: Vec<BrokerFigures>,
}

impl CaseFigures {
    /// What `rate` measures.
    pub fn rate_name(&self) -> &'static str {
        if self.is_conn {
            "connects/s"
        } else {
            "received msg/s"
        }
    }
}

/// Reduces every case of a comparison.
pub fn figures(result: &CompareResult) -> Vec<CaseFigures> {
    result
        .job
        .cases
        .iter()
        .enumerate()
        .map(|(case_index, case)| {
            let is_conn = case.kind() == "conn";
            let brokers = (0..result.job.brokers.len())
                .map(|broker| {
                    let runs: Vec<_> = result
                        .samples
                        .iter()
                        .filter(|s| s.case == case_index && s.broker == broker)
                        .collect();
                    let reports: Vec<&Report> =
                        runs.iter().filter_map(|s| s.report.as_ref()).collect();
                    let errors: Vec<String> = runs
                        .iter()
                        .filter(|s| s.report.is_none())
                        .filter_map(|s| s.error.clone())
                        .take(3)
                        .collect();
                    let latency = |r: &Report| {
                        if is_conn {
                            r.conn.latency_us.clone()
                        } else {
                            r.latency_us.clone()
                        }
                    };
                    let pick = |f: &dyn Fn(&crate::report::Percentiles) -> f64| {
                        Spread::of(
                            reports
                                .iter()
                                .filter_map(|r| latency(r))
                                .map(|p| f(&p))
                                .collect(),
                        )
                    };
                    let profile = {
                        let columns: [Option<Spread>; 5] = [
                            pick(&|p| p.p50 as f64),
                            pick(&|p| p.p90 as f64),
                            pick(&|p| p.p99 as f64),
                            pick(&|p| p.p999 as f64),
                            pick(&|p| p.max as f64),
                        ];
                        if columns.iter().all(Option::is_some) {
                            Some(columns.map(|c| c.map_or(0.0, |s| s.median)))
                        } else {
                            None
                        }
                    };
                    BrokerFigures {
                        broker,
                        failed: runs.len() - reports.len(),
                        errors,
                        rate: Spread::of(
                            reports
                                .iter()
                                .map(|r| {
                                    if is_conn {
                                        r.conn.connects_per_sec
                                    } else {
                                        r.received_per_sec
                                    }
                                })
                                .collect(),
                        ),
                        p50: pick(&|p| p.p50 as f64),
                        p99: pick(&|p| p.p99 as f64),
                        p999: pick(&|p| p.p999 as f64),
                        profile,
                        lost: reports.iter().map(|r| r.lost).sum(),
                        duplicated: reports.iter().map(|r| r.duplicated).sum(),
                        reordered: reports.iter().map(|r| r.reordered).sum(),
                        bytes_per_connection: Spread::of(
                            reports
                                .iter()
                                .filter_map(|r| r.rss.as_ref())
                                .map(|rss| rss.bytes_per_connection)
                                .collect(),
                        ),
                    }
                })
                .collect();
            CaseFigures {
                label: case.label.clone(),
                is_conn,
                brokers,
            }
        })
        .collect()
}

fn ratio(value: Option<Spread>, baseline: Option<Spread>) -> Option<f64> {
    match (value, baseline) {
        (Some(v), Some(b)) if b.median > 0.0 => Some(v.median / b.median),
        _ => None,
    }
}

fn num(value: f64) -> String {
    // Thousands separators make rates readable at a glance.
    let rounded = value.round() as i64;
    let digits = rounded.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if rounded < 0 {
        out.insert(0, '-');
    }
    out
}

fn opt_num(value: Option<Spread>) -> String {
    value.map_or_else(|| "–".to_owned(), |s| num(s.median))
}

fn spread_text(value: Option<Spread>) -> String {
    value.map_or_else(
        || "–".to_owned(),
        |s| format!("{}–{}", num(s.min), num(s.max)),
    )
}

fn ratio_text(value: Option<f64>) -> String {
    value.map_or_else(|| "–".to_owned(), |r| format!("{r:.2}×"))
}

fn header(result: &CompareResult) -> String {
    let job = &result.job;
    let pin = match (&job.pin_broker, &job.pin_load) {
        (Some(b), Some(l)) => format!("broker pinned to CPU {b}, load to CPU {l}"),
        (Some(b), None) => format!("broker pinned to CPU {b}"),
        (None, Some(l)) => format!("load pinned to CPU {l}"),
        (None, None) => "no CPU pinning".to_owned(),
    };
    format!(
        "{} on {}; {} round(s) of {} s per case, brokers alternating in each round; {pin}; \
         baseline: {}. Figures are medians over the rounds, spread is min–max, ratio is \
         broker median / baseline median (higher is better for rates, lower for latency \
         and memory).",
        result.started,
        result.machine,
        job.rounds,
        job.duration_secs,
        job.brokers[job.baseline].name
    )
}

/// The comparison as Markdown: a summary table, then one table per case.
pub fn markdown(result: &CompareResult) -> String {
    let job = &result.job;
    let cases = figures(result);
    let names: Vec<&str> = job.brokers.iter().map(|b| b.name.as_str()).collect();
    let base = job.baseline;
    let mut out = String::new();
    let _ = writeln!(out, "# Broker comparison\n\n{}\n", header(result));
    let _ = writeln!(out, "## Summary\n");
    let summary = summary(result, &cases);
    let _ = writeln!(
        out,
        "| case | measure | {} |\n|---|---|{}",
        summary.columns.join(" | "),
        "---:|".repeat(summary.columns.len())
    );
    for row in &summary.rows {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} |",
            row.case,
            row.measure,
            row.cells.join(" | ")
        );
    }
    for case in &cases {
        let _ = writeln!(out, "\n## `{}`\n", case.label);
        if case.is_conn {
            let _ = writeln!(
                out,
                "| broker | connects/s | spread | ratio | connect p50 µs | connect p99 µs | bytes/conn | spread | ratio | failed runs |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
            let baseline = &case.brokers[base];
            for b in &case.brokers {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    names[b.broker],
                    opt_num(b.rate),
                    spread_text(b.rate),
                    ratio_text(ratio(b.rate, baseline.rate)),
                    opt_num(b.p50),
                    opt_num(b.p99),
                    opt_num(b.bytes_per_connection),
                    spread_text(b.bytes_per_connection),
                    ratio_text(ratio(b.bytes_per_connection, baseline.bytes_per_connection)),
                    b.failed
                );
            }
        } else {
            let _ = writeln!(
                out,
                "| broker | received msg/s | spread | ratio | p50 µs | p99 µs | p99 spread | p99 ratio | p99.9 µs | lost | dup | reordered | failed runs |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
            );
            let baseline = &case.brokers[base];
            for b in &case.brokers {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                    names[b.broker],
                    opt_num(b.rate),
                    spread_text(b.rate),
                    ratio_text(ratio(b.rate, baseline.rate)),
                    opt_num(b.p50),
                    opt_num(b.p99),
                    spread_text(b.p99),
                    ratio_text(ratio(b.p99, baseline.p99)),
                    opt_num(b.p999),
                    b.lost,
                    b.duplicated,
                    b.reordered,
                    b.failed
                );
            }
        }
        for b in &case.brokers {
            for error in &b.errors {
                let _ = writeln!(out, "\n- {} failed: {}", names[b.broker], error);
            }
        }
    }
    out
}

const COLORS: [&str; 6] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
];

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Horizontal bars of the median with a min–max whisker, one per broker.
fn bar_chart(title: &str, unit: &str, names: &[&str], values: &[Option<Spread>]) -> String {
    let width = 720.0;
    let left = 130.0;
    let right = 150.0;
    let row = 34.0;
    let top = 30.0;
    let height = top + row * values.len() as f64 + 10.0;
    let max = values
        .iter()
        .flatten()
        .map(|s| s.max)
        .fold(0.0_f64, f64::max)
        .max(1e-9);
    let scale = (width - left - right) / max;
    let mut svg = format!(
        r#"<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="{t}"><text x="4" y="18" class="title">{t}</text>"#,
        t = escape(title)
    );
    for (i, (name, value)) in names.iter().zip(values).enumerate() {
        let y = top + row * i as f64;
        let color = COLORS[i % COLORS.len()];
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            left - 8.0,
            y + 17.0,
            escape(name)
        );
        match value {
            Some(s) => {
                let w = (s.median * scale).max(1.0);
                let _ = write!(
                    svg,
                    r#"<rect x="{left}" y="{}" width="{w:.1}" height="22" fill="{color}"><title>{name}: median {} {unit}, {}–{}</title></rect>"#,
                    y + 3.0,
                    num(s.median),
                    num(s.min),
                    num(s.max),
                    name = escape(name)
                );
                let (x1, x2) = (left + s.min * scale, left + s.max * scale);
                let _ = write!(
                    svg,
                    r#"<line x1="{x1:.1}" x2="{x2:.1}" y1="{ym}" y2="{ym}" class="whisker"/><line x1="{x1:.1}" x2="{x1:.1}" y1="{a}" y2="{b}" class="whisker"/><line x1="{x2:.1}" x2="{x2:.1}" y1="{a}" y2="{b}" class="whisker"/>"#,
                    ym = y + 14.0,
                    a = y + 8.0,
                    b = y + 20.0
                );
                let _ = write!(
                    svg,
                    r#"<text x="{:.1}" y="{}">{} {unit}</text>"#,
                    x2.max(left + w) + 6.0,
                    y + 18.0,
                    num(s.median)
                );
            }
            None => {
                let _ = write!(
                    svg,
                    r#"<text x="{left}" y="{}">no successful run</text>"#,
                    y + 18.0
                );
            }
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Latency percentiles (p50 … max) on a logarithmic axis, one line per broker.
fn latency_chart(title: &str, names: &[&str], profiles: &[Option<[f64; 5]>]) -> String {
    let (width, height) = (720.0, 300.0);
    let (left, right, top, bottom) = (105.0, 130.0, 44.0, 40.0);
    let values: Vec<f64> = profiles.iter().flatten().flatten().copied().collect();
    let lo = values.iter().copied().fold(f64::MAX, f64::min).max(1.0);
    let hi = values.iter().copied().fold(1.0, f64::max).max(lo * 10.0);
    let (log_lo, log_hi) = (lo.log10().floor(), hi.log10().ceil());
    let plot_h = height - top - bottom;
    let plot_w = width - left - right;
    let y_of = |v: f64| top + plot_h * (1.0 - (v.max(1.0).log10() - log_lo) / (log_hi - log_lo));
    let x_of = |i: usize| left + plot_w * i as f64 / (PROFILE.len() - 1) as f64;
    let mut svg = format!(
        r#"<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="{t}"><text x="4" y="18" class="title">{t}</text>"#,
        t = escape(title)
    );
    let mut decade = log_lo;
    while decade <= log_hi {
        let v = 10f64.powf(decade);
        let y = y_of(v);
        let _ = write!(
            svg,
            r#"<line x1="{left}" x2="{}" y1="{y:.1}" y2="{y:.1}" class="grid"/><text x="{}" y="{:.1}" text-anchor="end">{} µs</text>"#,
            left + plot_w,
            left - 6.0,
            y + 4.0,
            num(v)
        );
        decade += 1.0;
    }
    for (i, label) in PROFILE.iter().enumerate() {
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{label}</text>"#,
            x_of(i),
            height - bottom + 20.0
        );
    }
    for (b, (name, profile)) in names.iter().zip(profiles).enumerate() {
        let color = COLORS[b % COLORS.len()];
        let legend_y = top + 20.0 * b as f64;
        let _ = write!(
            svg,
            r#"<rect x="{}" y="{}" width="14" height="4" fill="{color}"/><text x="{}" y="{}">{}</text>"#,
            width - right + 16.0,
            legend_y + 6.0,
            width - right + 36.0,
            legend_y + 11.0,
            escape(name)
        );
        let Some(profile) = profile else { continue };
        let points: Vec<String> = profile
            .iter()
            .enumerate()
            .map(|(i, v)| format!("{:.1},{:.1}", x_of(i), y_of(*v)))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="2"/>"#,
            points.join(" ")
        );
        for (i, v) in profile.iter().enumerate() {
            let _ = write!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3.5" fill="{color}"><title>{}: {} {} µs</title></circle>"#,
                x_of(i),
                y_of(*v),
                escape(name),
                PROFILE[i],
                num(*v)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Ratio of each broker to the baseline for every case's rate, bars around a line at 1×.
fn ratio_chart(result: &CompareResult, cases: &[CaseFigures]) -> String {
    let base = result.job.baseline;
    let others: Vec<usize> = (0..result.job.brokers.len())
        .filter(|i| *i != base)
        .collect();
    let rows: Vec<(String, usize, Option<f64>)> = cases
        .iter()
        .flat_map(|case| {
            others.iter().map(move |&b| {
                (
                    format!("{} ({})", case.label, case.rate_name()),
                    b,
                    ratio(case.brokers[b].rate, case.brokers[base].rate),
                )
            })
        })
        .collect();
    let width = 960.0;
    let left = 440.0;
    let right = 70.0;
    let row = 24.0;
    let top = 46.0;
    let height = top + row * rows.len() as f64 + 10.0;
    // A logarithmic axis: 0.5x and 2x sit the same distance from 1x, and one case at 100x
    // does not flatten all the others.
    let values = rows.iter().filter_map(|r| r.2).filter(|r| *r > 0.0);
    let lo = values.clone().fold(0.5_f64, f64::min).log10().floor();
    let hi = values.fold(2.0_f64, f64::max).log10().ceil();
    let plot = width - left - right;
    let x_of = |r: f64| left + plot * (r.max(1e-9).log10() - lo) / (hi - lo);
    let one = x_of(1.0);
    let mut svg = format!(
        r#"<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" aria-label="ratios"><text x="4" y="18" class="title">Rate ratio to {} (log scale; 1× = same, higher is better)</text>"#,
        escape(&result.job.brokers[base].name)
    );
    let mut decade = lo;
    while decade <= hi {
        let x = x_of(10f64.powf(decade));
        let _ = write!(
            svg,
            r#"<line x1="{x:.1}" x2="{x:.1}" y1="{}" y2="{}" class="grid"/><text x="{x:.1}" y="{}" text-anchor="middle">{}×</text>"#,
            top - 4.0,
            height - 5.0,
            top - 8.0,
            10f64.powf(decade)
        );
        decade += 1.0;
    }
    for (i, (label, broker, value)) in rows.iter().enumerate() {
        let y = top + row * i as f64;
        let color = COLORS[broker % COLORS.len()];
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end">{} · {}</text>"#,
            left - 8.0,
            y + 15.0,
            escape(label),
            escape(&result.job.brokers[*broker].name)
        );
        match value {
            Some(r) => {
                let x = x_of(*r);
                let (from, to) = if x >= one { (one, x) } else { (x, one) };
                let _ = write!(
                    svg,
                    r#"<rect x="{from:.1}" y="{}" width="{:.1}" height="18" fill="{color}"/><text x="{:.1}" y="{}">{r:.2}×</text>"#,
                    y + 2.0,
                    (to - from).max(1.0),
                    to.max(one) + 6.0,
                    y + 15.0
                );
            }
            None => {
                let _ = write!(
                    svg,
                    r#"<text x="{}" y="{}">no result (a run failed)</text>"#,
                    one + 6.0,
                    y + 15.0
                );
            }
        }
    }
    let _ = write!(
        svg,
        r#"<line x1="{one:.1}" x2="{one:.1}" y1="{top}" y2="{}" class="one"/></svg>"#,
        height - 5.0
    );
    svg
}

/// The comparison as a self-contained HTML page.
pub fn html(result: &CompareResult) -> String {
    let cases = figures(result);
    let names: Vec<&str> = result.job.brokers.iter().map(|b| b.name.as_str()).collect();
    let mut out = String::from(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>linnet bench compare</title><style>
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:960px;color:#222}
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}code{background:#f4f4f4;padding:0 3px}
svg{display:block;margin:.6em 0;font-size:12px}svg .title{font-weight:600;font-size:13px}
.whisker{stroke:#222;stroke-width:1.2}.grid{stroke:#e4e4e4}.one{stroke:#222;stroke-dasharray:4 3}
.fail{color:#b00}
</style></head><body><h1>Broker comparison</h1>"#,
    );
    let _ = write!(out, "<p>{}</p>", escape(&header(result)));
    let _ = write!(out, "<h2>Summary</h2>{}", ratio_chart(result, &cases));
    out.push_str(&summary_table_html(result, &cases));
    for case in &cases {
        let _ = write!(out, "<h2><code>{}</code></h2>", escape(&case.label));
        let rates: Vec<Option<Spread>> = case.brokers.iter().map(|b| b.rate).collect();
        out.push_str(&bar_chart(
            &format!("{} (median, whiskers min–max)", case.rate_name()),
            if case.is_conn { "/s" } else { "msg/s" },
            &names,
            &rates,
        ));
        if case.is_conn {
            let memory: Vec<Option<Spread>> = case
                .brokers
                .iter()
                .map(|b| b.bytes_per_connection)
                .collect();
            if memory.iter().any(Option::is_some) {
                out.push_str(&bar_chart(
                    "broker memory per idle connection (lower is better)",
                    "B",
                    &names,
                    &memory,
                ));
            }
        }
        let profiles: Vec<Option<[f64; 5]>> = case.brokers.iter().map(|b| b.profile).collect();
        if profiles.iter().any(Option::is_some) {
            out.push_str(&latency_chart(
                if case.is_conn {
                    "connect latency percentiles (median of rounds, log scale)"
                } else {
                    "end-to-end latency percentiles (median of rounds, log scale)"
                },
                &names,
                &profiles,
            ));
        }
        for b in &case.brokers {
            if b.lost > 0 || b.duplicated > 0 {
                let _ = write!(
                    out,
                    r#"<p class="fail">{}: {} lost, {} duplicated over all rounds</p>"#,
                    escape(names[b.broker]),
                    b.lost,
                    b.duplicated
                );
            }
            for error in &b.errors {
                let _ = write!(
                    out,
                    r#"<p class="fail">{} failed: {}</p>"#,
                    escape(names[b.broker]),
                    escape(error)
                );
            }
        }
    }
    out.push_str("</body></html>\n");
    out
}

fn summary_table_html(result: &CompareResult, cases: &[CaseFigures]) -> String {
    let summary = summary(result, cases);
    let mut out = String::from("<table><tr><th>case</th><th>measure</th>");
    for column in &summary.columns {
        let _ = write!(out, "<th>{}</th>", escape(column));
    }
    out.push_str("</tr>");
    for row in &summary.rows {
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td>",
            escape(&row.case),
            row.measure
        );
        for cell in &row.cells {
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
    out
}

/// The summary both reports open with: per case, its rate and its p99 latency (memory for
/// `conn`), each broker's median, then each broker's ratio to the baseline.
struct Summary {
    /// Broker names, then `name / baseline` for each other broker.
    columns: Vec<String>,
    rows: Vec<SummaryRow>,
}

/// A measure's name and how to read it from one broker's figures.
type Measure = (&'static str, fn(&BrokerFigures) -> Option<Spread>);

struct SummaryRow {
    case: String,
    measure: &'static str,
    cells: Vec<String>,
}

fn summary(result: &CompareResult, cases: &[CaseFigures]) -> Summary {
    let names: Vec<&str> = result.job.brokers.iter().map(|b| b.name.as_str()).collect();
    let base = result.job.baseline;
    let others = || (0..names.len()).filter(move |i| *i != base);
    let mut columns: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    columns.extend(others().map(|i| format!("{} / {}", names[i], names[base])));
    let mut rows = Vec::new();
    for case in cases {
        let second: Measure = if case.is_conn {
            ("bytes per connection", |b| b.bytes_per_connection)
        } else {
            ("p99 latency µs", |b| b.p99)
        };
        let measures: [Measure; 2] = [(case.rate_name(), |b| b.rate), second];
        for (measure, pick) in measures {
            let values: Vec<Option<Spread>> = case.brokers.iter().map(pick).collect();
            let mut cells: Vec<String> = values.iter().map(|v| opt_num(*v)).collect();
            cells.extend(others().map(|i| ratio_text(ratio(values[i], values[base]))));
            rows.push(SummaryRow {
                case: case.label.clone(),
                measure,
                cells,
            });
        }
    }
    Summary { columns, rows }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spreads_take_the_median() {
        let s = Spread::of(vec![3.0, 1.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.runs), (2.0, 1.0, 3.0, 3));
        let s = Spread::of(vec![4.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!(s.median, 2.5);
        assert!(Spread::of(vec![]).is_none());
    }

    fn report(rate: f64, p99: u64, lost: u64) -> Report {
        serde_json::from_value(serde_json::json!({
            "scenario": "fan-in", "protocol": "5.0", "qos": 0, "payload_size": 64,
            "publishers": 2, "subscribers": 1, "target_rate": null,
            "conn": {"connections": 3, "connects_per_sec": 100.0, "connect_seconds": 0.03,
                     "latency_us": null},
            "sent": 1000, "acked": 0, "send_seconds": 1.0, "sent_per_sec": 1000.0,
            "received": 1000 - lost, "expected": 1000, "receive_seconds": 1.0,
            "received_per_sec": rate, "lost": lost, "duplicated": 0, "reordered": 0,
            "unstamped": 0,
            "latency_us": {"count": 1000, "min": 1, "mean": 10.0, "p50": 10, "p90": 20,
                           "p99": p99, "p999": p99 * 2, "max": p99 * 3},
            "rss": null, "elapsed_seconds": 2.0
        }))
        .unwrap()
    }

    fn result() -> CompareResult {
        use crate::compare::{BrokerHow, BrokerSpec, Case, CompareJob, Sample};
        let broker = |name: &str| BrokerSpec {
            name: name.into(),
            how: BrokerHow::Command(format!("{name} -p {{port}}")),
        };
        let sample = |broker, round, report| Sample {
            broker,
            case: 0,
            round,
            report: Some(report),
            error: None,
        };
        CompareResult {
            job: CompareJob {
                brokers: vec![broker("fast"), broker("slow")],
                cases: vec![Case::parse("fan-in -P 2").unwrap()],
                rounds: 3,
                duration_secs: 1.0,
                pin_broker: Some("0".into()),
                pin_load: Some("1".into()),
                port: 1883,
                load_program: vec!["linnet".into()],
                baseline: 1,
            },
            started: "2026-11-26 02:00 UTC".into(),
            machine: "test".into(),
            samples: vec![
                sample(0, 0, report(4000.0, 100, 0)),
                sample(1, 0, report(1000.0, 400, 7)),
                sample(0, 1, report(3000.0, 120, 0)),
                sample(1, 1, report(1500.0, 300, 0)),
                sample(0, 2, report(5000.0, 90, 0)),
                Sample {
                    broker: 1,
                    case: 0,
                    round: 2,
                    report: None,
                    error: Some("broke".into()),
                },
            ],
        }
    }

    #[test]
    fn reports_show_medians_spread_and_ratios() {
        let result = result();
        let cases = figures(&result);
        let fast = &cases[0].brokers[0];
        let slow = &cases[0].brokers[1];
        assert_eq!(fast.rate.unwrap().median, 4000.0);
        assert_eq!((slow.rate.unwrap().median, slow.failed), (1250.0, 1));
        assert_eq!(slow.lost, 7);
        let markdown = markdown(&result);
        // 4000 / 1250 = 3.2; p99 medians 100 and 350.
        assert!(
            markdown.contains("| `fan-in -P 2` | received msg/s | 4,000 | 1,250 | 3.20× |"),
            "{markdown}"
        );
        assert!(
            markdown.contains("| fast | 4,000 | 3,000–5,000 | 3.20× |"),
            "{markdown}"
        );
        assert!(markdown.contains("slow failed: broke"), "{markdown}");
        assert!(
            markdown.contains("broker pinned to CPU 0, load to CPU 1"),
            "{markdown}"
        );
        let html = html(&result);
        assert!(html.starts_with("<!doctype html>"));
        assert_eq!(
            html.matches("<svg").count(),
            3,
            "ratio overview, rate bars, latency"
        );
        assert!(
            html.contains("7 lost"),
            "loss is shown in red under the charts"
        );
        assert!(!html.contains("<script"), "a static page");
    }

    #[test]
    fn numbers_group_thousands() {
        assert_eq!(num(1_234_567.4), "1,234,567");
        assert_eq!(num(999.0), "999");
        assert_eq!(num(-1000.0), "-1,000");
    }
}
