//! GET and HEAD (RFC 9110 §9.3.1–2) with ranges (RFC 9110 §14) and conditional requests
//! (If-Match, If-None-Match, If-Modified-Since, If-Range), streaming from disk with constant memory.

use super::Target;
use crate::sendfile::{CHUNK, Sendfile};
use crate::util::header;
use crate::{ApiError, AppState};
use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use hearth_domain::{CoreError, Principal, ResourceInfo, StorageProvider};
use http::{HeaderMap, HeaderValue, StatusCode, header as h};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The client-visible modification time.
pub(crate) fn mtime(info: &ResourceInfo) -> SystemTime {
    let ns = info.mtime_ns;
    if ns >= 0 {
        UNIX_EPOCH + Duration::from_nanos(ns.unsigned_abs())
    } else {
        UNIX_EPOCH - Duration::from_nanos(ns.unsigned_abs())
    }
}

/// Headers every file response carries (ETag, OC-ETag, OC-FileId, Last-Modified, OC-Checksum).
pub(crate) fn file_headers(headers: &mut HeaderMap, info: &ResourceInfo) {
    let quoted = format!("\"{}\"", info.etag);
    if let Ok(v) = HeaderValue::from_str(&quoted) {
        headers.insert(h::ETAG, v.clone());
        headers.insert("oc-etag", v);
    }
    if let Ok(v) = HeaderValue::from_str(&info.id.to_string()) {
        headers.insert("oc-fileid", v);
    }
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(mtime(info))) {
        headers.insert(h::LAST_MODIFIED, v);
    }
    if let Some(sha1) = info.checksums.as_ref().and_then(|c| c.sha1.as_ref())
        && let Ok(v) = HeaderValue::from_str(&format!("SHA1:{sha1}"))
    {
        headers.insert("oc-checksum", v);
    }
}

/// Bytes read from disk per blocking hop when streaming a file.
const READ_CHUNK: u64 = 1 << 20;

/// Streams `len` bytes of `file` from offset `start` with one read-ahead: each blocking hop reads
/// `READ_CHUNK` bytes straight into the buffer that becomes the body frame (no intermediate copy),
/// and the next read is started before the current frame is handed to the connection, so the
/// page-cache copy overlaps with the socket write. Memory: two chunks per download. No blocking
/// thread is held while the client is slow (a read is only started when a frame is taken).
///
/// With `zero_copy` (plain HTTP/1.x connections), files larger than [`SMALL_FILE`] go out with
/// `sendfile` instead (see `crate::sendfile`).
pub(crate) fn file_body(
    file: std::fs::File,
    start: u64,
    len: u64,
    zero_copy: Option<&Sendfile>,
) -> Body {
    if let Some(sf) = zero_copy.filter(|_| len > SMALL_FILE) {
        return sendfile_body(sf.clone(), std::sync::Arc::new(file), start, len);
    }
    type Read = tokio::task::JoinHandle<std::io::Result<(std::fs::File, Vec<u8>)>>;
    fn read_next(mut file: std::fs::File, seek: Option<u64>, n: u64) -> Read {
        tokio::task::spawn_blocking(move || {
            use std::io::{Read as _, Seek as _};
            if let Some(pos) = seek {
                file.seek(std::io::SeekFrom::Start(pos))?;
            }
            let mut buf = Vec::with_capacity(usize::try_from(n).unwrap_or(0));
            // `File` reads into the spare capacity without zeroing it first.
            (&mut file).take(n).read_to_end(&mut buf)?;
            Ok((file, buf))
        })
    }
    let first =
        (len > 0).then(|| read_next(file, (start > 0).then_some(start), len.min(READ_CHUNK)));
    // State: the read in flight and the bytes left after it.
    let state = (first, len.saturating_sub(READ_CHUNK));
    let stream = futures_util::stream::unfold(state, |(pending, left)| async move {
        let (file, buf) = match pending?.await {
            Ok(Ok(v)) => v,
            Ok(Err(e)) => return Some((Err(e), (None, 0))),
            Err(e) => return Some((Err(std::io::Error::other(e)), (None, 0))),
        };
        if buf.is_empty() {
            // The file shrank since the stat: end here (the connection sees a short body).
            return Some((
                Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof)),
                (None, 0),
            ));
        }
        let next = if left > 0 {
            let n = left.min(READ_CHUNK);
            (Some(read_next(file, None, n)), left - n)
        } else {
            (None, 0)
        };
        Some((Ok(bytes::Bytes::from(buf)), next))
    });
    Body::from_stream(stream)
}

/// [`file_body`] as placeholder frames that the connection turns into `sendfile` calls.
fn sendfile_body(sf: Sendfile, file: std::sync::Arc<std::fs::File>, start: u64, len: u64) -> Body {
    let stream = futures_util::stream::unfold((file, start, len), move |(file, at, left)| {
        let sf = sf.clone();
        async move {
            if left == 0 {
                return None;
            }
            let n = usize::try_from(left).unwrap_or(CHUNK).min(CHUNK);
            if let Err(e) = crate::sendfile::warm(&file, at, n).await {
                return Some((Err(e), (file, at, 0)));
            }
            let frame = sf.frame(file.clone(), at, n);
            let k = frame.len() as u64;
            Some((Ok(frame), (file, at + k, left - k)))
        }
    });
    Body::from_stream(stream)
}

/// Files up to this size are read whole on the blocking hop that opens them.
const SMALL_FILE: u64 = 64 * 1024;

fn secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn etag_in(list: &str, etag: &str) -> bool {
    list.split(',')
        .map(|e| e.trim())
        .any(|e| e == "*" || e.trim_start_matches("W/").trim_matches('"') == etag)
}

/// A single byte range resolved against a length: `Ok(None)` = whole file, `Err(())` = 416.
fn parse_range(value: &str, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        // Multiple ranges: serving the whole entity is allowed (RFC 9110 §14.2).
        return Ok(None);
    }
    let (a, b) = spec.split_once('-').ok_or(())?;
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| ())?;
        if n == 0 {
            return Err(());
        }
        (len.saturating_sub(n), len.saturating_sub(1))
    } else {
        let s: u64 = a.parse().map_err(|_| ())?;
        if s >= len {
            return Err(());
        }
        let e: u64 = if b.is_empty() {
            len.saturating_sub(1)
        } else {
            b.parse().map_err(|_| ())?
        };
        if e < s {
            return Ok(None);
        }
        (s, e.min(len.saturating_sub(1)))
    };
    if len == 0 || start >= len {
        return Err(());
    }
    Ok(Some((start, end)))
}

pub(crate) async fn get(
    state: &AppState,
    who: &Principal,
    t: &Target,
    req: Request,
    with_body: bool,
) -> Result<Response, ApiError> {
    // The lookup (redb, whose pages are cached) and the open run on the async worker: handing
    // them to the blocking pool cost two thread switches per GET, about a quarter of the small-GET
    // throughput. A small file's content is taken here only if the page cache holds it; a read
    // that would wait for the disk goes to the blocking pool (as do large files, in `file_body`).
    let (info, file) = state
        .core
        .files
        .open_read(who, t.space, &t.path)
        .map_err(ApiError)?;
    let (file, small) = match file {
        Some(f) if with_body && info.size <= SMALL_FILE => {
            let len = usize::try_from(info.size).unwrap_or(0);
            match crate::util::read_if_cached(&f, len) {
                Some(b) => (Some(f), Some(b)),
                None => {
                    let (f, b) = crate::util::blocking(move || {
                        let mut f = f;
                        let mut buf = Vec::with_capacity(len);
                        std::io::Read::read_to_end(&mut f, &mut buf)
                            .map_err(|e| CoreError::io("reading a file", e))?;
                        Ok((f, bytes::Bytes::from(buf)))
                    })
                    .await?;
                    (Some(f), Some(b))
                }
            }
        }
        other => (other, None),
    };
    let Some(file) = file else {
        // Folders have no content; ownCloud answers a GET on a folder like this too.
        let mut r = (
            StatusCode::OK,
            [(h::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "",
        )
            .into_response();
        file_headers(r.headers_mut(), &info);
        r.headers_mut().remove("oc-checksum");
        return Ok(r);
    };
    let hdrs = req.headers();
    if let Some(im) = header(hdrs, "if-match")
        && !etag_in(im, &info.etag)
    {
        return Err(ApiError(CoreError::PreconditionFailed(
            "If-Match does not match".into(),
        )));
    }
    let not_modified = match header(hdrs, "if-none-match") {
        Some(inm) => etag_in(inm, &info.etag),
        None => header(hdrs, "if-modified-since")
            .and_then(|v| httpdate::parse_http_date(v).ok())
            .is_some_and(|since| secs(mtime(&info)) <= secs(since)),
    };
    if not_modified {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        file_headers(r.headers_mut(), &info);
        return Ok(r);
    }
    let range_ok = match header(hdrs, "if-range") {
        Some(v) => {
            etag_in(v, &info.etag) || httpdate::parse_http_date(v).is_ok_and(|d| mtime(&info) <= d)
        }
        None => true,
    };
    let range = match (header(hdrs, "range"), range_ok) {
        (Some(r), true) => match parse_range(r, info.size) {
            Ok(r) => r,
            Err(()) => {
                let mut resp = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", info.size)) {
                    resp.headers_mut().insert(h::CONTENT_RANGE, v);
                }
                return Ok(resp);
            }
        },
        _ => None,
    };

    let (start, len, status) = match range {
        Some((s, e)) => (s, e - s + 1, StatusCode::PARTIAL_CONTENT),
        None => (0, info.size, StatusCode::OK),
    };
    let body = if let Some(content) = small {
        // The file may have changed size since the stat: serve what was read, within the range.
        let end = usize::try_from(start + len)
            .unwrap_or(usize::MAX)
            .min(content.len());
        let begin = usize::try_from(start).unwrap_or(usize::MAX).min(end);
        Body::from(content.slice(begin..end))
    } else if with_body {
        file_body(file, start, len, req.extensions().get::<Sendfile>())
    } else {
        Body::empty()
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let hm = resp.headers_mut();
    file_headers(hm, &info);
    hm.insert(h::CONTENT_LENGTH, HeaderValue::from(len));
    hm.insert(h::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(v) = HeaderValue::from_str(&info.mime()) {
        hm.insert(h::CONTENT_TYPE, v);
    }
    if status == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!(
            "bytes {}-{}/{}",
            start,
            start + len.saturating_sub(1),
            info.size
        ))
    {
        hm.insert(h::CONTENT_RANGE, v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(parse_range("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=50-500", 100), Ok(Some((50, 99))));
        assert_eq!(parse_range("bytes=100-", 100), Err(()));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(parse_range("items=0-1", 100), Ok(None));
        assert_eq!(parse_range("bytes=x-y", 100), Err(()));
    }
}
