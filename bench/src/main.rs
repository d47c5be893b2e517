//! `hearth-bench`: benchmarks `hearth server` against nginx (dav + dav_ext) and Apache mod_dav_fs on
//! loopback, interleaving the servers workload by workload, and prints medians, ratios and targets.

mod dav;
mod metrics;
mod procstat;
mod protocols;
mod reference;
mod servers;
mod workloads;

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;
use serde_json::json;

use metrics::{Metric, Results, Workload};
use servers::{Binaries, Kind, Running};
use workloads::Scale;

/// Benchmark hearth against nginx and Apache WebDAV on 127.0.0.1 (Basic auth everywhere).
#[derive(Parser, Debug)]
#[command(name = "hearth-bench", version)]
struct Args {
    /// Scale counts down ~10x (1 GiB transfers become 64 MiB).
    #[arg(long)]
    quick: bool,
    /// Repeat every workload N times (interleaved) and report medians.
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Servers to run, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "hearth,nginx,apache")]
    servers: Vec<String>,
    /// Run only these workloads (startup, small, propfind, large, mix, tus, chunked, sync), comma
    /// separated; tus, chunked and sync run on hearth only.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The hearth binary [default: next to this binary, else $CARGO_TARGET_DIR/release/hearth,
    /// else <workspace>/target/release/hearth].
    #[arg(long)]
    hearth: Option<PathBuf>,
    /// The nginx binary (Debian nginx-extras).
    #[arg(long, default_value = "/usr/sbin/nginx")]
    nginx: PathBuf,
    /// Directory holding ngx_http_dav_ext_module.so.
    #[arg(long, default_value = "/usr/share/nginx/modules")]
    nginx_modules: PathBuf,
    /// The Apache binary.
    #[arg(long, default_value = "/usr/sbin/apache2")]
    apache: PathBuf,
    /// Directory holding Apache's mod_*.so.
    #[arg(long, default_value = "/usr/lib/apache2/modules")]
    apache_modules: PathBuf,
    /// Where to create the temporary directory (configs, logs, data) [default: $TMPDIR or /tmp].
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Keep the temporary directory afterwards (its path is printed).
    #[arg(long)]
    keep: bool,
}

/// The hearth binary to use when `--hearth` is not given.
fn default_hearth() -> PathBuf {
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    {
        candidates.push(dir.join("hearth"));
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(PathBuf::from(dir).join("release/hearth"));
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."));
    let fallback = workspace.join("target/release/hearth");
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or(fallback)
}

/// A random password (hex of 12 bytes from /dev/urandom).
fn random_password() -> Result<String> {
    let mut bytes = [0u8; 12];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The 1/5/15-minute load averages from /proc/loadavg.
fn loadavg() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let outcome = tokio::select! {
        r = run(args) => r,
        s = interrupted() => Err(anyhow::anyhow!("interrupted by {s}; servers stopped")),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("hearth-bench: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves on SIGINT or SIGTERM (dropping the run stops the servers it started).
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        },
        _ => std::future::pending().await,
    }
}

/// The whole benchmark; Ok(false) when any request failed.
async fn run(args: Args) -> Result<bool> {
    let mut kinds = Vec::new();
    for s in &args.servers {
        let k = Kind::parse(s)?;
        if !kinds.contains(&k) {
            kinds.push(k);
        }
    }
    kinds.sort();
    if kinds.is_empty() {
        bail!("--servers is empty");
    }
    let workloads: Vec<Workload> = if args.only.is_empty() {
        Workload::ALL.to_vec()
    } else {
        let chosen = args
            .only
            .iter()
            .map(|s| Workload::parse(s))
            .collect::<Result<Vec<_>>>()?;
        Workload::ALL
            .into_iter()
            .filter(|w| chosen.contains(w))
            .collect()
    };
    let rounds = args.rounds.max(1);
    let scale = Scale::new(args.quick);
    let bins = Binaries {
        hearth: args.hearth.clone().unwrap_or_else(default_hearth),
        nginx: args.nginx.clone(),
        nginx_modules: args.nginx_modules.clone(),
        apache: args.apache.clone(),
        apache_modules: args.apache_modules.clone(),
    };
    let password = random_password()?;
    let parent = args.work_dir.clone().unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::Builder::new()
        .prefix("hearth-bench-")
        .tempdir_in(&parent)
        .with_context(|| format!("creating a temporary directory in {}", parent.display()))?;
    let root = tmp.path().to_path_buf();

    println!(
        "hearth-bench: servers {}; workloads {}; {} round(s){}; temp dir {}",
        kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(","),
        workloads
            .iter()
            .map(|w| w.name())
            .collect::<Vec<_>>()
            .join(","),
        rounds,
        if args.quick { " (quick)" } else { "" },
        root.display()
    );
    if kinds.contains(&Kind::Hearth) {
        println!("hearth binary: {}", bins.hearth.display());
    }
    let load_before = loadavg();
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    println!("load average {load_before} on {cpus} CPU(s)");
    if load_before
        .split_whitespace()
        .next()
        .and_then(|l| l.parse::<f64>().ok())
        .is_some_and(|l| l >= cpus as f64 * 0.5)
    {
        eprintln!(
            "warning: the machine is busy (load {load_before}); figures will be noisy, compare ratios rather than absolutes"
        );
    }

    let mut results = Results::default();
    let mut warnings = Vec::new();
    // Whether `kind` needs a long-lived instance: startup and sync use fresh ones, and the
    // hearth-only workloads need none from nginx or Apache.
    let needs_main = |kind: Kind| {
        workloads.iter().any(|&w| {
            !matches!(w, Workload::Startup | Workload::Sync)
                && (!w.hearth_only() || kind == Kind::Hearth)
        })
    };

    // Long-lived instances for the request workloads: one client (keep-alive pool) each.
    let mut main: Vec<Running> = Vec::new();
    let mut peaks: Vec<u64> = Vec::new();
    for &k in &kinds {
        if needs_main(k) {
            let r = servers::start(
                k,
                &bins,
                &root.join(format!("{}-main", k.name())),
                &password,
            )
            .await?;
            println!(
                "started {k:<6} pid {:<7} ready in {:.1} ms",
                r.pid(),
                r.startup.as_secs_f64() * 1e3
            );
            main.push(r);
            peaks.push(0);
        }
    }

    for round in 1..=rounds {
        for &w in &workloads {
            for &k in &kinds {
                let tag = format!("r{round}");
                let label = format!("[round {round}/{rounds}] {:<8} {:<6}", w.name(), k.name());
                if w.hearth_only() && k != Kind::Hearth {
                    println!("{label} n/a (hearth-only protocol)");
                    continue;
                }
                let outcome: Result<Vec<(Metric, f64)>> = match w {
                    Workload::Startup => {
                        let dir = root.join(format!("{}-startup-{round}", k.name()));
                        startup(k, &bins, &dir, &password, &mut warnings).await
                    }
                    Workload::Sync => {
                        let Some(cmd) = protocols::owncloudcmd() else {
                            let msg = "sync skipped: owncloudcmd is not on PATH (Debian package owncloud-client-cmd)";
                            println!("{label} {msg}");
                            if !warnings.iter().any(|w| w == msg) {
                                warnings.push(msg.to_owned());
                            }
                            continue;
                        };
                        let dir = root.join(format!("{}-sync-{round}", k.name()));
                        sync(&bins, &dir, &password, &scale, &cmd, &mut warnings).await
                    }
                    _ => {
                        let Some(server) = main.iter().find(|r| r.kind == k) else {
                            bail!("no running instance of {k}")
                        };
                        let sampler = procstat::PeakSampler::start(server.pid());
                        let dav = &server.dav;
                        let out = match w {
                            Workload::Small => workloads::small_files(dav, &scale, &tag).await,
                            Workload::Propfind => workloads::propfind(dav, &scale, &tag).await,
                            Workload::Large => workloads::large_file(dav, &scale, &tag).await,
                            Workload::Tus => protocols::tus(dav, &scale, &tag).await,
                            Workload::Chunked => protocols::chunked(dav, &scale, &tag).await,
                            _ => workloads::namespace_mix(dav, &scale, &tag).await,
                        };
                        let peak = sampler.finish().await;
                        let slot = main.iter().position(|r| r.kind == k);
                        if let Some(p) = slot.and_then(|i| peaks.get_mut(i)) {
                            *p = (*p).max(peak);
                        }
                        out
                    }
                };
                match outcome {
                    Ok(values) => {
                        let shown: Vec<String> = values
                            .iter()
                            .map(|(m, v)| format!("{} {v:.1} {}", m.key(), m.unit()))
                            .collect();
                        println!("{label} {}", shown.join(", "));
                        for (m, v) in values {
                            results.add(m, k, v);
                        }
                    }
                    Err(e) => {
                        eprintln!("{label} *** FAILED *** {e:#}");
                        results.fail(w, k, format!("{e:#}"));
                    }
                }
            }
        }
    }

    for (server, peak) in main.iter().zip(&peaks) {
        // Peak = the highest sampled sum of VmRSS, or the summed VmHWM if higher.
        let mem = server.mem();
        results.add(Metric::PeakRss, server.kind, mib((*peak).max(mem.hwm_kib)));
    }
    for server in main {
        if let Some(w) = server.stop().await {
            warnings.push(w);
        }
    }

    let load_after = loadavg();
    println!();
    print!("{}", results.table(&kinds, &scale));
    println!("load average before {load_before}, after {load_after}");
    for w in &warnings {
        eprintln!("warning: {w}");
    }
    if let Some(path) = &args.json {
        let config = json!({
            "quick": args.quick,
            "rounds": rounds,
            "workloads": workloads.iter().map(|w| w.name()).collect::<Vec<_>>(),
            "small_files": scale.small_files,
            "small_size": scale.small_size,
            "propfind_depth0_requests": scale.propfind_d0,
            "folder_entries": scale.folder_entries,
            "depth1_runs": scale.d1_runs,
            "large_bytes": scale.large_bytes,
            "mix_rounds": scale.mix_rounds,
            "concurrency": scale.concurrency,
            "upload_chunk_bytes": scale.upload_chunk,
            "sync_files": scale.sync_files,
            "sync_folders": scale.sync_folders,
            "sync_baseline_concurrency": scale.sync_concurrency,
            "hearth_binary": bins.hearth,
            "cpus": cpus,
            "load_average_before": load_before,
            "load_average_after": load_after,
            "warnings": warnings,
        });
        let text = serde_json::to_string_pretty(&results.json(&kinds, &scale, config))?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
        println!("results written to {}", path.display());
    }
    if args.keep {
        let kept = tmp.keep();
        println!("kept {}", kept.display());
    }
    if results.failed() {
        eprintln!(
            "\n*** RUN FAILED: {} workload(s) had request errors; their figures are not valid ***",
            results.errors.len()
        );
        for e in &results.errors {
            eprintln!("  - {e}");
        }
        return Ok(false);
    }
    Ok(true)
}

/// Start-up workload: a fresh instance, time to ready, then RSS one second later.
async fn startup(
    kind: Kind,
    bins: &Binaries,
    dir: &Path,
    password: &str,
    warnings: &mut Vec<String>,
) -> Result<Vec<(Metric, f64)>> {
    let server = servers::start(kind, bins, dir, password).await?;
    let ready_ms = server.startup.as_secs_f64() * 1e3;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = server.mem();
    if let Some(w) = server.stop().await {
        warnings.push(w);
    }
    let _ = std::fs::remove_dir_all(dir);
    Ok(vec![
        (Metric::Startup, ready_ms),
        (Metric::IdleRss, mib(idle.rss_kib)),
    ])
}

/// Sync workload: a fresh hearth instance (owncloudcmd syncs the whole account), the sync and its
/// plain-PUT baseline, then a clean stop.
async fn sync(
    bins: &Binaries,
    dir: &Path,
    password: &str,
    scale: &Scale,
    cmd: &Path,
    warnings: &mut Vec<String>,
) -> Result<Vec<(Metric, f64)>> {
    let server = servers::start(Kind::Hearth, bins, &dir.join("server"), password).await?;
    let client = dir.join("client");
    servers::mkdirs(&client)?;
    let out = protocols::sync(&server.dav, scale, password, cmd, &client).await;
    if let Some(w) = server.stop().await {
        warnings.push(w);
    }
    if out.is_ok() {
        let _ = std::fs::remove_dir_all(dir);
    }
    out
}
