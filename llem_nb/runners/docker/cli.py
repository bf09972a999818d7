"""``llem-nb images build|list`` and the Docker rows of ``llem-nb env``."""

from __future__ import annotations

import argparse
from typing import Any

from llem_nb.runners.docker.images import IMAGE_KINDS


def add_images_parser(sub: Any) -> None:
    """Register ``images build <backend>`` and ``images list`` on the CLI's subparsers."""
    images = sub.add_parser("images", help="build or list the Docker runner's images")
    isub = images.add_subparsers(dest="images_command", required=True)
    build = isub.add_parser("build", help="build a backend's image with the tag the runner uses")
    build.add_argument("backend", choices=[k for k in IMAGE_KINDS if k != "cpu"])
    build.add_argument(
        "--cpu",
        action="store_true",
        default=None,
        help="build images/cpu (the default on machines without CUDA)",
    )
    build.add_argument("--tag", default=None, help="image tag (default: what resolution expects)")
    build.add_argument("--base-image", default=None, help="override the Dockerfile's base image")
    build.add_argument("--network", default=None, help="build network, e.g. none (offline)")
    build.add_argument("--quiet", action="store_true", help="print only the tag when done")
    build.set_defaults(func=cmd_images_build)
    listing = isub.add_parser("list", help="which backend images are present locally")
    listing.set_defaults(func=cmd_images_list)


def cmd_images_build(args: argparse.Namespace) -> int:
    from llem_nb.runners.docker.images import build_image
    from llem_nb.runners.docker.probe import connect, probe

    client = connect()
    try:
        tag = build_image(
            args.backend,
            client=client,
            cpu=args.cpu,
            tag=args.tag,
            base_image=args.base_image,
            network=args.network,
            on_line=(lambda _line: None) if args.quiet else _echo,
        )
    finally:
        client.close()
    probe(refresh=True)
    print(tag if args.quiet else f"built {tag}")
    return 0


def _echo(line: str) -> None:
    print(line, flush=True)


def cmd_images_list(args: argparse.Namespace) -> int:
    from llem_nb.runners.docker.images import cuda_reason, list_images
    from llem_nb.runners.docker.probe import connect

    client = connect()
    try:
        rows = list_images(client)
    finally:
        client.close()
    print(f"# {cuda_reason()}")
    for row in rows:
        state = f"present  {row['id']}  {row['size_mb']} MB" if row["present"] else "missing"
        hint = "" if row["present"] else f"  (llem-nb images build {row['backend']})"
        print(f"{row['backend']:<8} {row['image']:<45} {state}{hint}")
    return 0


def docker_env_rows() -> list[tuple[str, str, str]]:
    """(what, yes/no, why) for the Docker SDK, daemon, NVIDIA toolkit and backend images."""
    from llem_nb.runners.docker.probe import SDK_FIX, probe

    found = probe()
    rows = [("runner: docker sdk", "yes" if found.sdk else "no", "" if found.sdk else SDK_FIX)]
    if not found.sdk:
        return rows
    rows.append(("docker: daemon", "yes" if found.reachable else "no", found.reason))
    if not found.reachable:
        return rows
    rows.append(("docker: nvidia toolkit", "yes" if found.nvidia else "no", found.nvidia_how))
    from llem_nb.runners.docker.images import list_images
    from llem_nb.runners.docker.probe import connect

    client = connect(timeout=5.0)
    try:
        for row in list_images(client):
            why = row["image"] if row["present"] else f"llem-nb images build {row['backend']}"
            present = "yes" if row["present"] else "no"
            rows.append((f"docker: image {row['backend']}", present, why))
    finally:
        client.close()
    return rows
