//! What is measured: metrics, workloads, targets, and the table / JSON report of the medians.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::servers::Kind;

/// One reported figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Metric {
    PutC1,
    PutC16,
    GetC1,
    GetC16,
    PropfindD0,
    PropfindD1,
    BigPut,
    BigGet,
    Mix,
    /// TUS 1.0.0 upload of the large file (hearth only).
    TusPut,
    /// Chunking-NG upload of the large file (hearth only).
    ChunkedPut,
    /// hearth's plain streaming PUT of the same size, measured next to TUS and chunking.
    PlainPut,
    /// A full `owncloudcmd` sync of a small-file tree (hearth only).
    Sync,
    /// hearth's plain MKCOL + PUT of the same tree, measured next to the sync.
    SyncPlain,
    Startup,
    IdleRss,
    PeakRss,
}

impl Metric {
    pub const ALL: [Metric; 17] = [
        Metric::PutC1,
        Metric::PutC16,
        Metric::GetC1,
        Metric::GetC16,
        Metric::PropfindD0,
        Metric::PropfindD1,
        Metric::BigPut,
        Metric::BigGet,
        Metric::Mix,
        Metric::TusPut,
        Metric::ChunkedPut,
        Metric::PlainPut,
        Metric::Sync,
        Metric::SyncPlain,
        Metric::Startup,
        Metric::IdleRss,
        Metric::PeakRss,
    ];

    /// JSON key.
    pub fn key(self) -> &'static str {
        match self {
            Metric::PutC1 => "small_put_c1",
            Metric::PutC16 => "small_put_c16",
            Metric::GetC1 => "small_get_c1",
            Metric::GetC16 => "small_get_c16",
            Metric::PropfindD0 => "propfind_depth0_c16",
            Metric::PropfindD1 => "propfind_depth1_folder",
            Metric::BigPut => "large_put",
            Metric::BigGet => "large_get",
            Metric::Mix => "mkcol_move_delete_mix_c16",
            Metric::TusPut => "tus_upload",
            Metric::ChunkedPut => "chunked_upload",
            Metric::PlainPut => "plain_put_baseline",
            Metric::Sync => "owncloudcmd_sync",
            Metric::SyncPlain => "sync_plain_put_baseline",
            Metric::Startup => "startup_to_ready",
            Metric::IdleRss => "idle_rss",
            Metric::PeakRss => "peak_rss",
        }
    }

    /// Table label; sizes follow the scale in use.
    pub fn label(self, s: &crate::workloads::Scale) -> String {
        let kib = s.small_size / 1024;
        let c = s.concurrency;
        match self {
            Metric::PutC1 => format!("PUT {} x {kib} KiB, c1", s.small_files),
            Metric::PutC16 => format!("PUT {} x {kib} KiB, c{c}", s.small_files),
            Metric::GetC1 => format!("GET {} x {kib} KiB, c1", s.small_files),
            Metric::GetC16 => format!("GET {} x {kib} KiB, c{c}", s.small_files),
            Metric::PropfindD0 => format!("PROPFIND D0 file x{}, c{c}", s.propfind_d0),
            Metric::PropfindD1 => format!("PROPFIND D1 {} entries", s.folder_entries),
            Metric::BigPut => format!("PUT {} MiB stream", s.large_bytes >> 20),
            Metric::BigGet => format!("GET {} MiB stream", s.large_bytes >> 20),
            Metric::Mix => format!("MKCOL/PUT/MOVE/DEL x{}, c{c}", s.mix_rounds),
            Metric::TusPut => format!("TUS upload {} MiB", s.large_bytes >> 20),
            Metric::ChunkedPut => format!("chunking NG {} MiB", s.large_bytes >> 20),
            Metric::PlainPut => format!("PUT {} MiB (baseline)", s.large_bytes >> 20),
            Metric::Sync => format!("owncloudcmd sync {} files", s.sync_files),
            Metric::SyncPlain => format!(
                "MKCOL+PUT {} files, c{} (base)",
                s.sync_files, s.sync_concurrency
            ),
            Metric::Startup => "start-up to ready".to_owned(),
            Metric::IdleRss => "idle RSS (start + 1 s)".to_owned(),
            Metric::PeakRss => "peak RSS during run".to_owned(),
        }
    }

    pub fn unit(self) -> &'static str {
        match self {
            Metric::PutC1 | Metric::PutC16 | Metric::GetC1 | Metric::GetC16 => "ops/s",
            Metric::PropfindD0 | Metric::Mix => "ops/s",
            Metric::PropfindD1 | Metric::Startup => "ms",
            Metric::BigPut | Metric::BigGet => "MB/s",
            Metric::TusPut | Metric::ChunkedPut | Metric::PlainPut => "MB/s",
            Metric::Sync | Metric::SyncPlain => "s",
            Metric::IdleRss | Metric::PeakRss => "MiB",
        }
    }

    pub fn higher_is_better(self) -> bool {
        !matches!(
            self,
            Metric::PropfindD1
                | Metric::Startup
                | Metric::IdleRss
                | Metric::PeakRss
                | Metric::Sync
                | Metric::SyncPlain
        )
    }

    /// Measured on hearth only: nginx and Apache do not speak TUS, chunking NG or OCS.
    pub fn hearth_only(self) -> bool {
        matches!(
            self,
            Metric::TusPut
                | Metric::ChunkedPut
                | Metric::PlainPut
                | Metric::Sync
                | Metric::SyncPlain
        )
    }

    /// For a hearth-only protocol: hearth's plain-PUT figure for the same data, which the ratio
    /// column compares against (instead of the best reference server).
    pub fn baseline(self) -> Option<Metric> {
        match self {
            Metric::TusPut | Metric::ChunkedPut => Some(Metric::PlainPut),
            Metric::Sync => Some(Metric::SyncPlain),
            _ => None,
        }
    }

    /// The target from the issue, if this metric has one.
    pub fn target(self) -> Option<Target> {
        use Target::{Max, MaxTimes, MinTimes};
        Some(match self {
            Metric::PutC16 => MinTimes(Kind::Apache, 1.0),
            Metric::GetC16 => MinTimes(Kind::Nginx, 0.6),
            Metric::PropfindD1 => MaxTimes(Kind::Apache, 2.0),
            Metric::BigPut => MinTimes(Kind::Nginx, 0.6),
            Metric::BigGet => MinTimes(Kind::Nginx, 0.8),
            Metric::IdleRss => Max(30.0),
            Metric::PeakRss => Max(100.0),
            Metric::Startup => Max(200.0),
            _ => return None,
        })
    }
}

/// A goal for hearth's figure.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// hearth ≥ factor × that server.
    MinTimes(Kind, f64),
    /// hearth ≤ factor × that server.
    MaxTimes(Kind, f64),
    /// hearth ≤ this absolute value (in the metric's unit).
    Max(f64),
}

impl Target {
    fn text(self, unit: &str) -> String {
        match self {
            Target::MinTimes(k, f) => format!(">= {f:.1}x {k}"),
            Target::MaxTimes(k, f) => format!("<= {f:.1}x {k}"),
            Target::Max(v) => format!("<= {v:.0} {unit}"),
        }
    }

    /// PASS / MISS, or None when a figure it needs is missing.
    fn check(self, hearth: f64, get: impl Fn(Kind) -> Option<f64>) -> Option<bool> {
        Some(match self {
            Target::MinTimes(k, f) => hearth >= f * get(k)?,
            Target::MaxTimes(k, f) => hearth <= f * get(k)?,
            Target::Max(v) => hearth <= v,
        })
    }
}

/// A group of metrics measured together; the unit of interleaving and of `--only`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    Startup,
    Small,
    Propfind,
    Large,
    Mix,
    Tus,
    Chunked,
    Sync,
}

impl Workload {
    pub const ALL: [Workload; 8] = [
        Workload::Startup,
        Workload::Small,
        Workload::Propfind,
        Workload::Large,
        Workload::Mix,
        Workload::Tus,
        Workload::Chunked,
        Workload::Sync,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Workload::Startup => "startup",
            Workload::Small => "small",
            Workload::Propfind => "propfind",
            Workload::Large => "large",
            Workload::Mix => "mix",
            Workload::Tus => "tus",
            Workload::Chunked => "chunked",
            Workload::Sync => "sync",
        }
    }

    /// Runs on hearth only (nginx and Apache are shown as n/a).
    pub fn hearth_only(self) -> bool {
        matches!(self, Workload::Tus | Workload::Chunked | Workload::Sync)
    }

    pub fn parse(s: &str) -> anyhow::Result<Self> {
        let s = s.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|w| w.name() == s)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown workload {s:?} (expected startup, small, propfind, large, mix, tus, chunked or sync)"
                )
            })
    }

    pub fn metrics(self) -> &'static [Metric] {
        match self {
            Workload::Startup => &[Metric::Startup, Metric::IdleRss],
            Workload::Small => &[Metric::PutC1, Metric::PutC16, Metric::GetC1, Metric::GetC16],
            Workload::Propfind => &[Metric::PropfindD0, Metric::PropfindD1],
            Workload::Large => &[Metric::BigPut, Metric::BigGet],
            Workload::Mix => &[Metric::Mix],
            // The plain-PUT baselines are left out: the other workload's samples stay valid.
            Workload::Tus => &[Metric::TusPut],
            Workload::Chunked => &[Metric::ChunkedPut],
            Workload::Sync => &[Metric::Sync, Metric::SyncPlain],
        }
    }
}

/// Median (sorts in place); NaN for no samples.
pub fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// Everything measured in one run.
#[derive(Default)]
pub struct Results {
    samples: BTreeMap<(Metric, Kind), Vec<f64>>,
    failures: BTreeMap<(Metric, Kind), String>,
    pub errors: Vec<String>,
}

impl Results {
    pub fn add(&mut self, metric: Metric, kind: Kind, value: f64) {
        self.samples.entry((metric, kind)).or_default().push(value);
    }

    /// Marks every metric of `workload` failed on `kind` and records the error.
    pub fn fail(&mut self, workload: Workload, kind: Kind, error: String) {
        for &m in workload.metrics() {
            self.failures
                .entry((m, kind))
                .or_insert_with(|| error.clone());
        }
        self.errors
            .push(format!("{kind} / {}: {error}", workload.name()));
    }

    pub fn failed(&self) -> bool {
        !self.errors.is_empty()
    }

    fn median_of(&self, metric: Metric, kind: Kind) -> Option<f64> {
        if self.failures.contains_key(&(metric, kind)) {
            return None;
        }
        let mut v = self.samples.get(&(metric, kind))?.clone();
        Some(median(&mut v))
    }

    /// Best reference median (nginx/Apache) for a metric, by its direction.
    fn best_reference(&self, metric: Metric, servers: &[Kind]) -> Option<(Kind, f64)> {
        let refs = servers.iter().filter(|k| **k != Kind::Hearth);
        let vals = refs.filter_map(|&k| self.median_of(metric, k).map(|v| (k, v)));
        if metric.higher_is_better() {
            vals.max_by(|a, b| a.1.total_cmp(&b.1))
        } else {
            vals.min_by(|a, b| a.1.total_cmp(&b.1))
        }
    }

    /// Ratio hearth / best reference (for hearth-only protocols: hearth / hearth's plain-PUT
    /// baseline) and the target verdict.
    fn assess(&self, metric: Metric, servers: &[Kind]) -> (Option<f64>, Option<bool>) {
        let Some(h) = self.median_of(metric, Kind::Hearth) else {
            return (None, None);
        };
        let ratio = match metric.baseline() {
            Some(b) => self.median_of(b, Kind::Hearth).map(|base| h / base),
            None if metric.hearth_only() => None,
            None => self.best_reference(metric, servers).map(|(_, b)| h / b),
        };
        let verdict = metric.target().and_then(|t| {
            t.check(h, |k| {
                if servers.contains(&k) {
                    self.median_of(metric, k)
                } else {
                    None
                }
            })
        });
        (ratio, verdict)
    }

    fn cell(&self, metric: Metric, kind: Kind) -> String {
        if metric.hearth_only() && kind != Kind::Hearth {
            return "n/a".to_owned();
        }
        if self.failures.contains_key(&(metric, kind)) {
            return "FAILED".to_owned();
        }
        match self.median_of(metric, kind) {
            Some(v) if metric.unit() == "ops/s" || metric.unit() == "MB/s" => format!("{v:.0}"),
            Some(v) if metric.unit() == "s" => format!("{v:.2}"),
            Some(v) => format!("{v:.1}"),
            None => "-".to_owned(),
        }
    }

    /// The human-readable table.
    pub fn table(&self, servers: &[Kind], scale: &crate::workloads::Scale) -> String {
        let mut out = String::new();
        let _ = write!(out, "{:<32} {:<6} {:<6}", "workload", "unit", "better");
        for k in servers {
            let _ = write!(out, " {:>9}", k.name());
        }
        let _ = writeln!(out, "  {:>11}  target", "hearth/best");
        for metric in Metric::ALL {
            let present = servers.iter().any(|&k| {
                self.samples.contains_key(&(metric, k)) || self.failures.contains_key(&(metric, k))
            });
            if !present {
                continue;
            }
            let better = if metric.higher_is_better() {
                "higher"
            } else {
                "lower"
            };
            let _ = write!(
                out,
                "{:<32} {:<6} {:<6}",
                metric.label(scale),
                metric.unit(),
                better
            );
            for &k in servers {
                let _ = write!(out, " {:>9}", self.cell(metric, k));
            }
            let (ratio, verdict) = self.assess(metric, servers);
            let suffix = if metric.baseline().is_some() {
                " PUT"
            } else {
                ""
            };
            let ratio = ratio.map_or("-".to_owned(), |r| format!("{r:.2}x{suffix}"));
            let target = metric
                .target()
                .map_or(String::new(), |t| t.text(metric.unit()));
            let verdict = match (metric.target(), verdict) {
                (None, _) => "",
                (Some(_), Some(true)) => "PASS",
                (Some(_), Some(false)) => "MISS",
                (Some(_), None) => "n/a",
            };
            let _ = writeln!(out, "  {ratio:>11}  {target:<18} {verdict}");
        }
        let mut out: String = out.lines().map(|l| format!("{}\n", l.trim_end())).collect();
        out.push_str(
            "\nhearth/best = hearth's median / the best reference median (nginx or Apache).\n\
             Rows marked `higher`: >1 means hearth is faster. Rows marked `lower`: >1 means hearth is worse.\n\
             RSS of nginx/Apache is summed over the master and worker processes.\n",
        );
        let hearth_only = Metric::ALL.iter().any(|&m| {
            m.hearth_only()
                && (self.samples.contains_key(&(m, Kind::Hearth))
                    || self.failures.contains_key(&(m, Kind::Hearth)))
        });
        if hearth_only {
            out.push_str(
                "TUS, chunking NG and owncloudcmd sync are hearth-only protocols (nginx/Apache: n/a).\n\
                 Their ratio `x PUT` is NOT against nginx/Apache: it is hearth's figure / hearth's own\n\
                 plain PUT of the same data (the `(baseline)`/`(base)` rows, measured in the same workload).\n",
            );
        }
        out
    }

    /// The JSON report.
    pub fn json(&self, servers: &[Kind], scale: &crate::workloads::Scale, config: Value) -> Value {
        let mut metrics = Vec::new();
        for metric in Metric::ALL {
            let mut values = serde_json::Map::new();
            for &k in servers {
                let samples = self.samples.get(&(metric, k)).cloned().unwrap_or_default();
                let failure = self.failures.get(&(metric, k));
                if samples.is_empty() && failure.is_none() {
                    continue;
                }
                values.insert(
                    k.name().to_owned(),
                    json!({ "median": self.median_of(metric, k), "samples": samples, "error": failure }),
                );
            }
            if values.is_empty() {
                continue;
            }
            let (ratio, verdict) = self.assess(metric, servers);
            let baseline = metric.baseline();
            metrics.push(json!({
                "key": metric.key(),
                "label": metric.label(scale),
                "unit": metric.unit(),
                "higher_is_better": metric.higher_is_better(),
                "values": values,
                "hearth_only": metric.hearth_only(),
                "hearth_over_best_reference": if baseline.is_none() { ratio } else { None },
                "best_reference": self.best_reference(metric, servers).map(|(k, _)| k.name()),
                "baseline": baseline.map(Metric::key),
                "hearth_over_baseline": if baseline.is_some() { ratio } else { None },
                "target": metric.target().map(|t| t.text(metric.unit())),
                "target_met": verdict,
            }));
        }
        json!({
            "ok": !self.failed(),
            "config": config,
            "servers": servers.iter().map(|k| k.name()).collect::<Vec<_>>(),
            "metrics": metrics,
            "errors": self.errors,
        })
    }
}
