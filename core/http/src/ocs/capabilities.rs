//! OCS `cloud/capabilities`: what the server can do, as the ownCloud/Nextcloud clients read it
//! (field set after ocis services/frontend revaconfig defaults, trimmed to what Hearth has).

use crate::status::{EDITION, LEGACY_VERSION_STRING, PRODUCT, status_value};
use serde_json::{Value, json};

/// Largest TUS chunk the clients should send (and the chunk size the desktop client starts with).
const TUS_MAX_CHUNK_SIZE: u64 = 10_000_000;

/// The `data` of `cloud/capabilities`.
pub(crate) fn capabilities() -> Value {
    json!({
        "version": {
            "major": 10,
            "minor": 11,
            "micro": 0,
            "string": LEGACY_VERSION_STRING,
            "edition": EDITION,
            "product": PRODUCT,
            "productversion": env!("CARGO_PKG_VERSION"),
        },
        "capabilities": {
            "core": {
                "pollinterval": 60,
                "webdav-root": "remote.php/webdav",
                "status": status_value(),
                "support-url-signing": false,
            },
            // CLIENT QUIRK (desktop): the preferred type is upper-cased by the client anyway;
            // SHA1 is what both desktop clients send in OC-Checksum.
            "checksums": {
                "supportedTypes": ["SHA1", "MD5", "ADLER32"],
                "preferredUploadType": "SHA1",
            },
            "files": {
                "privateLinks": true,
                "bigfilechunking": true,
                "undelete": true,
                "versioning": true,
                "favorites": true,
                "blacklisted_files": [".htaccess"],
                // CLIENT QUIRK (owncloudcmd >= 2.7): uses TUS when `tus_support.version` is
                // valid and `creation-with-upload` is listed, in preference to chunking NG.
                "tus_support": {
                    "version": "1.0.0",
                    "resumable": "1.0.0",
                    "extension": "creation,creation-with-upload",
                    "max_chunk_size": TUS_MAX_CHUNK_SIZE,
                    "http_method_override": "",
                },
            },
            // Both upload protocols are advertised on purpose: `dav.chunking: "1.0"` (chunking
            // NG under /remote.php/dav/uploads/) for nextcloudcmd, which never uses TUS, and
            // `files.tus_support` above for owncloudcmd. No `reports`: search is not implemented.
            // CLIENT QUIRK (desktop): `dav.chunking >= 1.0` also makes the clients use
            // /remote.php/dav/files/<id>/ instead of the legacy /remote.php/webdav/.
            "dav": {
                "chunking": "1.0",
                "trashbin": "1.0",
            },
            // Placeholder until sharing exists: everything off, so clients hide sharing UI.
            "files_sharing": {
                "api_enabled": false,
                "public": { "enabled": false },
                "resharing": false,
                "group_sharing": false,
                "user": { "send_mail": false },
            },
            // SPACES CAPABILITY: the `spaces` block ({version, enabled, projects, share_jail,
            // max_quota}) goes here when spaces are implemented. CLIENT QUIRK (desktop 3.x):
            // a valid `spaces.version` switches the client into spaces mode, so it must stay
            // absent until the Graph drives endpoints exist.
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_upload_protocols_are_advertised() {
        let c = capabilities();
        let caps = &c["capabilities"];
        assert_eq!(caps["dav"]["chunking"], "1.0");
        assert!(caps["dav"].get("reports").is_none());
        assert_eq!(caps["files"]["bigfilechunking"], true);
        assert_eq!(caps["files"]["tus_support"]["version"], "1.0.0");
        assert!(
            caps["files"]["tus_support"]["extension"]
                .as_str()
                .unwrap()
                .split(',')
                .any(|e| e == "creation-with-upload")
        );
        assert!(caps.get("spaces").is_none());
        assert_eq!(caps["core"]["status"], status_value());
        assert_eq!(c["version"]["string"], "10.11.0");
    }
}
