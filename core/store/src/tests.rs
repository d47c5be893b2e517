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
    let space = SpaceId::random();
    let (a, b) = (NodeId::random(), NodeId::random());
    let (c1, c2, c3) = (NodeId::random(), NodeId::random(), NodeId::random());
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
    let n = NodeId::random();
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
        id: UserId::random(),
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
    let parent = NodeId::random();
    std::thread::scope(|s| {
        for i in 0..8 {
            let store = store.clone();
            s.spawn(move || {
                for j in 0..20 {
                    let name = format!("{i}-{j}");
                    store
                        .write(|tx| tx.put_child(parent, &name, NodeId::random()))
                        .unwrap();
                }
            });
        }
    });
    assert_eq!(store.read(|tx| tx.children(parent)).unwrap().len(), 160);
}

/// Batched writes: many threads, few transactions; a failing change (in `prepare` or in its
/// transaction) fails alone and leaves nothing behind, its neighbours land.
#[test]
fn batched_writes_share_transactions_and_fail_alone() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("db.redb")).unwrap();
    let batcher = Batcher::<StoreError>::default();
    let (prepares, commits) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let before_prepare = || -> Result<(), StoreError> {
        prepares.fetch_add(1, Ordering::SeqCst);
        std::thread::sleep(std::time::Duration::from_millis(1));
        Ok(())
    };
    let before_commit = || -> Result<(), StoreError> {
        commits.fetch_add(1, Ordering::SeqCst);
        Ok(())
    };
    let hooks = Hooks {
        before_prepare: &before_prepare,
        before_commit: &before_commit,
    };
    let space = SpaceId::random();
    let parent = NodeId::random();
    let results: Vec<(usize, Result<NodeId, StoreError>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .flat_map(|t| (0..20).map(move |i| (t, i)))
            .collect::<Vec<_>>()
            .chunks(20)
            .map(|chunk| {
                let chunk = chunk.to_vec();
                let (store, batcher, hooks) = (&store, &batcher, &hooks);
                s.spawn(move || {
                    chunk
                        .into_iter()
                        .map(|(t, i)| {
                            let n = t * 20 + i;
                            let name = format!("f{n}");
                            let r = store.write_batched(
                                batcher,
                                hooks,
                                move || {
                                    if n % 50 == 7 {
                                        return Err(StoreError::Db("prepare refused".into()));
                                    }
                                    Ok(NodeId::random())
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
                            (n, r)
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
            let id = store.read(|tx| tx.child(parent, &format!("f{n}"))).unwrap();
            assert!(id.is_none());
        }
    }
    assert_eq!(children.len(), 320 - 2 * 7);
    let commits = commits.load(Ordering::SeqCst);
    assert!(
        commits < 320,
        "{commits} commits for 320 changes: nothing was batched"
    );
    assert!(prepares.load(Ordering::SeqCst) >= 1);
}
