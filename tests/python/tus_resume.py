"""TUS resume with tuspy 1.1.0 (the real client), driven by tests/it/tus.rs.

Usage: tus_resume.py DAV_FOLDER_URL USER PASSWORD SOURCE_FILE TARGET_NAME

Uploads SOURCE_FILE in small chunks (each with Upload-Checksum) to the WebDAV folder URL, stops
halfway as if the client was interrupted, then resumes with a new uploader that finds the upload
URL in tuspy's URL storage and asks the server for the offset (HEAD). Finally downloads the file
over WebDAV and compares SHA-1. Prints "RESUMED at <offset>" and "OK"; exits non-zero on failure.
"""

import base64
import hashlib
import os
import sys
import tempfile

import requests
from tusclient import client
from tusclient.storage import filestorage

CHUNK = 256 * 1024


def main() -> int:
    endpoint, user, password, src, name = sys.argv[1:6]
    auth = base64.b64encode(f"{user}:{password}".encode()).decode()
    headers = {"Authorization": f"Basic {auth}"}
    size = os.path.getsize(src)
    half = (size // 2 // CHUNK) * CHUNK or CHUNK
    mtime = int(os.path.getmtime(src))

    with tempfile.TemporaryDirectory() as tmp:
        storage = filestorage.FileStorage(os.path.join(tmp, "urls.json"))
        tc = client.TusClient(endpoint, headers=headers)

        # First run: interrupted after half of the chunks.
        first = tc.uploader(
            src,
            chunk_size=CHUNK,
            metadata={"filename": name, "mtime": str(mtime)},
            store_url=True,
            url_storage=storage,
            upload_checksum=True,
        )
        first.upload(stop_at=half)
        url = first.url
        assert first.offset == half, (first.offset, half)
        del first

        head = requests.head(url, headers={"Tus-Resumable": "1.0.0"})
        assert head.status_code == 200, head.status_code
        assert int(head.headers["Upload-Offset"]) == half, head.headers
        assert int(head.headers["Upload-Length"]) == size, head.headers

        # Second run: a fresh uploader finds the URL in the storage and HEADs for the offset.
        second = tc.uploader(
            src,
            chunk_size=CHUNK,
            metadata={"filename": name, "mtime": str(mtime)},
            store_url=True,
            url_storage=storage,
            upload_checksum=True,
        )
        assert second.url == url, (second.url, url)
        print(f"RESUMED at {second.offset}", flush=True)
        assert second.offset == half, (second.offset, half)
        second.upload()
        assert second.offset == size, (second.offset, size)

    got = requests.get(endpoint.rstrip("/") + "/" + name, headers=headers)
    assert got.status_code == 200, got.status_code
    with open(src, "rb") as f:
        want = hashlib.sha1(f.read()).hexdigest()
    have = hashlib.sha1(got.content).hexdigest()
    assert have == want, (have, want)
    print("OK", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
