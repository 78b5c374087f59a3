"""Helpers for the tests that run real programs on this machine (servers from Debian's packages)."""

from __future__ import annotations

import os
import pwd
import socket
import tempfile
from pathlib import Path

import pytest


def require(present: object, what: str) -> None:
    if present:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is missing in CI: .ci/run must install it")
    pytest.skip(f"{what} is not installed (Debian: see .ci/run)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def shared_dir(owner: str | None = None) -> Path:
    """A temporary folder other users can reach (pytest's own are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="sentineliq-", dir="/tmp"))
    path.chmod(0o755)
    if owner is not None:
        entry = pwd.getpwnam(owner)
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path
