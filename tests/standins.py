"""Stand-ins that behave like the real servers, on the real ports, in a private network namespace.

A health check or a one-shot script hard-codes where it connects (`127.0.0.1:9600`, `elasticsearch:9200`): a
stand-in on another port, or one that answers 200 to anything, cannot tell a right line from a wrong one. Here the
command under test runs, with the real `curl`, `bash`, `node`, `wget`, `pg_isready` and `redis-cli` of this machine,
inside a new network namespace (`unshare --net --mount`: only a loopback, nobody else's servers, the test's own
`/etc/hosts` bind-mounted so that `elasticsearch` or `minio` resolve to it), against stand-ins that listen on the
real ports only and answer like the real server in what matters: 401 without the right credentials, the status
code of the real API (404 for a pipeline that is not running, 503 while a service is unavailable), connections
refused where nothing listens, and real PostgreSQL and Redis servers where a protocol matters.

`isolated(...)` runs one command this way and returns its exit code, output and the requests the stand-ins saw.
"""

from __future__ import annotations

import base64
import fcntl
import glob
import json
import os
import shutil
import socket
import socketserver
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

PG_BIN = next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)), None)


@dataclass(frozen=True)
class Reply:
    status: int
    body: str = ""


@dataclass(frozen=True)
class Http:
    """An HTTP server on `port`: `routes` maps a path (query included, or without it) to its reply; any other path
    is a 404. With `credentials` (`user:password`), a request without exactly that Basic authentication gets the
    401 that Elasticsearch, Kibana and MinIO send."""

    port: int
    routes: Mapping[str, Reply] = field(default_factory=dict)
    credentials: str | None = None


@dataclass(frozen=True)
class Tcp:
    """A TCP listener that accepts connections and reads whatever arrives (a TCP input such as Logstash's)."""

    port: int


@dataclass(frozen=True)
class Postgres:
    """A real PostgreSQL server (Debian's package) on `port`, with `user` as its superuser and database, its socket
    in `$PGHOST` of the command. Like the official image: the local socket is trusted, TCP needs `host_auth`."""

    port: int
    user: str
    host_auth: str = "trust"


@dataclass(frozen=True)
class Redis:
    """A real Redis server on `port` that requires `password`."""

    port: int
    password: str


Server = Http | Tcp | Postgres | Redis


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    user: str | None
    """The Basic credentials sent, `user:password`, or None."""
    body: str


@dataclass(frozen=True)
class Outcome:
    returncode: int
    stdout: str
    stderr: str
    requests: list[Request]


def available() -> str | None:
    """Why isolated runs cannot work here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("unshare") is None:
        return "unshare (util-linux) is missing"
    probe = subprocess.run(["unshare", "--net", "--mount", "true"], capture_output=True, check=False)
    return None if probe.returncode == 0 else f"unshare failed: {probe.stderr.decode()[-200:]}"


def isolated(
    command: Sequence[str],
    servers: Sequence[Server] = (),
    *,
    env: Mapping[str, str] | None = None,
    stdin: str = "",
    hosts: Sequence[str] = (),
    path: Sequence[str] = (),
    timeout: float = 120,
) -> Outcome:
    """Run `command` in a private network namespace with `servers` listening on 127.0.0.1 and each of `hosts`
    resolving to it; `path` goes first on PATH."""
    spec = {
        "command": list(command),
        "servers": [{"kind": type(s).__name__, **asdict(s)} for s in servers],
        "env": dict(env or {}),
        "stdin": stdin,
        "hosts": list(hosts),
        "path": list(path),
        "timeout": timeout,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(spec, handle)
    try:
        result = subprocess.run(
            ["unshare", "--net", "--mount", "--", sys.executable, __file__, handle.name],
            capture_output=True,
            text=True,
            check=False,
            timeout=timeout + 60,
        )
    finally:
        os.unlink(handle.name)
    if result.returncode != 0:
        raise RuntimeError(f"the isolated run failed: {result.stderr[-2000:]}")
    outcome = json.loads(result.stdout)
    return Outcome(
        returncode=outcome["returncode"],
        stdout=outcome["stdout"],
        stderr=outcome["stderr"],
        requests=[Request(**r) for r in outcome["requests"]],
    )


def health_argv(test: Sequence[str]) -> list[str]:
    """What Docker runs for a health check: `CMD-SHELL` through `/bin/sh -c`, `CMD` as it is."""
    kind, *rest = test
    if kind == "CMD-SHELL":
        return ["/bin/sh", "-c", rest[0]]
    assert kind == "CMD", kind
    return list(rest)


# --- inside the namespace ---------------------------------------------------------------------------------------


def _loopback_up() -> None:
    """`ip link set lo up`, without needing iproute2 (SIOCGIFFLAGS / SIOCSIFFLAGS)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(sock, 0x8913, request)[:18])[1]
        fcntl.ioctl(sock, 0x8914, struct.pack("16sH", b"lo", flags | 0x1))


def _own_hosts(names: Sequence[str], scratch: Path) -> None:
    hosts = scratch / "hosts"
    hosts.write_text("127.0.0.1 localhost " + " ".join(names) + "\n::1 localhost\n")
    subprocess.run(["mount", "--bind", str(hosts), "/etc/hosts"], check=True)


def _http(spec: Mapping[str, Any], seen: list[dict[str, Any]]) -> ThreadingHTTPServer:
    routes = {path: Reply(**reply) for path, reply in spec["routes"].items()}
    required = spec["credentials"]

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            header = self.headers.get("Authorization") or ""
            user = base64.b64decode(header[6:]).decode() if header.startswith("Basic ") else None
            seen.append({"method": self.command, "path": self.path, "user": user, "body": body})
            if required is not None and user != required:
                reply = Reply(401, '{"error":"security_exception","status":401}')
            else:
                reply = routes.get(self.path) or routes.get(self.path.split("?")[0]) or Reply(404, '{"status":404}')
            data = reply.body.encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_HEAD = _answer  # noqa: N815 - http.server's method names

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", spec["port"]), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _tcp(spec: Mapping[str, Any]) -> socketserver.ThreadingTCPServer:
    class Drain(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            while self.request.recv(4096):
                pass

    server = socketserver.ThreadingTCPServer(("127.0.0.1", spec["port"]), Drain)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _postgres(spec: Mapping[str, Any], scratch: Path) -> Path:
    assert PG_BIN is not None, "PostgreSQL is not installed"
    root = scratch / "pg"
    root.mkdir(mode=0o755)
    shutil.chown(root, "postgres")
    as_postgres = ["runuser", "-u", "postgres", "--"]
    data = root / "data"
    subprocess.run(
        [
            *as_postgres,
            f"{PG_BIN}/initdb",
            "-D",
            str(data),
            "-U",
            spec["user"],
            "--auth-local=trust",
            f"--auth-host={spec['host_auth']}",
        ],
        check=True,
        capture_output=True,
    )
    options = f"-c listen_addresses=127.0.0.1 -p {spec['port']} -k {root}"
    subprocess.run(
        [*as_postgres, f"{PG_BIN}/pg_ctl", "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start"],
        check=True,
        capture_output=True,
    )
    # Like POSTGRES_DB: a database named after the user.
    createdb = [f"{PG_BIN}/createdb", "-h", str(root), "-p", str(spec["port"]), "-U", spec["user"], spec["user"]]
    subprocess.run([*as_postgres, *createdb], check=True, capture_output=True)
    return data


def _redis(spec: Mapping[str, Any], scratch: Path) -> subprocess.Popen[bytes]:
    config = scratch / f"redis-{spec['port']}.conf"
    config.write_text(f'bind 127.0.0.1\nport {spec["port"]}\nsave ""\nrequirepass "{spec["password"]}"\n')
    process = subprocess.Popen(["redis-server", str(config)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", spec["port"]), timeout=1).close()
            break
        except OSError:
            time.sleep(0.1)
    return process


def _main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    scratch = Path(tempfile.mkdtemp(prefix="siq-standin-", dir="/tmp"))
    scratch.chmod(0o755)
    _loopback_up()
    _own_hosts(spec["hosts"], scratch)
    seen: list[dict[str, Any]] = []
    stoppers: list[Any] = []
    try:
        for server in spec["servers"]:
            kind = server["kind"]
            if kind == "Http":
                stoppers.append(_http(server, seen).shutdown)
            elif kind == "Tcp":
                stoppers.append(_tcp(server).shutdown)
            elif kind == "Postgres":
                data = _postgres(server, scratch)
                stoppers.append(
                    lambda data=data: subprocess.run(
                        [
                            "runuser",
                            "-u",
                            "postgres",
                            "--",
                            f"{PG_BIN}/pg_ctl",
                            "-D",
                            str(data),
                            "-m",
                            "immediate",
                            "stop",
                        ],
                        capture_output=True,
                        check=False,
                    )
                )
            elif kind == "Redis":
                stoppers.append(_redis(server, scratch).kill)
        env = {"PATH": ":".join([*spec["path"], "/usr/local/bin", "/usr/bin", "/bin"]), "HOME": str(scratch)}
        if any(server["kind"] == "Postgres" for server in spec["servers"]):
            env["PGHOST"] = str(scratch / "pg")
        env.update(spec["env"])
        try:
            result = subprocess.run(
                spec["command"],
                input=spec["stdin"],
                env=env,
                capture_output=True,
                text=True,
                check=False,
                timeout=spec["timeout"],
            )
            code, out, err = result.returncode, result.stdout, result.stderr
        except subprocess.TimeoutExpired:
            code, out, err = 124, "", "timed out"
    finally:
        for stop in stoppers:
            stop()
        shutil.rmtree(scratch, ignore_errors=True)
    json.dump({"returncode": code, "stdout": out, "stderr": err, "requests": seen}, sys.stdout)


if __name__ == "__main__":
    _main(sys.argv[1])
