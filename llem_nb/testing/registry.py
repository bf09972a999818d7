"""A small OCI distribution-API registry on 127.0.0.1, for testing the pull path offline.

``LocalRegistry(root)`` serves, over plain HTTP on a free loopback port, what a Docker
daemon needs to push to and pull from it: ``/v2/`` ping, blob uploads (POST, PATCH, PUT
with ``?digest=``; monolithic and chunked), blob and manifest HEAD/GET, manifest PUT by
tag or digest. Blobs are files under ``root`` named by their digest and checked against
it; manifests are kept with their media type. No auth, no deletes, no catalogue. Docker
treats 127.0.0.0/8 as an insecure registry, so nothing needs configuring::

    with LocalRegistry(tmp_path) as registry:
        client.images.get(image).tag(f"{registry.address}/llem-nb/pytorch", "0.1.0-cpu")
        client.images.push(f"{registry.address}/llem-nb/pytorch", "0.1.0-cpu")
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

_ROUTE = re.compile(r"^/v2/(?P<name>.+?)/(?P<kind>blobs|manifests)/(?P<ref>[^/?]+)$")
_UPLOADS = re.compile(r"^/v2/(?P<name>.+?)/blobs/uploads/(?P<id>[^/?]*)$")
MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"


class LocalRegistry:
    """The registry's state (blobs on disk, manifests in memory) and its HTTP thread."""

    def __init__(self, root: str | Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.root = Path(root)
        (self.root / "uploads").mkdir(parents=True, exist_ok=True)
        (self.root / "blobs").mkdir(exist_ok=True)
        self.manifests: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        registry = self

        class Handler(_Handler):
            state = registry

        self.server = ThreadingHTTPServer((host, port), Handler)
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``: the registry part of an image reference."""
        host, port = self.server.server_address[:2]
        return f"{host!s}:{port}" if isinstance(host, str) else f"{host.decode()}:{port}"

    def start(self) -> LocalRegistry:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / digest.replace(":", "_")

    def tags(self, name: str) -> list[str]:
        """The tags pushed to repository ``name``."""
        return sorted(ref for n, ref in self.manifests if n == name and ":" not in ref)


class _Handler(BaseHTTPRequestHandler):
    state: LocalRegistry
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _send(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(code)
        for key, value in {
            "Docker-Distribution-API-Version": "registry/2.0",
            **(headers or {}),
        }.items():
            self.send_header(key, value)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, code: int, error: str) -> None:
        body = json.dumps({"errors": [{"code": error, "message": error.lower()}]}).encode()
        self._send(code, body, {"Content-Type": "application/json"})

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _path_and_query(self) -> tuple[str, dict[str, str]]:
        path, _, query = self.path.partition("?")
        pairs = (p.partition("=") for p in query.split("&") if p)
        return path, {k: v.replace("%3A", ":").replace("%3a", ":") for k, _, v in pairs}

    def do_GET(self) -> None:
        self.state.requests.append((self.command, self.path))
        path, _ = self._path_and_query()
        if path in ("/v2", "/v2/"):
            self._send(200, b"{}", {"Content-Type": "application/json"})
            return
        match = _ROUTE.match(path)
        if match is None:
            self._error(404, "NAME_UNKNOWN")
            return
        name, kind, ref = match["name"], match["kind"], match["ref"]
        if kind == "manifests":
            found = self.state.manifests.get((name, ref))
            if found is None:
                self._error(404, "MANIFEST_UNKNOWN")
                return
            body, media = found
            digest = "sha256:" + hashlib.sha256(body).hexdigest()
            self._send(200, body, {"Content-Type": media, "Docker-Content-Digest": digest})
            return
        blob = self.state.blob_path(ref)
        if not blob.exists():
            self._error(404, "BLOB_UNKNOWN")
            return
        size = blob.stat().st_size
        self.send_response(200)
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        self.send_header("Content-Length", str(size))
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Docker-Content-Digest", ref)
        self.end_headers()
        if self.command != "HEAD":
            with open(blob, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    self.wfile.write(chunk)

    do_HEAD = do_GET

    def do_POST(self) -> None:
        self.state.requests.append((self.command, self.path))
        path, query = self._path_and_query()
        match = _UPLOADS.match(path)
        if match is None:
            self._error(404, "NAME_UNKNOWN")
            return
        self._body()
        digest = query.get("mount")
        if digest and self.state.blob_path(digest).exists():
            self._send(201, headers={"Location": f"/v2/{match['name']}/blobs/{digest}"})
            return
        upload = uuid.uuid4().hex
        (self.state.root / "uploads" / upload).write_bytes(b"")
        self._send(202, headers=self._upload_headers(match["name"], upload, 0))

    @staticmethod
    def _upload_headers(name: str, upload: str, size: int) -> dict[str, str]:
        return {
            "Location": f"/v2/{name}/blobs/uploads/{upload}",
            "Docker-Upload-UUID": upload,
            "Range": f"0-{max(size - 1, 0)}",
        }

    def do_PATCH(self) -> None:
        self.state.requests.append((self.command, self.path))
        path, _ = self._path_and_query()
        match = _UPLOADS.match(path)
        part = self.state.root / "uploads" / (match["id"] if match else "")
        if match is None or not part.is_file():
            self._error(404, "BLOB_UPLOAD_UNKNOWN")
            return
        with open(part, "ab") as fh:
            self._copy_body(fh)
        self._send(
            202, headers=self._upload_headers(match["name"], match["id"], part.stat().st_size)
        )

    def _copy_body(self, fh: Any) -> None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return
                fh.write(self.rfile.read(size))
                self.rfile.readline()
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                return
            fh.write(chunk)
            remaining -= len(chunk)

    def do_PUT(self) -> None:
        self.state.requests.append((self.command, self.path))
        path, query = self._path_and_query()
        upload = _UPLOADS.match(path)
        if upload is not None:
            self._finish_upload(upload["name"], upload["id"], query.get("digest", ""))
            return
        match = _ROUTE.match(path)
        if match is None or match["kind"] != "manifests":
            self._error(404, "NAME_UNKNOWN")
            return
        body = self._body()
        media = self.headers.get("Content-Type") or MANIFEST_TYPE
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        with self.state._lock:
            self.state.manifests[(match["name"], match["ref"])] = (body, media)
            self.state.manifests[(match["name"], digest)] = (body, media)
        location = f"/v2/{match['name']}/manifests/{digest}"
        self._send(201, headers={"Location": location, "Docker-Content-Digest": digest})

    def _finish_upload(self, name: str, upload: str, digest: str) -> None:
        part = self.state.root / "uploads" / upload
        if not part.is_file():
            self._error(404, "BLOB_UPLOAD_UNKNOWN")
            return
        with open(part, "ab") as fh:
            self._copy_body(fh)
        sha = hashlib.sha256()
        with open(part, "rb") as fh:
            while chunk := fh.read(1 << 20):
                sha.update(chunk)
        if digest != "sha256:" + sha.hexdigest():
            part.unlink()
            self._error(400, "DIGEST_INVALID")
            return
        part.replace(self.state.blob_path(digest))
        location = f"/v2/{name}/blobs/{digest}"
        self._send(201, headers={"Location": location, "Docker-Content-Digest": digest})
