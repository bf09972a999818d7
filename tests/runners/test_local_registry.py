"""The test registry speaks the distribution API a Docker daemon uses to push and pull."""

from __future__ import annotations

import hashlib
import http.client
import json
from pathlib import Path

from llem_nb.testing.registry import LocalRegistry


def request(
    registry: LocalRegistry, method: str, path: str, body: bytes = b"", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    host, port = registry.address.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, dict(response.getheaders()), data


def test_push_a_blob_in_chunks_and_a_manifest_then_pull_them(tmp_path: Path) -> None:
    layer = b"layer bytes " * 1000
    digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    with LocalRegistry(tmp_path) as registry:
        assert request(registry, "GET", "/v2/")[0] == 200
        assert request(registry, "HEAD", f"/v2/llem-nb/pytorch/blobs/{digest}")[0] == 404
        code, headers, _ = request(registry, "POST", "/v2/llem-nb/pytorch/blobs/uploads/")
        assert code == 202
        location = headers["Location"]
        code, headers, _ = request(registry, "PATCH", location, layer[:5000])
        assert (code, headers["Range"]) == (202, "0-4999")
        bad = request(registry, "PUT", f"{location}?digest=sha256:{'0' * 64}", layer[5000:])
        assert bad[0] == 400
        code, headers, _ = request(registry, "POST", "/v2/llem-nb/pytorch/blobs/uploads/")
        location = headers["Location"]
        request(registry, "PATCH", location, layer[:5000])
        code, headers, _ = request(registry, "PUT", f"{location}?digest={digest}", layer[5000:])
        assert (code, headers["Docker-Content-Digest"]) == (201, digest)
        manifest = json.dumps({"schemaVersion": 2, "layers": [{"digest": digest}]}).encode()
        media = "application/vnd.docker.distribution.manifest.v2+json"
        code, headers, _ = request(
            registry, "PUT", "/v2/llem-nb/pytorch/manifests/0.1.0-cpu", manifest,
            **{"Content-Type": media},
        )  # fmt: skip
        manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        assert (code, headers["Docker-Content-Digest"]) == (201, manifest_digest)
        code, headers, body = request(registry, "GET", "/v2/llem-nb/pytorch/manifests/0.1.0-cpu")
        assert (code, headers["Content-Type"], body) == (200, media, manifest)
        assert request(registry, "GET", f"/v2/llem-nb/pytorch/blobs/{digest}")[2] == layer
        missing = request(registry, "GET", "/v2/llem-nb/vllm/manifests/0.1.0-cpu")
        assert missing[0] == 404
        assert json.loads(missing[2])["errors"][0]["code"] == "MANIFEST_UNKNOWN"
        assert registry.tags("llem-nb/pytorch") == ["0.1.0-cpu"]
