//! The measured workloads: small-file PUT/GET, PROPFIND, large streaming transfers and a
//! MKCOL/PUT/MOVE/DELETE mix. Every response is checked; any failure aborts the workload.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use bytes::Bytes;
use tokio::sync::Mutex;

use crate::dav::Dav;
use crate::metrics::Metric;

/// How many operations each workload does.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    pub small_files: usize,
    pub small_size: usize,
    pub propfind_d0: usize,
    pub folder_entries: usize,
    pub d1_runs: usize,
    pub large_bytes: u64,
    pub mix_rounds: usize,
    pub concurrency: usize,
    /// Chunk size of the TUS and chunking-NG uploads (10 MB, as the desktop client).
    pub upload_chunk: usize,
    /// Files in the `owncloudcmd` sync tree, spread over `sync_folders` folders.
    pub sync_files: usize,
    pub sync_folders: usize,
    /// Concurrency of the plain MKCOL + PUT baseline of the sync (the desktop client's 6 jobs).
    pub sync_concurrency: usize,
}

impl Scale {
    /// The full run, or the ~10× smaller `--quick` one.
    pub fn new(quick: bool) -> Self {
        let full = Self {
            small_files: 2_000,
            small_size: 4096,
            propfind_d0: 2_000,
            folder_entries: 10_000,
            d1_runs: 7,
            large_bytes: 1 << 30,
            mix_rounds: 500,
            concurrency: 16,
            upload_chunk: 10_000_000,
            sync_files: 1_000,
            sync_folders: 10,
            sync_concurrency: 6,
        };
        if quick {
            Self {
                small_files: 200,
                propfind_d0: 200,
                folder_entries: 1_000,
                large_bytes: 64 << 20,
                mix_rounds: 50,
                sync_files: 100,
                ..full
            }
        } else {
            full
        }
    }
}

/// Runs `op(0..count)` on `concurrency` tasks; stops at the first error. Returns the wall time.
pub(crate) async fn run_concurrent<F, Fut>(
    count: usize,
    concurrency: usize,
    op: F,
) -> Result<Duration>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<()>> + Send + 'static,
{
    let op = Arc::new(op);
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let errors: Arc<Mutex<(usize, Option<anyhow::Error>)>> = Arc::new(Mutex::new((0, None)));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(concurrency);
    for _ in 0..concurrency.max(1) {
        let (op, next, failed, errors) = (op.clone(), next.clone(), failed.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            while !failed.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                if let Err(e) = op(i).await {
                    failed.store(true, Ordering::Relaxed);
                    let mut errs = errors.lock().await;
                    errs.0 += 1;
                    errs.1.get_or_insert(e);
                }
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    let elapsed = started.elapsed();
    let mut errs = errors.lock().await;
    if let Some(first) = errs.1.take() {
        bail!("{} request(s) failed; first: {first:#}", errs.0);
    }
    Ok(elapsed)
}

/// Operations per second.
fn rate(ops: usize, elapsed: Duration) -> f64 {
    ops as f64 / elapsed.as_secs_f64().max(1e-9)
}

/// A body of `len` bytes whose content depends on `seed`.
pub(crate) fn pattern(len: usize, seed: u8) -> Bytes {
    Bytes::from(
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect::<Vec<u8>>(),
    )
}

/// Opens `concurrency` keep-alive connections before a timed phase.
async fn warm_up(dav: &Dav, concurrency: usize) -> Result<()> {
    let dav = dav.clone();
    run_concurrent(concurrency * 2, concurrency, move |_| {
        let dav = dav.clone();
        async move { dav.options().await }
    })
    .await?;
    Ok(())
}

/// Workload 1: PUT `small_files` × 4 KiB at c1 and c16, then GET them back at c1 and c16.
pub async fn small_files(dav: &Dav, scale: &Scale, tag: &str) -> Result<Vec<(Metric, f64)>> {
    let dir = format!("{tag}-small/");
    dav.mkcol(&dir).await?;
    let body = pattern(scale.small_size, 7);
    let n = scale.small_files;
    let mut out = Vec::new();
    for (conc, metric) in [(1, Metric::PutC1), (scale.concurrency, Metric::PutC16)] {
        warm_up(dav, conc).await?;
        let (d, b, dir) = (dav.clone(), body.clone(), dir.clone());
        let t = run_concurrent(n, conc, move |i| {
            let (d, b, path) = (d.clone(), b.clone(), format!("{dir}c{conc}-{i}"));
            async move { d.put(&path, b).await }
        })
        .await?;
        out.push((metric, rate(n, t)));
    }
    for (conc, metric) in [(1, Metric::GetC1), (scale.concurrency, Metric::GetC16)] {
        warm_up(dav, conc).await?;
        let (d, b, dir) = (dav.clone(), body.clone(), dir.clone());
        let t = run_concurrent(n, conc, move |i| {
            let (d, b, path) = (d.clone(), b.clone(), format!("{dir}c{conc}-{i}"));
            async move { d.get_exact(&path, &b).await }
        })
        .await?;
        out.push((metric, rate(n, t)));
    }
    Ok(out)
}

/// Workload 2: PROPFIND Depth 0 on a file at c16 (ops/s), and Depth 1 on a big folder (median ms).
pub async fn propfind(dav: &Dav, scale: &Scale, tag: &str) -> Result<Vec<(Metric, f64)>> {
    let dir = format!("{tag}-pf/");
    dav.mkcol(&dir).await?;
    let file = format!("{dir}file.bin");
    dav.put(&file, pattern(scale.small_size, 3)).await?;
    let mut out = Vec::new();

    warm_up(dav, scale.concurrency).await?;
    let d = dav.clone();
    let t = run_concurrent(scale.propfind_d0, scale.concurrency, move |_| {
        let (d, file) = (d.clone(), file.clone());
        async move {
            let n = d.propfind(&file, "0").await?;
            if n != 1 {
                bail!("PROPFIND Depth 0 on {file}: {n} <response> elements, expected 1");
            }
            Ok(())
        }
    })
    .await?;
    out.push((Metric::PropfindD0, rate(scale.propfind_d0, t)));

    // Fill the folder quickly: c16 PUTs of tiny files (untimed).
    let big = format!("{tag}-folder/");
    dav.mkcol(&big).await?;
    let (d, b, dir) = (dav.clone(), pattern(64, 1), big.clone());
    run_concurrent(scale.folder_entries, scale.concurrency, move |i| {
        let (d, b, path) = (d.clone(), b.clone(), format!("{dir}entry-{i:05}.txt"));
        async move { d.put(&path, b).await }
    })
    .await?;
    let expected = scale.folder_entries + 1;
    let mut times = Vec::with_capacity(scale.d1_runs);
    // One untimed run first, then the timed ones.
    for run in 0..=scale.d1_runs {
        let started = Instant::now();
        let n = dav.propfind(&big, "1").await?;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        if n != expected {
            bail!("PROPFIND Depth 1 on {big}: {n} <response> elements, expected {expected}");
        }
        if run > 0 {
            times.push(ms);
        }
    }
    out.push((Metric::PropfindD1, crate::metrics::median(&mut times)));
    Ok(out)
}

/// Workload 3: one large streaming PUT and GET (MB/s); the file is deleted afterwards.
pub async fn large_file(dav: &Dav, scale: &Scale, tag: &str) -> Result<Vec<(Metric, f64)>> {
    let path = format!("{tag}-large.bin");
    let len = scale.large_bytes;
    let chunk = pattern(1 << 20, 11);
    let mb = len as f64 / 1e6;

    let started = Instant::now();
    dav.put_stream(&path, len, chunk).await?;
    let put = mb / started.elapsed().as_secs_f64().max(1e-9);

    let started = Instant::now();
    let got = dav.get_count(&path).await?;
    let get = mb / started.elapsed().as_secs_f64().max(1e-9);
    if got != len {
        bail!("GET {path}: got {got} bytes, expected {len}");
    }
    dav.delete(&path).await?;
    Ok(vec![(Metric::BigPut, put), (Metric::BigGet, get)])
}

/// Workload 4: rounds of MKCOL d/, PUT d/f, MOVE d/ → m/, DELETE m/ at c16 (ops/s, 4 ops a round).
pub async fn namespace_mix(dav: &Dav, scale: &Scale, tag: &str) -> Result<Vec<(Metric, f64)>> {
    let dir = format!("{tag}-mix/");
    dav.mkcol(&dir).await?;
    warm_up(dav, scale.concurrency).await?;
    let body = pattern(scale.small_size, 5);
    let (d, b) = (dav.clone(), body);
    let t = run_concurrent(scale.mix_rounds, scale.concurrency, move |i| {
        let (d, b) = (d.clone(), b.clone());
        let (from, to) = (format!("{dir}d{i}/"), format!("{dir}m{i}/"));
        async move {
            d.mkcol(&from).await?;
            d.put(&format!("{from}f.bin"), b).await?;
            d.move_to(&from, &to).await?;
            d.delete(&to).await
        }
    })
    .await?;
    Ok(vec![(Metric::Mix, rate(scale.mix_rounds * 4, t))])
}
