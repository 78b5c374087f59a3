"""Total readers of resource properties: every function here accepts any value and never raises.

A validator sees the engine's view of a resource: JSON-like values (numbers arrive as floats), wrapped by
pulumi_policy in `Mapping`/`Sequence` proxies that raise `UnknownValueError` for values unknown during a preview
(that error is the framework's protocol and is left to propagate). Anything of an unexpected shape reads as
"absent" or "unparsable", and the rules treat unparsable as a violation, never as a pass.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

EMPTY: Mapping[str, Any] = {}


def items(value: Any) -> list[Any]:
    """The elements of a list (or list proxy); nothing for any other value."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        return []
    return list(value)


def fields(value: Any) -> Mapping[str, Any]:
    """A mapping (or mapping proxy); an empty one for any other value."""
    return value if isinstance(value, Mapping) else EMPTY


def present(value: Any) -> bool:
    """Whether a property is set to anything: not absent, not "" and not an empty list or object."""
    if isinstance(value, str | bytes):
        return value not in ("", b"")
    if isinstance(value, Mapping | Sequence):
        return len(value) > 0
    return value is not None


def text(value: Any) -> str:
    """A scalar as the provider would receive it as a string; "" for None and for a list or an object."""
    if value is None or (isinstance(value, Mapping | Sequence) and not isinstance(value, str)):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def integer(value: Any) -> int | None:
    """An integer (JSON numbers arrive as floats; digits in a string count); None when it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str) and re.fullmatch(r"[+-]?[0-9]{1,18}", value.strip()):
        return int(value)
    return None


GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")
GO_FALSE = ("0", "f", "F", "FALSE", "false", "False")
"""The strings Go's strconv.ParseBool accepts: Docker parses `no-new-privileges=…` and CLI booleans with it."""


def flag(value: Any) -> bool | None:
    """A boolean (also Go's spellings in a string, and 0/1); None when it is neither."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        if value in GO_TRUE:
            return True
        if value in GO_FALSE:
            return False
    return None


def is_set(value: Any) -> bool:
    """Whether a boolean property asks for the feature: anything but absent or a readable false counts as set."""
    return value is not None and flag(value) is not False


def positive_decimal(value: Any) -> bool:
    """`cpus`: a plain decimal above zero ("0" would be no limit at all; "1/2" or "1e3" are not for us)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return math.isfinite(value) and value > 0
    raw = text(value)
    return re.fullmatch(r"[0-9]{1,18}(\.[0-9]*)?|\.[0-9]+", raw) is not None and float(raw) > 0


UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def byte_size(value: Any) -> int | None:
    """A size as Docker's `units.RAMInBytes` reads it ("10m", "1g", "512"), None when unreadable; -1 stays -1."""
    if integer(value) is not None:
        return integer(value)
    match = re.fullmatch(r"([0-9]{1,18}(?:\.[0-9]{1,18})?) ?([kmgtp]?)i?b?", text(value).strip(), re.IGNORECASE)
    if match is None:
        return None
    return int(float(match.group(1)) * UNITS[match.group(2).lower()])


def ip_address(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """A literal IP address without a zone (`fe80::1%eth0` is published on every interface); else None."""
    raw = text(value)
    if "%" in raw:
        return None
    try:
        return ipaddress.ip_address(raw)
    except ValueError:
        return None


def is_loopback(value: Any) -> bool:
    """Only a literal loopback address counts: `localhost` or an unparsable string binds every interface."""
    address = ip_address(value)
    if address is None:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return False
    return address.is_loopback


VOLUME_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
"""What Docker takes as a volume name (moby's RestrictedNameChars): never a path."""


def normalise(path: str) -> str:
    """An absolute path as the kernel resolves it: `/./etc`, `//etc`, `/etc/`, `/srv/../etc` are all `/etc`."""
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


SENSITIVE_TREES = (
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/snap",
    "/sys",
    "/tmp",  # noqa: S108 - refusing it
    "/usr",
    "/var/cache",
    "/var/lib",
    "/var/log",
    "/var/mail",
    "/var/run",
    "/var/snap",
    "/var/spool",
    "/var/tmp",  # noqa: S108 - refusing it
)
"""Host directories a container never gets, nor anything below them: the system and its binaries and libraries,
kernel interfaces (/proc, /sys, /dev), runtime state and sockets (/run), every engine's and database's state
(/var/lib: docker, containerd, kubelet, the host's own PostgreSQL), caches, logs, root's home, cron and mail spools, and
the world-writable /tmp and /var/tmp (another user there can plant a symlink that Docker follows)."""

SENSITIVE_DIRECTORIES = ("/home", "/media", "/mnt", "/opt", "/srv", "/var", "/var/backups")
"""Directories that are sensitive as a whole (every user's home, every mount, Debian's /var/backups with its
copies of /etc/shadow) but whose dedicated sub-folders are fine, such as /var/backups/sentineliq-prod."""

CREDENTIAL_FOLDERS = (".aws", ".docker", ".gnupg", ".kube", ".ssh")
"""Folder names that hold credentials wherever they are (a user's ~/.ssh, ~/.docker/config.json)."""


def sensitive(path: str) -> str | None:
    """Why binding this host path exposes the host, or None. The path is normalised first."""
    clean = normalise(path)
    parts = clean.split("/")
    if any(part == "docker.sock" for part in parts):
        return "the Docker socket"
    if any(part.endswith(".sock") for part in parts):
        return "a host socket"
    if any(part in CREDENTIAL_FOLDERS for part in parts):
        return "a credentials folder"
    for tree in SENSITIVE_TREES:
        if clean == tree or clean.startswith(tree + "/"):
            return "a sensitive host directory"
    for directory in (*SENSITIVE_TREES, *SENSITIVE_DIRECTORIES):
        if clean in ("/", directory) or directory.startswith(clean + "/"):
            return "a sensitive host directory"
    return None
