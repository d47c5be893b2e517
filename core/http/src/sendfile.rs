//! Zero-copy downloads on plain HTTP/1.x connections: file content goes from the page cache to
//! the socket with `sendfile(2)`, as nginx and Apache serve it, instead of a `read` into a buffer
//! and a `write` out of it (two copies of every byte through user space).
//!
//! hyper only writes bytes it is given, so such a download's body is made of *placeholder*
//! frames: slices of one static buffer, [`PLACEHOLDER`], whose content is never read. Each frame
//! queues the file range it stands for on its connection ([`Sendfile`]). When hyper writes a
//! placeholder slice, the connection's I/O ([`TcpIo`]) recognises it by its address and
//! sends that many bytes of the queued ranges instead, in order: hyper writes frames in the order
//! it got them, one response at a time on HTTP/1, so placeholder byte *k* is file byte *k*.
//!
//! This relies on hyper handing body frames to `poll_write_vectored` as they are (its queue write
//! strategy), not copying them into its own buffer: the listener sets `http1().writev(true)`, and
//! `tests/it` downloads through it byte for byte. A placeholder with no range queued is an I/O
//! error that ends the connection; it can never put placeholder bytes on the wire.
//! TLS and HTTP/2 connections have no [`Sendfile`] extension and use the ordinary read path.
//!
//! [`TcpIo`] is the I/O of every accepted connection, under TLS too (where no placeholder ever
//! reaches it): it also acknowledges every read at once (`TCP_QUICKACK`), see `poll_read`.
//!
//! While file bytes are being sent the socket is corked (`TCP_CORK`, nginx's `tcp_nopush`), so
//! the tail of each `sendfile` does not go out as a short segment; it is uncorked, which flushes,
//! whenever the queue runs empty. Measured on loopback: the first download on a fresh connection
//! ~15–40 % faster than uncorked.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// Bytes of file per placeholder frame, and the most one `sendfile` call is asked to send.
pub(crate) const CHUNK: usize = 1 << 20;

/// The placeholder frames' bytes. Never read: only the address range matters.
static PLACEHOLDER: [u8; CHUNK] = [0; CHUNK];

/// Whether `b` is (part of) a placeholder frame.
fn is_placeholder(b: &[u8]) -> bool {
    let start = PLACEHOLDER.as_ptr() as usize;
    let p = b.as_ptr() as usize;
    !b.is_empty() && p >= start && p < start + CHUNK
}

/// A file range a placeholder frame stands for.
struct Span {
    file: Arc<File>,
    at: u64,
    left: u64,
}

type Spans = Arc<Mutex<VecDeque<Span>>>;

/// A request extension on plain HTTP/1.x connections: queues file ranges for the connection's
/// [`TcpIo`] to send.
#[derive(Clone)]
pub struct Sendfile {
    spans: Spans,
}

impl Sendfile {
    /// The placeholder frame for `len` (≤ [`CHUNK`]) bytes of `file` at `at`, queued for sending.
    pub(crate) fn frame(&self, file: Arc<File>, at: u64, len: usize) -> bytes::Bytes {
        let len = len.min(CHUNK);
        let left = u64::try_from(len).unwrap_or(0);
        self.spans
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_back(Span { file, at, left });
        bytes::Bytes::from_static(PLACEHOLDER.get(..len).unwrap_or_default())
    }
}

/// An accepted TCP connection: placeholder writes become `sendfile` calls, reads are
/// acknowledged at once.
pub struct TcpIo {
    tcp: TcpStream,
    spans: Spans,
    /// `TCP_CORK` is set: file bytes are queued and not all sent yet.
    corked: bool,
}

impl TcpIo {
    /// Wraps `tcp`; on plain HTTP the [`Sendfile`] goes into each HTTP/1.x request's extensions.
    pub fn new(tcp: TcpStream) -> (Self, Sendfile) {
        let spans = Spans::default();
        let handle = Sendfile {
            spans: spans.clone(),
        };
        (
            Self {
                tcp,
                spans,
                corked: false,
            },
            handle,
        )
    }

    /// Sends up to `max` bytes of the first queued range.
    fn poll_send_file(&mut self, cx: &mut Context<'_>, max: usize) -> Poll<io::Result<usize>> {
        if !self.corked {
            let _ = rustix::net::sockopt::set_tcp_cork(&self.tcp, true);
            self.corked = true;
        }
        let mut spans = self.spans.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(span) = spans.front_mut() else {
            return Poll::Ready(Err(io::Error::other(
                "a placeholder frame was written with no file range queued",
            )));
        };
        let n = usize::try_from(span.left).unwrap_or(CHUNK).min(max);
        loop {
            ready!(self.tcp.poll_write_ready(cx))?;
            let mut at = span.at;
            let sent = self.tcp.try_io(Interest::WRITABLE, || {
                rustix::fs::sendfile(&self.tcp, &*span.file, Some(&mut at), n)
                    .map_err(io::Error::from)
            });
            match sent {
                Ok(0) => {
                    // The file shrank since the response head was sent: end the connection, so
                    // the client sees a short body rather than a complete wrong one.
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the file shrank during the download",
                    )));
                }
                Ok(k) => {
                    let k64 = u64::try_from(k).unwrap_or(u64::MAX).min(span.left);
                    span.at += k64;
                    span.left -= k64;
                    if span.left == 0 {
                        spans.pop_front();
                        if spans.is_empty() {
                            let _ = rustix::net::sockopt::set_tcp_cork(&self.tcp, false);
                            self.corked = false;
                        }
                    }
                    return Poll::Ready(Ok(k));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

/// Whether `read` is exactly one whole plain-HTTP/1 request: a head and exactly the body its
/// `Content-Length` announces (none without one). Nothing follows it, so nothing waits for its
/// ACK, which leaves with the response: about 3 % of a small GET's cost and 2 % of a small PUT's
/// saved. TLS records never look like this (their first byte is not a letter), so under TLS
/// every read is acknowledged; so is a read that ends inside a request, or a chunked one.
fn is_whole_request(read: &[u8]) -> bool {
    let Some(end) = read.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let (head, body) = read.split_at(end);
    let body_len = body.len() - 4;
    let method = head.split(|&b| b == b' ').next().unwrap_or_default();
    if method.is_empty() || !method.iter().all(u8::is_ascii_uppercase) {
        return false;
    }
    let mut announced = 0;
    for line in head.split(|&b| b == b'\n').skip(1) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return false;
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            let digits = value.get(1..).unwrap_or_default().trim_ascii();
            match std::str::from_utf8(digits)
                .ok()
                .and_then(|v| v.parse().ok())
            {
                Some(n) => announced = n,
                None => return false,
            }
        }
    }
    body_len == announced
}

impl AsyncRead for TcpIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let read = Pin::new(&mut this.tcp).poll_read(cx, buf);
        let fresh = buf.filled().get(before..).unwrap_or_default();
        if matches!(read, Poll::Ready(Ok(()))) && !fresh.is_empty() && !is_whole_request(fresh) {
            // CLIENT QUIRK (ownCloud/Nextcloud desktop, Qt): a request's head and body leave in
            // two writes, and Nagle holds the body until the head is acknowledged. Linux delays
            // that ACK up to 40 ms on a keep-alive connection (it expects to send it with the
            // response), so every upload on a reused connection waited 40 ms. Acknowledge what
            // was just read at once.
            let _ = rustix::net::sockopt::set_tcp_quickack(&this.tcp, true);
        }
        read
    }
}

impl AsyncWrite for TcpIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match bufs.iter().position(|b| is_placeholder(b)) {
            // Ordinary bytes (the response head, chunk framing, other bodies) up to the first
            // placeholder go out as they are.
            Some(i) if bufs.iter().take(i).any(|b| !b.is_empty()) => {
                Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs.get(..i).unwrap_or_default())
            }
            Some(i) => {
                let max = bufs.get(i).map_or(0, |b| b.len());
                this.poll_send_file(cx, max)
            }
            None => Pin::new(&mut this.tcp).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tcp).poll_shutdown(cx)
    }
}

/// Makes sure the page cache holds `len` bytes of `file` at `at`, so that the `sendfile` on the
/// async worker does not wait for the disk. Probing both ends with a non-blocking read is enough
/// for the usual sequential download; otherwise the range is pulled into the cache on the
/// blocking pool by a `sendfile` to `/dev/null`, which reads without copying.
pub(crate) async fn warm(file: &Arc<File>, at: u64, len: usize) -> io::Result<()> {
    let cached = |pos: u64| {
        let mut b = [0u8; 1];
        matches!(
            rustix::io::preadv2(
                file,
                &mut [io::IoSliceMut::new(&mut b)],
                pos,
                rustix::io::ReadWriteFlags::NOWAIT
            ),
            Ok(1)
        )
    };
    let last = at + u64::try_from(len.saturating_sub(1)).unwrap_or(0);
    if len == 0 || (cached(at) && cached(last)) {
        return Ok(());
    }
    let file = file.clone();
    let pulled = tokio::task::spawn_blocking(move || {
        let null = File::options().write(true).open("/dev/null")?;
        let (mut pos, end) = (at, at + u64::try_from(len).unwrap_or(0));
        while pos < end {
            let want = usize::try_from(end - pos).unwrap_or(CHUNK);
            if rustix::fs::sendfile(&null, &*file, Some(&mut pos), want)? == 0 {
                break;
            }
        }
        Ok::<(), io::Error>(())
    })
    .await;
    pulled.map_err(io::Error::other)?
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn pair() -> (TcpIo, Sendfile, TcpStream) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (server, _) = l.accept().await.unwrap();
        let (io, sf) = TcpIo::new(server);
        (io, sf, client)
    }

    #[tokio::test]
    async fn placeholders_become_the_queued_file_ranges_in_order() {
        let mut f = tempfile::tempfile().unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::io::Write::write_all(&mut f, &data).unwrap();
        let f = Arc::new(f);
        let (mut io, sf, mut client) = pair().await;
        let a = sf.frame(f.clone(), 10, CHUNK);
        let b = sf.frame(f.clone(), 2_000_000, 5);
        io.write_all(b"head|").await.unwrap();
        io.write_all(&a).await.unwrap();
        io.write_all(b"|mid|").await.unwrap();
        io.write_all(&b).await.unwrap();
        // Nothing held back once the queue is empty.
        assert!(!rustix::net::sockopt::tcp_cork(&io.tcp).unwrap());
        io.shutdown().await.unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        let mut want = b"head|".to_vec();
        want.extend_from_slice(&data[10..10 + CHUNK]);
        want.extend_from_slice(b"|mid|");
        want.extend_from_slice(&data[2_000_000..2_000_005]);
        assert!(got == want, "{} bytes", got.len());
        assert!(sf.spans.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_placeholder_with_nothing_queued_is_an_error_not_bytes() {
        let (mut io, _sf, _client) = pair().await;
        let stray = bytes::Bytes::from_static(&PLACEHOLDER[..100]);
        assert!(io.write_all(&stray).await.is_err());
        assert!(is_placeholder(&PLACEHOLDER[CHUNK - 1..]));
        assert!(!is_placeholder(&PLACEHOLDER[..0]));
        assert!(!is_placeholder(b"ordinary"));
    }

    #[tokio::test]
    async fn a_file_shorter_than_its_range_is_an_error() {
        let f = Arc::new(tempfile::tempfile().unwrap());
        f.set_len(100).unwrap();
        let (mut io, sf, _client) = pair().await;
        let frame = sf.frame(f, 50, 100);
        let e = io.write_all(&frame).await.unwrap_err();
        // 50 bytes go out, then the file ends.
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn warming_pulls_a_range_into_the_page_cache_and_stops_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cold");
        std::fs::write(&path, vec![7u8; 2 << 20]).unwrap();
        let f = File::open(&path).unwrap();
        f.sync_all().unwrap();
        // Drop the pages where the file system allows it (not on tmpfs), so the read is cold.
        let _ = rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed);
        let f = Arc::new(f);
        warm(&f, 0, 2 << 20).await.unwrap();
        let mut b = [0u8; 1];
        let probe = rustix::io::preadv2(
            &*f,
            &mut [io::IoSliceMut::new(&mut b)],
            (2 << 20) - 1,
            rustix::io::ReadWriteFlags::NOWAIT,
        );
        assert_eq!(probe.unwrap(), 1);
        // Past the end: returns at once.
        warm(&f, 3 << 20, CHUNK).await.unwrap();
    }

    #[tokio::test]
    async fn every_read_is_acknowledged_at_once() {
        let (mut io, _sf, mut client) = pair().await;
        // Delayed ACKs, as the kernel switches to on a request-response connection.
        rustix::net::sockopt::set_tcp_quickack(&io.tcp, false).unwrap();
        assert!(!rustix::net::sockopt::tcp_quickack(&io.tcp).unwrap());
        client.write_all(b"POST / HTTP/1.1\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        assert!(io.read(&mut buf).await.unwrap() > 0);
        assert!(rustix::net::sockopt::tcp_quickack(&io.tcp).unwrap());
    }

    #[tokio::test]
    async fn a_whole_get_head_leaves_its_ack_to_the_response() {
        let (mut io, _sf, mut client) = pair().await;
        rustix::net::sockopt::set_tcp_quickack(&io.tcp, false).unwrap();
        let sent = std::time::Instant::now();
        client
            .write_all(b"GET /f HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        assert!(io.read(&mut buf).await.unwrap() > 0);
        let quick = rustix::net::sockopt::tcp_quickack(&io.tcp).unwrap();
        // The kernel itself leaves delayed-ACK mode when its 40 ms delayed-ACK timer fires; only
        // a check made before that says anything.
        if sent.elapsed() < std::time::Duration::from_millis(30) {
            assert!(!quick, "a whole GET head was acknowledged at once");
        }
        // A head that announces a body (or is cut short) is acknowledged at once.
        client
            .write_all(b"PUT /f HTTP/1.1\r\nContent-Length: 3\r\n\r\n")
            .await
            .unwrap();
        assert!(io.read(&mut buf).await.unwrap() > 0);
        assert!(rustix::net::sockopt::tcp_quickack(&io.tcp).unwrap());
    }

    #[test]
    fn only_reads_of_one_whole_request_go_unacknowledged() {
        assert!(is_whole_request(b"GET / HTTP/1.1\r\n\r\n"));
        assert!(is_whole_request(b"HEAD /a HTTP/1.1\r\nA: b\r\n\r\n"));
        assert!(is_whole_request(
            b"PUT /f HTTP/1.1\r\ncontent-length: 3\r\nHost: x\r\n\r\nabc"
        ));
        assert!(is_whole_request(b"PROPFIND / HTTP/1.1\r\n\r\n"));
        // A head cut short, a body still to come or partly there, a second request behind it.
        assert!(!is_whole_request(b"GET / HTTP/1.1\r\nHost: x\r\n"));
        assert!(!is_whole_request(
            b"PUT /f HTTP/1.1\r\nContent-Length: 3\r\n\r\n"
        ));
        assert!(!is_whole_request(
            b"PUT /f HTTP/1.1\r\nContent-Length: 3\r\n\r\nab"
        ));
        assert!(!is_whole_request(
            b"GET / HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n"
        ));
        // Chunked bodies and unreadable lengths are always acknowledged.
        assert!(!is_whole_request(
            b"PUT /f HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        ));
        assert!(!is_whole_request(
            b"PUT /f HTTP/1.1\r\nContent-Length: x\r\n\r\n"
        ));
        // TLS records and other binary data.
        assert!(!is_whole_request(b"\x16\x03\x01"));
        assert!(!is_whole_request(b"\x16\x03\x01\r\n\r\n"));
    }
}
