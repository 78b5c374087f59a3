"""A sandbox that runs a backup job's registered command as its container would, with real servers.

The job's command (entrypoint + command), its uploaded scripts and its environment come from the registration the
program makes. They run under busybox's sh and applets (the shell of the Alpine images) in a chroot that has the
job's paths (`/opt/sentineliq/backup`, `/backups`, `/tmp`), inside a network and mount namespace of their own
(`unshare`): there, real PostgreSQL and Redis servers listen only on the addresses that the names the stack gives
them (`postgres`, `redis`) resolve to, through an /etc/hosts bind-mounted in that namespace only (the machine's own
/etc/hosts is never written). A job that points anywhere else (`localhost`, another service's name) reaches
nothing. The job can run under a memory cgroup with the registered limit.

Also a script: `python backup_sandbox.py proxy LISTEN_HOST PORT TARGET_HOST PORT LIMIT` forwards TCP connections
and cuts each one after LIMIT bytes from the server (a connection lost mid-transfer).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from local_servers import require

POSTGRES_ADDRESS = "127.0.0.2"
REDIS_ADDRESS = "127.0.0.3"
PROXY_ADDRESS = "127.0.0.9"
"""Loopback addresses of the sandbox's own network namespace (all of 127/8 is local)."""
CGROUPS = Path("/sys/fs/cgroup")


def unavailable() -> str | None:
    """Why the sandbox cannot run here, or None. A missing tool fails in CI (.ci/run installs them)."""
    if os.geteuid() != 0:
        return "the job sandbox needs root (namespaces, chroot, tmpfs, cgroups)"
    for tool, package in (
        ("unshare", "util-linux"),
        ("nsenter", "util-linux"),
        ("ip", "iproute2"),
        ("busybox", "busybox"),
    ):
        require(shutil.which(tool), f"{tool} (package {package})")
    probe = subprocess.run(["unshare", "--net", "--mount", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        return f"namespaces are not available here: {probe.stderr.decode().strip()}"
    return None


@dataclass
class Job:
    """A backup job as registered: its argv, environment and uploaded files."""

    argv: list[str]
    env: dict[str, str]
    files: dict[str, tuple[str, bool]]
    """container path -> (content, executable)"""
    backups: str
    """the container path of the backup folder"""
    memory_mb: int
    health: tuple[str, ...] = ()
    """the health check's test, as registered (["CMD-SHELL", "…"])"""


@dataclass
class Sandbox:
    root: Path
    holder: subprocess.Popen[bytes]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def command(self, argv: Sequence[str]) -> list[str]:
        return ["nsenter", "-t", str(self.holder.pid), "-n", "-m", *argv]

    def run(self, *argv: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        kwargs.setdefault("timeout", 120)
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.run(self.command(argv), capture_output=True, text=True, check=True, **kwargs)  # type: ignore[call-overload, no-any-return]

    def start(self, *argv: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(self.command(argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.processes.append(process)
        return process

    def host_path(self, container_path: str) -> Path:
        return self.root / container_path.lstrip("/")

    def install(self, job: Job, stand_ins: Mapping[str, str]) -> None:
        for path, (content, executable) in job.files.items():
            target = self.host_path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content)
            target.chmod(0o755 if executable else 0o644)
        folder = self.root / "stand-ins"
        folder.mkdir(exist_ok=True)
        for name, content in stand_ins.items():
            (folder / name).write_text(content)
            (folder / name).chmod(0o755)

    def run_job(
        self, job: Job, path: str, timeout: float = 120, memory_mb: int | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The job's argv in the chroot, with exactly its registered environment plus the image's PATH; with
        memory_mb, in a memory cgroup of that limit."""
        env = ["env", "-i", f"PATH={path}", "HOME=/tmp", *(f"{k}={v}" for k, v in job.env.items())]
        argv = self.command(["chroot", str(self.root), *env, *job.argv])
        if memory_mb is None:
            return subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout)
        with memory_cgroup(memory_mb) as group:
            enter = lambda: (group / "cgroup.procs").write_text(str(os.getpid()))  # noqa: E731
            result = subprocess.run(
                argv, capture_output=True, text=True, check=False, timeout=timeout, preexec_fn=enter
            )
            return result


def memory_limit_file() -> tuple[Path, str] | None:
    """Where a memory cgroup can be made here, and its limit file: cgroup v1's memory controller (what Docker's
    --memory sets there) or cgroup v2's memory.max."""
    if (CGROUPS / "memory" / "memory.limit_in_bytes").exists():
        return CGROUPS / "memory", "memory.limit_in_bytes"
    controllers = CGROUPS / "cgroup.subtree_control"
    if controllers.exists() and "memory" in controllers.read_text().split():
        return CGROUPS, "memory.max"
    return None


@contextmanager
def memory_cgroup(memory_mb: int) -> Iterator[Path]:
    """A memory cgroup with this limit and no swap (the stack sets memorySwap equal to memory)."""
    found = memory_limit_file()
    if found is None:
        pytest.skip("no writable memory cgroup here (v1 memory controller or v2 memory.max)")
    parent, limit = found
    group = Path(tempfile.mkdtemp(prefix="siq-backup-", dir=parent))
    try:
        (group / limit).write_text(str(memory_mb * 1024 * 1024))
        if (group / "memory.swap.max").exists():
            (group / "memory.swap.max").write_text("0")
        yield group
    finally:
        for _ in range(100):
            try:
                group.rmdir()
                break
            except OSError:
                time.sleep(0.1)


@contextmanager
def sandbox(hosts: Mapping[str, str], disk_mb: int | None = None) -> Iterator[Sandbox]:
    """A chroot with the system's /usr and /dev, busybox as /bin, /etc/hosts mapping the names given, and
    optionally a tmpfs of disk_mb MiB as /backups (a disk that fills up)."""
    root = Path(tempfile.mkdtemp(prefix="siq-sandbox-", dir="/tmp"))
    root.chmod(0o755)
    mounted: list[Path] = []
    holder = None
    try:
        for name in ("usr", "etc", "dev"):
            (root / name).mkdir()
        for name in ("lib", "lib64", "sbin"):
            link = Path("/") / name
            if link.is_symlink():
                (root / name).symlink_to(os.readlink(link))
            elif link.exists():
                (root / name).mkdir()
        (root / "tmp").mkdir(mode=0o1777)
        (root / "tmp").chmod(0o1777)
        (root / "backups").mkdir()
        (root / "bin").mkdir()
        busybox = shutil.which("busybox")
        assert busybox is not None
        # Links to the system's busybox, which the chroot reaches through its /usr.
        subprocess.run([busybox, "--install", "-s", str(root / "bin")], check=True)
        hosts_file = root / "hosts"
        hosts_file.write_text(
            "127.0.0.1 localhost\n" + "".join(f"{address} {name}\n" for name, address in hosts.items())
        )
        if disk_mb is not None:
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={disk_mb}m,mode=0755", "tmpfs", str(root / "backups")],
                check=True,
            )
            mounted.append(root / "backups")
        holder = subprocess.Popen(
            ["unshare", "--net", "--mount", "--propagation", "private", "sleep", "100000"],
            stdout=subprocess.DEVNULL,
        )
        own = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 10
        while os.readlink(f"/proc/{holder.pid}/ns/net") == own:
            assert time.monotonic() < deadline, "unshare did not start"
            time.sleep(0.02)
        box = Sandbox(root, holder)
        box.run("ip", "link", "set", "lo", "up")
        for name in ("usr", "etc", "dev"):
            box.run("mount", "--rbind", f"/{name}", str(root / name))
        for name in ("lib", "lib64", "sbin"):
            if (root / name).is_dir() and not (root / name).is_symlink():
                box.run("mount", "--rbind", f"/{name}", str(root / name))
        # Only in the sandbox's mount namespace (private propagation): the machine's /etc/hosts is untouched.
        box.run("mount", "--bind", str(hosts_file), str(root / "etc" / "hosts"))
        try:
            yield box
        finally:
            for process in box.processes:
                process.terminate()
            for process in box.processes:
                with suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=20)
    finally:
        if holder is not None:
            holder.kill()
            holder.wait()
        for path in mounted:
            subprocess.run(["umount", str(path)], check=False)
        # The namespace's mounts died with it: only the sandbox's own files remain, and the empty mount points.
        for name in ("usr", "etc", "dev", "lib", "lib64", "sbin"):
            path = root / name
            if path.is_symlink():
                path.unlink()
            elif path.is_dir():
                path.rmdir()  # never recursive: a mount point that still held a mount would fail here
        shutil.rmtree(root)


# --- a TCP proxy that cuts each connection after LIMIT bytes from the server ---------------------------------------


def _pump(source: socket.socket, target: socket.socket, limit: int | None) -> None:
    sent = 0
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            if limit is not None and sent + len(data) >= limit:
                target.sendall(data[: limit - sent])
                break
            target.sendall(data)
            sent += len(data)
    except OSError:
        pass
    finally:
        for end in (source, target):
            with suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)
            end.close()


def proxy(listen_host: str, listen_port: int, target_host: str, target_port: int, limit: int) -> None:
    server = socket.create_server((listen_host, listen_port))
    while True:
        client, _ = server.accept()
        upstream = socket.create_connection((target_host, target_port))
        threading.Thread(target=_pump, args=(client, upstream, None), daemon=True).start()
        threading.Thread(target=_pump, args=(upstream, client, limit), daemon=True).start()


if __name__ == "__main__" and sys.argv[1] == "proxy":
    proxy(sys.argv[2], int(sys.argv[3]), sys.argv[4], int(sys.argv[5]), int(sys.argv[6]))
