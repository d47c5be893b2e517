//! Small HTTP helpers: request ids, running blocking service calls, header access.

use crate::ApiError;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use hearth_domain::CoreError;
use http::{HeaderMap, HeaderValue};
use tracing::Instrument;

/// Gives every request an id (`X-Request-Id`, taken from the client if it sent a sane one) and a
/// tracing span carrying it.
pub(crate) async fn request_id(req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .map(str::to_owned)
        // 128 random bits from the thread-local generator (no getrandom(2) per request).
        .unwrap_or_else(|| format!("{:032x}", rand::random::<u128>()));
    let span =
        tracing::info_span!("request", id = %id, method = %req.method(), path = %req.uri().path());
    async move {
        let mut resp = next.run(req).await;
        tracing::debug!(status = resp.status().as_u16(), "done");
        if let Ok(v) = HeaderValue::from_str(&id) {
            resp.headers_mut().insert("x-request-id", v);
        }
        resp
    }
    .instrument(span)
    .await
}

/// Runs a blocking service call on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CoreError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(ApiError),
        Err(e) => Err(ApiError(CoreError::Internal(format!(
            "worker task failed: {e}"
        )))),
    }
}

/// Reads the first `len` bytes of `file` only if the page cache already holds them
/// (`preadv2(RWF_NOWAIT)`, Linux 4.14+), so it is safe on an async worker. `None` when the read
/// would wait for the disk, comes up short, or fails: the caller then reads on the blocking pool.
pub(crate) fn read_if_cached(file: &std::fs::File, len: usize) -> Option<bytes::Bytes> {
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        let rest = buf.get_mut(done..)?;
        let n = rustix::io::preadv2(
            file,
            &mut [std::io::IoSliceMut::new(rest)],
            u64::try_from(done).ok()?,
            rustix::io::ReadWriteFlags::NOWAIT,
        )
        .ok()?;
        if n == 0 {
            return None;
        }
        done += n;
    }
    Some(buf.into())
}

/// A header as text, if present and valid.
pub(crate) fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// A bad header as a 400.
pub(crate) fn bad(msg: impl Into<String>) -> ApiError {
    ApiError(CoreError::BadRequest(msg.into()))
}

/// Streams a request body into `sink` with constant memory: the network side feeds a bounded
/// channel, a blocking thread calls `write` for each chunk. Returns the sink and whether the body
/// arrived whole (`false`: the client broke off; what arrived was written).
pub(crate) async fn pump<S: Send + 'static>(
    body: axum::body::Body,
    mut sink: S,
    mut write: impl FnMut(&mut S, bytes::Bytes) -> Result<(), CoreError> + Send + 'static,
) -> Result<(S, bool), ApiError> {
    use futures_util::StreamExt;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(16);
    let writer = tokio::task::spawn_blocking(move || -> Result<S, CoreError> {
        while let Some(chunk) = rx.blocking_recv() {
            write(&mut sink, chunk)?;
        }
        Ok(sink)
    });
    let mut stream = body.into_data_stream();
    let mut whole = true;
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(c) => {
                if tx.send(c).await.is_err() {
                    break;
                }
            }
            Err(_) => {
                whole = false;
                break;
            }
        }
    }
    drop(tx);
    let sink = writer
        .await
        .map_err(|e| ApiError(CoreError::Internal(format!("upload writer failed: {e}"))))?
        .map_err(ApiError)?;
    Ok((sink, whole))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::read_if_cached;

    #[test]
    fn read_if_cached_takes_cached_bytes_and_refuses_short_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let f = std::fs::File::open(&path).unwrap();
        // Just written: in the page cache.
        assert_eq!(read_if_cached(&f, data.len()).unwrap(), data);
        assert_eq!(read_if_cached(&f, 0).unwrap().len(), 0);
        // The file is shorter than expected (changed since its stat): the caller falls back.
        assert!(read_if_cached(&f, data.len() + 1).is_none());
    }
}
