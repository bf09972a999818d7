"""``llem-nb images build|pull|list|save|load`` and the Docker rows of ``llem-nb env``."""

from __future__ import annotations

import argparse
from typing import Any

from llem_nb.runners.docker.build import build_image, load_image, save_image
from llem_nb.runners.docker.images import IMAGE_BACKENDS, cuda_reason, list_images
from llem_nb.runners.docker.probe import connect, probe
from llem_nb.runners.docker.pull import pull_image
from llem_nb.runners.docker.status import docker_status


def add(sub: Any) -> None:
    """Register ``images build|list|save|load`` on the CLI's subparsers."""
    images = sub.add_parser("images", help="build, list, save or load the Docker runner's images")
    isub = images.add_subparsers(dest="images_command", required=True)
    build = isub.add_parser(
        "build", help="build a backend's image from a wheelhouse, with the tag the runner uses"
    )
    build.add_argument("backend", choices=list(IMAGE_BACKENDS))
    flavour = build.add_mutually_exclusive_group()
    flavour.add_argument(
        "--cpu", dest="cpu", action="store_true", default=None,
        help="CPU-only image (the default on machines without CUDA)",
    )  # fmt: skip
    flavour.add_argument("--cuda", dest="cpu", action="store_false", help="CUDA image")
    build.add_argument("--tag", default=None, help="image tag (default: what resolution expects)")
    build.add_argument(
        "--base-image", default=None,
        help="a Debian/Ubuntu image with python3 (default python:X.Y-slim-bookworm)",
    )  # fmt: skip
    build.add_argument(
        "--network", default="none", help="build network (default none: the build is offline)"
    )
    build.add_argument(
        "--pip-arg", action="append", default=[], metavar="ARG",
        help="extra argument for the host's pip (index options), repeatable",
    )  # fmt: skip
    build.add_argument("--rebuild", action="store_true", help="build even when up to date")
    build.add_argument("--quiet", action="store_true", help="print only the tag when done")
    build.set_defaults(func=cmd_images_build)
    pull = isub.add_parser(
        "pull", help="pull a backend's image from $LLEM_IMAGE_REGISTRY (else build it here)"
    )
    pull.add_argument("backend", choices=list(IMAGE_BACKENDS))
    pull.add_argument("--cpu", action="store_true", default=None, help="the CPU-only image")
    pull.add_argument(
        "--no-build", dest="build", action="store_false", help="fail instead of building"
    )
    pull.add_argument(
        "--base-image", default=None, help="the base image of a build that replaces the pull"
    )
    pull.set_defaults(func=cmd_images_pull)
    listing = isub.add_parser("list", help="which backend images are present locally")
    listing.set_defaults(func=cmd_images_list)
    save = isub.add_parser("save", help="write an image to a file (no registry needed)")
    save.add_argument("image")
    save.add_argument("file", help="output .tar (or .tar.gz)")
    save.set_defaults(func=cmd_images_save)
    load = isub.add_parser("load", help="load an image file written by `images save`")
    load.add_argument("file")
    load.set_defaults(func=cmd_images_load)


def cmd_images_build(args: argparse.Namespace) -> int:
    from llem_nb.runners.docker.probe import connect, probe  # noqa: PLC0415 - keeps images light (pydantic)

    client = connect(timeout=600)
    try:
        built = build_image(
            args.backend,
            client=client,
            cpu=args.cpu,
            tag=args.tag,
            base_image=args.base_image,
            network=args.network,
            reuse=not args.rebuild,
            pip_args=args.pip_arg,
            on_line=(lambda _line: None) if args.quiet else _echo,
        )
    finally:
        client.close()
    probe(refresh=True)
    if args.quiet:
        print(built.tag)
    else:
        state = "up to date" if built.reused else "built"
        print(f"{state}: {built.tag} ({built.image_id[:19]})")
    return 0


def cmd_images_pull(args: argparse.Namespace) -> int:
    client = connect(timeout=600)
    try:
        tag = pull_image(
            args.backend,
            client=client,
            cpu=args.cpu,
            build=args.build,
            base_image=args.base_image,
            on_line=_echo,
        )
    finally:
        client.close()
    probe(refresh=True)
    print(tag)
    return 0


def _echo(line: str) -> None:
    print(line, flush=True)


def cmd_images_list(args: argparse.Namespace) -> int:
    from llem_nb.runners.docker.probe import connect  # noqa: PLC0415 - keeps images light (pydantic)

    client = connect()
    try:
        rows = list_images(client)
    finally:
        client.close()
    print(f"# {cuda_reason()}")
    for row in rows:
        if row["present"]:
            labels = row["labels"]
            what = f"torch {labels.get('torch', '?')}, CUDA {labels.get('cuda', '?')}"
            state = f"present  {row['id']}  {row['size_mb']} MB  ({what})"
        else:
            state = f"missing  ({row['build']})"
        print(f"{row['backend']:<8} {row['image']:<45} {state}")
    return 0


def cmd_images_save(args: argparse.Namespace) -> int:
    from llem_nb.runners.docker.probe import connect  # noqa: PLC0415 - keeps images light (pydantic)

    client = connect(timeout=600)
    try:
        out = save_image(client, args.image, args.file)
    finally:
        client.close()
    print(f"saved {args.image} to {out} ({out.stat().st_size / 1e6:.0f} MB)")
    return 0


def cmd_images_load(args: argparse.Namespace) -> int:
    from llem_nb.runners.docker.probe import connect  # noqa: PLC0415 - keeps images light (pydantic)

    client = connect(timeout=600)
    try:
        tags = load_image(client, args.file)
    finally:
        client.close()
    print("loaded " + (", ".join(tags) or "an untagged image"))
    return 0


def docker_env_rows() -> list[tuple[str, str, str]]:
    """(what, yes/no, why) for the Docker SDK, daemon, NVIDIA toolkit and backend images."""
    status = docker_status()
    rows = [("runner: docker sdk", "yes" if status.sdk else "no", status.sdk_fix)]
    if not status.sdk:
        return rows
    rows.append(("docker: daemon", "yes" if status.daemon else "no", status.reason))
    if not status.daemon:
        return rows
    rows.append(("docker: nvidia toolkit", "yes" if status.nvidia else "no", status.nvidia_how))
    for image in status.images:
        why = image.image if image.present else image.build
        what = f"docker: {image.backend} {'cpu' if image.cpu else 'cuda'} image"
        rows.append((what, "yes" if image.present else "no", why))
    return rows
