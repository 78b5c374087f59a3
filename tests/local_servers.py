"""Helpers for the tests that run real programs on this machine (servers from Debian's packages)."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
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


def _docker_answers(host: str | None) -> bool:
    command = ["docker", *(["--host", host] if host else []), "info"]
    try:
        return subprocess.run(command, capture_output=True, check=False, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@contextmanager
def docker_engine() -> Iterator[str | None]:
    """A Docker engine for the test: a private dockerd when this machine can run one (root, Debian's docker.io),
    else the engine the environment already points at. Yields the host to pass to `docker --host`."""
    dockerd = shutil.which("dockerd")
    if dockerd is None or os.geteuid() != 0:
        if shutil.which("docker") and _docker_answers(None):
            yield None
            return
        require(None, "a Docker engine (Debian: docker.io, run as root)")
    root = Path(tempfile.mkdtemp(prefix="siq-dockerd-", dir="/tmp"))
    host = f"unix://{root}/docker.sock"
    log = (root / "dockerd.log").open("w")
    daemon = subprocess.Popen(
        [
            str(dockerd),
            "--data-root",
            str(root / "data"),
            "--exec-root",
            str(root / "x"),
            "--pidfile",
            str(root / "pid"),
            "--host",
            host,
            "--storage-driver",
            "vfs",
            "--iptables=false",
            "--ip6tables=false",
            "--bridge",
            "none",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while not _docker_answers(host):
            if daemon.poll() is not None or time.monotonic() > deadline:
                pytest.skip(f"dockerd cannot run here: {(root / 'dockerd.log').read_text()[-500:]}")
            time.sleep(0.5)
        yield host
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


BUSYBOX_APPLETS = (
    "sh",
    "sleep",
    "true",
    "false",
    "cat",
    "echo",
    "sha256sum",
    "tr",
    "printf",
    "test",
    "[",
    "mv",
    "wget",
)


def add_busybox(rootfs: Path) -> None:
    """busybox, the libraries it links and its usual applets in `rootfs`/bin (what an Alpine image has)."""
    busybox = shutil.which("busybox")
    require(busybox, "busybox")
    assert busybox is not None
    (rootfs / "bin").mkdir(exist_ok=True)
    shutil.copy(busybox, rootfs / "bin" / "busybox")
    libraries = subprocess.run(["ldd", busybox], capture_output=True, text=True, check=False).stdout
    for path in re.findall(r"(/\S+)", libraries):
        target = rootfs / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    for applet in BUSYBOX_APPLETS:
        (rootfs / "bin" / applet).symlink_to("busybox")


def tiny_image(host: str | None, tag: str = "sentineliq-test/busybox:1") -> str:
    """A local image with busybox and the libraries it links (no registry needed): `docker import` of a rootfs."""
    rootfs = Path(tempfile.mkdtemp(prefix="siq-rootfs-"))
    rootfs.chmod(0o755)  # the image's / (mkdtemp makes it 0700: no other user could reach /bin)
    try:
        (rootfs / "tmp").mkdir(mode=0o1777)
        add_busybox(rootfs)
        import_rootfs(host, rootfs, tag)
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
    return tag


def import_rootfs(host: str | None, rootfs: Path, tag: str) -> None:
    """Make a local image of a folder (`docker import`: no registry, no build)."""
    archive = subprocess.run(["tar", "-C", str(rootfs), "-c", "."], capture_output=True, check=True).stdout
    subprocess.run(
        ["docker", *(["--host", host] if host else []), "import", "-", tag],
        input=archive,
        check=True,
        capture_output=True,
    )


@contextmanager
def registry() -> Iterator[str]:
    """A real image registry (Debian's docker-registry, the distribution project's server) on loopback, with its
    storage in a temporary folder. Yields its address (`127.0.0.1:PORT`): engines pull from loopback over plain
    HTTP without configuration."""
    binary = shutil.which("docker-registry")
    require(binary, "docker-registry")
    assert binary is not None
    root = Path(tempfile.mkdtemp(prefix="siq-registry-", dir="/tmp"))
    port = free_port()
    address = f"127.0.0.1:{port}"
    (root / "config.yml").write_text(
        "version: 0.1\n"
        "log: {level: warn}\n"
        f"storage: {{filesystem: {{rootdirectory: {root / 'data'}}}, delete: {{enabled: true}}}}\n"
        f"http: {{addr: '{address}'}}\n"
    )
    log = (root / "registry.log").open("w")
    server = subprocess.Popen([binary, "serve", str(root / "config.yml")], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"docker-registry did not start: {(root / 'registry.log').read_text()[-500:]}")
                time.sleep(0.2)
        yield address
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        shutil.rmtree(root, ignore_errors=True)
