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
