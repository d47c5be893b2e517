//! Unit tests of the resumable-upload service over a real data directory.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::NewUpload;
use crate::files::ChecksumAlgo;
use crate::{Core, CoreError, Principal, StorageOptions, StorageProvider};
use hearth_types::{RelPath, SpaceId};
use std::time::Duration;

fn setup(expiry: Duration) -> (tempfile::TempDir, Core, Principal, SpaceId) {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = StorageOptions::new(dir.path().to_path_buf());
    opts.upload_expiry = expiry;
    let (core, who, space) = crate::testing::alice(opts);
    (dir, core, who, space)
}

fn new(path: &str, length: u64) -> NewUpload {
    NewUpload {
        lock_tokens: Vec::new(),
        path: RelPath::from_decoded(path).unwrap(),
        length,
        mtime_secs: None,
        checksum: None,
        if_match: None,
    }
}

fn send(core: &Core, token: &str, at: u64, data: &[u8]) -> Result<super::Progress, CoreError> {
    let mut s = core.uploads.open(token)?;
    s.begin(at, None)?;
    s.write(data)?;
    s.commit(true)
}

#[test]
fn chunks_resume_and_complete() {
    let (dir, core, who, space) = setup(Duration::from_secs(3600));
    let c = core.uploads.create(&who, space, new("a.bin", 10)).unwrap();
    assert!(c.done.is_none());
    let t = c.state.token;
    assert_eq!(send(&core, &t, 0, b"01234").unwrap().offset, 5);
    // Bytes written without a commit (a crash mid-request) are cut off by the next HEAD.
    {
        let mut s = core.uploads.open(&t).unwrap();
        s.begin(5, None).unwrap();
        s.write(b"xyz").unwrap();
    }
    assert_eq!(core.uploads.status(&t).unwrap().offset, 5);
    assert!(matches!(
        send(&core, &t, 4, b"x"),
        Err(CoreError::Conflict(_))
    ));
    assert!(matches!(
        send(&core, &t, 5, b"0123456"),
        Err(CoreError::BadRequest(_))
    ));
    let p = send(&core, &t, 5, b"56789").unwrap();
    let (info, created) = p.done.unwrap();
    assert!(created);
    assert_eq!(info.size, 10);
    assert_eq!(
        std::fs::read(dir.path().join("files/alice/a.bin")).unwrap(),
        b"0123456789"
    );
    assert!(matches!(
        core.uploads.status(&t),
        Err(CoreError::NotFound(_))
    ));
}

#[test]
fn tokens_are_checked() {
    let (_dir, core, who, space) = setup(Duration::from_secs(3600));
    let t = core
        .uploads
        .create(&who, space, new("a.bin", 3))
        .unwrap()
        .state
        .token;
    let mut forged = t.clone();
    forged.pop();
    forged.push(if t.ends_with('0') { '1' } else { '0' });
    for bad in [forged.as_str(), "x", "../../etc/passwd", ""] {
        assert!(matches!(
            core.uploads.status(bad),
            Err(CoreError::PermissionDenied(_))
        ));
    }
    core.uploads.terminate(&t).unwrap();
    assert!(matches!(
        core.uploads.status(&t),
        Err(CoreError::NotFound(_))
    ));
}

#[test]
fn expired_uploads_are_gone_and_purged() {
    let (dir, core, who, space) = setup(Duration::from_secs(0));
    let t = core
        .uploads
        .create(&who, space, new("a.bin", 3))
        .unwrap()
        .state
        .token;
    std::thread::sleep(Duration::from_millis(1100));
    assert!(matches!(
        core.uploads.status(&t),
        Err(CoreError::UploadExpired(_))
    ));
    assert_eq!(core.uploads.purge_expired().unwrap(), 1);
    assert_eq!(
        std::fs::read_dir(dir.path().join("system/uploads"))
            .unwrap()
            .count(),
        0
    );
}

#[test]
fn checksums_are_verified() {
    let (dir, core, who, space) = setup(Duration::from_secs(3600));
    let mut req = new("a.bin", 3);
    req.checksum = Some((ChecksumAlgo::Sha1, "00".repeat(20)));
    let t = core.uploads.create(&who, space, req).unwrap().state.token;
    assert!(matches!(
        send(&core, &t, 0, b"abc"),
        Err(CoreError::ChecksumMismatch(_))
    ));
    assert!(!dir.path().join("files/alice/a.bin").exists());

    let t = core
        .uploads
        .create(&who, space, new("b.bin", 6))
        .unwrap()
        .state
        .token;
    let mut s = core.uploads.open(&t).unwrap();
    s.begin(0, Some((ChecksumAlgo::Md5, vec![0; 16]))).unwrap();
    s.write(b"abc").unwrap();
    assert!(matches!(
        s.commit(true),
        Err(CoreError::ChecksumMismatch(_))
    ));
    assert_eq!(core.uploads.status(&t).unwrap().offset, 0);
    let mut s = core.uploads.open(&t).unwrap();
    s.begin(
        0,
        Some((ChecksumAlgo::Adler32, 0x024d_0127u32.to_be_bytes().to_vec())),
    )
    .unwrap();
    s.write(b"abc").unwrap();
    assert_eq!(s.commit(true).unwrap().offset, 3);
}

#[test]
fn empty_upload_is_placed_at_once_and_quota_is_checked() {
    let (dir, core, who, space) = setup(Duration::from_secs(3600));
    let c = core.uploads.create(&who, space, new("e.txt", 0)).unwrap();
    assert!(c.done.unwrap().1);
    assert_eq!(
        std::fs::read(dir.path().join("files/alice/e.txt")).unwrap(),
        b""
    );
    core.accounts.set_quota("alice", Some(10)).unwrap();
    assert!(matches!(
        core.uploads.create(&who, space, new("big", 11)),
        Err(CoreError::QuotaExceeded(_))
    ));
    assert!(matches!(
        core.uploads.create(&who, space, new("missing/x", 1)),
        Err(CoreError::PreconditionFailed(_))
    ));
}

#[test]
fn a_whole_upload_is_placed_without_resumable_state() {
    let (dir, core, who, space) = setup(Duration::from_secs(3600));
    let whole = |name: &str, data: &[u8], checksum: Option<(ChecksumAlgo, String)>| {
        let mut up = core.files.begin_upload().unwrap();
        up.write(data).unwrap();
        let mut req = new(name, data.len() as u64);
        req.checksum = checksum;
        core.uploads.create_whole(&who, space, req, up)
    };
    let c = whole("w.bin", b"hello", None).unwrap();
    let (info, created) = c.done.unwrap();
    assert!(created);
    assert_eq!((info.size, c.state.offset, c.state.length), (5, 5, 5));
    assert_eq!(
        std::fs::read(dir.path().join("files/alice/w.bin")).unwrap(),
        b"hello"
    );
    // Its token is valid but names no upload: as after any completed upload.
    assert!(matches!(
        core.uploads.status(&c.state.token),
        Err(CoreError::NotFound(_))
    ));
    let uploads = dir.path().join("system/uploads");
    assert_eq!(std::fs::read_dir(&uploads).unwrap().count(), 0);

    // A wrong checksum stores nothing; a body shorter than announced neither.
    let bad = whole(
        "c.bin",
        b"hello",
        Some((ChecksumAlgo::Sha1, "0".repeat(40))),
    );
    assert!(
        matches!(bad, Err(CoreError::ChecksumMismatch(_))),
        "{bad:?}"
    );
    let mut up = core.files.begin_upload().unwrap();
    up.write(b"hel").unwrap();
    let short = core.uploads.create_whole(&who, space, new("s.bin", 5), up);
    assert!(matches!(short, Err(CoreError::BadRequest(_))), "{short:?}");
    for name in ["c.bin", "s.bin"] {
        assert!(
            !dir.path().join("files/alice").join(name).exists(),
            "{name}"
        );
    }
}

/// The hashes are kept between requests, so the placed file's checksums cover every byte
/// received: across a chunk dropped for its checksum, a large upload's MD5 helper thread, and a
/// restart (which forgets them: the data is then hashed from disk at completion).
#[test]
fn checksums_follow_the_bytes_across_requests() {
    let (dir, core, who, space) = setup(Duration::from_secs(3600));
    let data: Vec<u8> = (0..(9 << 20) + 13)
        .map(|i: usize| (i as u8).wrapping_mul(13).wrapping_add((i >> 11) as u8))
        .collect();
    for restart in [false, true] {
        let name = format!("big-{restart}.bin");
        let t = core
            .uploads
            .create(&who, space, new(&name, data.len() as u64))
            .unwrap()
            .state
            .token;
        let (a, rest) = data.split_at(3 << 20);
        let (b, c) = rest.split_at(2 << 20);
        send(&core, &t, 0, a).unwrap();
        // A chunk whose checksum does not match is dropped, and its bytes leave the hashes.
        let mut s = core.uploads.open(&t).unwrap();
        s.begin(a.len() as u64, Some((ChecksumAlgo::Sha1, vec![0; 20])))
            .unwrap();
        s.write_bytes(bytes::Bytes::copy_from_slice(b)).unwrap();
        assert!(matches!(
            s.commit(true),
            Err(CoreError::ChecksumMismatch(_))
        ));
        {
            let mut kept = core.uploads.hashes.lock().unwrap();
            let lens: Vec<u64> = kept.values().map(|h| h.len()).collect();
            assert_eq!(
                lens,
                [a.len() as u64],
                "the hashes went back to before the chunk"
            );
            if restart {
                kept.clear();
            }
        }
        send(&core, &t, a.len() as u64, b).unwrap();
        let mut s = core.uploads.open(&t).unwrap();
        s.begin((a.len() + b.len()) as u64, None).unwrap();
        for piece in c.chunks(1 << 20) {
            s.write_bytes(bytes::Bytes::copy_from_slice(piece)).unwrap();
        }
        let (info, _) = s.commit(true).unwrap().done.unwrap();
        assert_eq!(
            info.checksums,
            Some(crate::testing::checksums_of(&data)),
            "restart: {restart}"
        );
        assert_eq!(
            std::fs::read(dir.path().join("files/alice").join(&name)).unwrap(),
            data
        );
    }
    assert!(core.uploads.hashes.lock().unwrap().is_empty());
}

/// Completion takes the hashes of the bytes as they were received instead of reading the whole
/// file back (shown by changing the data file behind the service's back: the checksums still
/// describe what the client sent, as for a PUT).
#[test]
fn completion_does_not_read_the_data_back() {
    let (dir, core, who, space) = setup(Duration::from_secs(3600));
    let t = core
        .uploads
        .create(&who, space, new("k.bin", 6))
        .unwrap()
        .state
        .token;
    send(&core, &t, 0, b"abc").unwrap();
    let data_file = std::fs::read_dir(dir.path().join("system/uploads"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&data_file).unwrap();
    bytes[0] = b'X';
    std::fs::write(&data_file, &bytes).unwrap();
    let (info, _) = send(&core, &t, 3, b"def").unwrap().done.unwrap();
    assert_eq!(
        info.checksums,
        Some(crate::testing::checksums_of(b"abcdef"))
    );
}
