//! Schema versioning: a new database is created at [`SCHEMA_VERSION`]; an older one is upgraded
//! step by step inside one write transaction; a newer one is refused.

use crate::schema::SCHEMA_VERSION;
use crate::{Store, StoreError};
use hearth_types::StorageId;

const VERSION_KEY: &str = "schema_version";
const STORAGE_ID_KEY: &str = "storage_id";

pub(crate) fn run(store: &Store) -> Result<(), StoreError> {
    store.write(|tx| {
        tx.create_tables()?;
        let found = match tx.meta(VERSION_KEY)? {
            None => {
                tx.put_meta(VERSION_KEY, &SCHEMA_VERSION.to_le_bytes())?;
                tx.put_meta(STORAGE_ID_KEY, StorageId::fresh().as_bytes())?;
                return Ok(());
            }
            Some(b) => {
                let arr: [u8; 4] = b.as_slice().try_into().map_err(|_| StoreError::Corrupt {
                    table: "meta",
                    detail: "schema_version is not 4 bytes".into(),
                })?;
                u32::from_le_bytes(arr)
            }
        };
        if found > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        // Future steps go here: `if found < 2 { v1_to_v2(tx)?; }` and so on.
        tx.put_meta(VERSION_KEY, &SCHEMA_VERSION.to_le_bytes())?;
        Ok(())
    })
}

impl Store {
    /// This installation's storage provider id (created with the database).
    pub fn storage_id(&self) -> Result<StorageId, StoreError> {
        self.read(|tx| {
            let b = tx
                .meta(STORAGE_ID_KEY)?
                .ok_or_else(|| StoreError::Corrupt {
                    table: "meta",
                    detail: "no storage_id".into(),
                })?;
            let arr: [u8; 16] = b.as_slice().try_into().map_err(|_| StoreError::Corrupt {
                table: "meta",
                detail: "storage_id is not 16 bytes".into(),
            })?;
            Ok(StorageId::from_bytes(arr))
        })
    }
}
