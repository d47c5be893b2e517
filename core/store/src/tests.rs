use super::*;
use hearth_types::{NodeId, SpaceId, UserId};

fn node(space: SpaceId, parent: Option<NodeId>, name: &str) -> NodeRecord {
    NodeRecord {
        space,
        parent,
        name: name.into(),
        kind: NodeKind::File,
        size: 1,
        mtime_ns: 0,
        etag: "e".into(),
        checksums: None,
        disk_mtime_ns: 0,
        disk_size: 1,
    }
}

#[test]
fn children_are_scoped_to_their_parent() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db.redb")).unwrap();
    let space = SpaceId::fresh();
    let (a, b) = (NodeId::fresh(), NodeId::fresh());
    let (c1, c2, c3) = (NodeId::fresh(), NodeId::fresh(), NodeId::fresh());
    store
        .write(|tx| -> Result<(), StoreError> {
            tx.put_node(c1, &node(space, Some(a), "x"))?;
            tx.put_child(a, "x", c1)?;
            tx.put_child(a, "y", c2)?;
            tx.put_child(b, "x", c3)?;
            Ok(())
        })
        .unwrap();
    let kids = store.read(|tx| tx.children(a)).unwrap();
    assert_eq!(kids, vec![("x".to_string(), c1), ("y".to_string(), c2)]);
    assert_eq!(store.read(|tx| tx.node(c1)).unwrap().unwrap().name, "x");
}

#[test]
fn failed_write_keeps_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db.redb")).unwrap();
    let n = NodeId::fresh();
    let r: Result<(), StoreError> = store.write(|tx| {
        tx.put_child(n, "a", n)?;
        Err(StoreError::Db("boom".into()))
    });
    assert!(r.is_err());
    assert_eq!(store.read(|tx| tx.child(n, "a")).unwrap(), None);
}

#[test]
fn reopen_keeps_data_and_storage_id() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let user = UserRecord {
        id: UserId::fresh(),
        username: "alice".into(),
        display_name: "Alice".into(),
        email: None,
        password_hash: "x".into(),
        quota: None,
        created: 0,
        admin: false,
    };
    let sid = {
        let store = Store::open(&path).unwrap();
        store.write(|tx| tx.put_user(&user)).unwrap();
        store.storage_id().unwrap()
    };
    let store = Store::open(&path).unwrap();
    assert_eq!(store.storage_id().unwrap(), sid);
    assert_eq!(
        store.read(|tx| tx.user("alice")).unwrap(),
        Some(user.clone())
    );
    assert_eq!(
        store.read(|tx| tx.username_of(user.id)).unwrap().as_deref(),
        Some("alice")
    );
}

#[test]
fn second_open_is_refused_while_held() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.redb");
    let _held = Store::open(&path).unwrap();
    assert!(matches!(Store::open(&path), Err(StoreError::InUse(_))));
}

#[test]
fn concurrent_writers_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db.redb")).unwrap();
    let parent = NodeId::fresh();
    std::thread::scope(|s| {
        for i in 0..8 {
            let store = store.clone();
            s.spawn(move || {
                for j in 0..20 {
                    let name = format!("{i}-{j}");
                    store
                        .write(|tx| tx.put_child(parent, &name, NodeId::fresh()))
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(store.read(|tx| tx.children(parent)).unwrap().len(), 160);
}

/// A committer whose `sync` takes 1 ms and answers `outcome(n)` on its n-th call (from 0);
/// also returns the count of calls.
fn slow_sync_committer(
    store: &Store,
    outcome: impl Fn(usize) -> Result<(), StoreError> + Send + 'static,
) -> (
    Committer<StoreError>,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = calls.clone();
    let committer = Committer::start(store, "test-commit", move || {
        std::thread::sleep(std::time::Duration::from_millis(1));
        outcome(counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst))
    })
    .unwrap();
    (committer, calls)
}

/// Batched writes: many threads, few transactions; a failing change (in `prepare` or in its
/// transaction) fails alone and leaves nothing behind, its neighbours land.
#[test]
fn batched_writes_share_transactions_and_fail_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db.redb")).unwrap();
    let (committer, syncs) = slow_sync_committer(&store, |_| Ok(()));
    let space = SpaceId::fresh();
    let parent = NodeId::fresh();
    let results: Vec<(usize, Result<NodeId, StoreError>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|t| {
                let committer = &committer;
                s.spawn(move || {
                    (0..20)
                        .map(|i| {
                            let n = t * 20 + i;
                            let name = format!("f{n}");
                            let receipt = committer.submit(
                                move || {
                                    if n % 50 == 7 {
                                        return Err(StoreError::Db("prepare refused".into()));
                                    }
                                    Ok(NodeId::fresh())
                                },
                                move |tx, id| {
                                    tx.put_node(*id, &node(space, Some(parent), &name))?;
                                    tx.put_child(parent, &name, *id)?;
                                    if n % 50 == 13 {
                                        return Err(StoreError::Db("change refused".into()));
                                    }
                                    Ok(*id)
                                },
                            );
                            (n, receipt.wait())
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    let children = store.read(|tx| tx.children(parent)).unwrap();
    for (n, r) in &results {
        let listed = children.iter().find(|(name, _)| *name == format!("f{n}"));
        match (n % 50, r) {
            (7, Err(e)) => assert!(e.to_string().contains("prepare refused"), "{e}"),
            (13, Err(e)) => assert!(e.to_string().contains("change refused"), "{e}"),
            (_, Ok(id)) => assert_eq!(listed.map(|(_, i)| i), Some(id), "f{n} landed"),
            (_, Err(e)) => panic!("f{n} failed: {e}"),
        }
        if r.is_err() {
            assert!(listed.is_none(), "a failed change left f{n} behind");
        }
    }
    assert_eq!(children.len(), 320 - 2 * 7);
    let syncs = syncs.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        (1..320).contains(&syncs),
        "{syncs} syncs for 320 changes: nothing was batched"
    );
    // Dropping the committer finishes its queue and stops the thread: the store is free.
    drop(committer);
    drop(store);
    Store::open(&dir.path().join("db.redb")).unwrap();
}

/// A failing `sync` fails the changes whose content or names it should have made durable, with
/// its reason; every change reported done is in the store.
#[test]
fn a_failed_sync_fails_its_rounds_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db.redb")).unwrap();
    let (committer, _) = slow_sync_committer(&store, |n| match n {
        3 | 4 => Err(StoreError::Db("sync refused".into())),
        _ => Ok(()),
    });
    let parent = NodeId::fresh();
    let space = SpaceId::fresh();
    let receipts: Vec<_> = (0..200)
        .map(|n| {
            let name = format!("f{n}");
            let receipt = committer.submit(
                || Ok(NodeId::fresh()),
                move |tx, id| {
                    tx.put_node(*id, &node(space, Some(parent), &name))?;
                    tx.put_child(parent, &name, *id)?;
                    Ok(*id)
                },
            );
            std::thread::sleep(std::time::Duration::from_micros(50));
            receipt
        })
        .collect();
    let results: Vec<_> = receipts.into_iter().map(|r| r.wait()).collect();
    let children = store.read(|tx| tx.children(parent)).unwrap();
    let mut failed = 0;
    for (n, r) in results.iter().enumerate() {
        match r {
            Ok(id) => assert!(
                children
                    .iter()
                    .any(|(name, i)| *name == format!("f{n}") && i == id),
                "f{n} was reported done but is not stored"
            ),
            Err(e) => {
                assert!(e.to_string().contains("sync refused"), "{e}");
                failed += 1;
            }
        }
    }
    assert!(failed > 0 && failed < 200, "{failed} of 200 failed");
}

/// A pipeline thread that dies (here: `sync` panics) is seen by `running()`, and the changes
/// queued then get an error instead of waiting for ever.
#[test]
fn a_dead_pipeline_is_noticed_and_fails_its_changes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db.redb")).unwrap();
    let committer = Committer::<StoreError>::start(&store, "test-commit", || {
        #[allow(clippy::panic)]
        {
            panic!("sync blew up")
        }
    })
    .unwrap();
    assert!(committer.running());
    let receipt = committer.submit(|| Ok(()), |_tx, _: &()| Ok(()));
    let err = receipt.wait().unwrap_err();
    assert!(err.to_string().contains("stopped"), "{err}");
    for _ in 0..200 {
        if !committer.running() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    assert!(!committer.running());
    let late = committer.submit(|| Ok(()), |_tx, _: &()| Ok(()));
    assert!(late.wait().is_err());
}
