"""What a shared report must not carry: paths into this machine, and (on request) its name.

Every text of the report passes through ``Scrub`` on its way into the HTML: a path under
the home, cache or temporary directory becomes its last component (a model's local copy
``~/.cache/llem_nb/models/SmolLM2-135M-Instruct`` reads ``SmolLM2-135M-Instruct``), and
with ``anonymise_hosts`` the machine's host names read ``host-1``, ``host-2``, ….
"""

from __future__ import annotations

import os
import re
import socket
import tempfile
from collections.abc import Iterable
from pathlib import Path

_PATH_TAIL = r"[^\s'\"<>,;()|]*"


def private_dirs() -> list[str]:
    """The home, cache and temporary directories, longest first (resolved and as given)."""
    import platformdirs  # noqa: PLC0415 - kept off module level (TID253)

    dirs = {str(Path.home()), platformdirs.user_cache_dir(), tempfile.gettempdir()}
    dirs |= {os.path.realpath(d) for d in list(dirs)}
    return sorted((d.rstrip("/") for d in dirs if len(d) > 1), key=len, reverse=True)


def local_hostnames() -> list[str]:
    """This machine's names (short and fully qualified)."""
    names = {socket.gethostname(), socket.gethostname().split(".")[0]}
    return sorted((n for n in names if len(n) > 2), key=len, reverse=True)


def is_local_path(value: str) -> bool:
    return (
        value.startswith(("/", "./", "../", "~", "\\"))
        or re.match(r"^[A-Za-z]:\\", value) is not None
    )


def model_name(value: object) -> str:
    """A model as a reader knows it: the hub id as is, a local path as its last component."""
    text = str(value)
    if not is_local_path(text):
        return text
    return text.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1] or text


class Scrub:
    """Rewrites text so that it names no private directory (and no host, if asked)."""

    def __init__(self, anonymise_hosts: bool = False, hosts: Iterable[str] = ()) -> None:
        dirs = "|".join(re.escape(d) for d in private_dirs())
        self._paths = re.compile(rf"(?:~(?=/)|(?:{dirs})(?![\w.-]))(?:/{_PATH_TAIL})?")
        names = [*hosts, *local_hostnames()] if anonymise_hosts else []
        self._hosts = {n: f"host-{i + 1}" for i, n in enumerate(dict.fromkeys(names)) if n}
        self._host_re = (
            re.compile(
                "|".join(rf"\b{re.escape(n)}\b" for n in sorted(self._hosts, key=len, reverse=True))
            )
            if self._hosts
            else None
        )

    def _tail(self, match: re.Match[str]) -> str:
        path = match.group(0).rstrip("/.")
        tail = path.rsplit("/", 1)[-1]
        return tail if "/" in path and tail and path not in private_dirs() else "…"

    def __call__(self, text: str) -> str:
        if "/" in text or "~" in text:
            text = self._paths.sub(self._tail, text)
        if self._host_re is not None:
            text = self._host_re.sub(lambda m: self._hosts[m.group(0)], text)
        return text
