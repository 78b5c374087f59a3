"""Every service's health check, run as Docker runs it, against stand-ins that fail the way the real server does.

Each check runs with this machine's real tools (`pg_isready`, `redis-cli`, `curl`, `bash`, `node`, busybox `wget`)
in a private network namespace (tests/standins.py), so it reaches exactly the ports it names and nothing else:
a check pointed at the wrong port, one that ignores an HTTP error or one that accepts a half-started service fails
here. What stays unproven: MinIO's `mc ready local` (no `mc` here), and that the images ship these tools (their
Dockerfiles are cited at the specs).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml
from harness import TEST_SECRETS
from local_servers import require
from standins import PG_BIN, Http, Outcome, Postgres, Redis, Reply, Server, Tcp, available, health_argv, isolated

from sentinel_infra.settings import Settings
from sentinel_infra.specs.client import client
from sentinel_infra.specs.elasticsearch import elasticsearch
from sentinel_infra.specs.kibana import kibana
from sentinel_infra.specs.logstash import logstash
from sentinel_infra.specs.model import ServiceSpec
from sentinel_infra.specs.postgres import postgres
from sentinel_infra.specs.redis import redis
from sentinel_infra.specs.server import server

SETTINGS = Settings.model_validate({**TEST_SECRETS, "serverTag": "main", "clientTag": "main"})


@pytest.fixture(scope="module", autouse=True)
def namespaces() -> None:
    require(available() is None, f"network namespaces ({available()})")


def check(
    spec: ServiceSpec,
    servers: Sequence[Server],
    env: dict[str, str] | None = None,
    path: Sequence[str] = (),
    hosts: Sequence[str] = (),
) -> Outcome:
    """Run the spec's health check as Docker would, with the container's environment (or `env`)."""
    environment = {k: v if isinstance(v, str) else v.get_secret_value() for k, v in spec.env.items()}
    return isolated(
        health_argv(spec.healthcheck.test),
        servers,
        env={**environment, **(env or {})},
        path=path,
        hosts=hosts,
        timeout=spec.healthcheck.timeout + 10,
    )


# --- PostgreSQL and Redis: real servers -----------------------------------------------------------------------------


def test_postgres_is_ready_when_it_accepts_connections_on_5432() -> None:
    require(PG_BIN, "PostgreSQL (package postgresql)")
    spec = postgres(SETTINGS)
    assert check(spec, [Postgres(5432, "sentineliq")], path=[str(PG_BIN)]).returncode == 0
    assert check(spec, [Postgres(5433, "sentineliq")], path=[str(PG_BIN)]).returncode != 0
    assert check(spec, [], path=[str(PG_BIN)]).returncode != 0


def test_redis_is_ready_when_it_answers_pong_to_its_password() -> None:
    require(shutil.which("redis-server"), "Redis (package redis-server)")
    spec = redis(SETTINGS)
    password = TEST_SECRETS["redisPassword"]
    assert check(spec, [Redis(6379, password)]).returncode == 0
    assert check(spec, [Redis(6379, "another-password-x")]).returncode != 0, "NOAUTH is not ready"
    assert check(spec, [Redis(6380, password)]).returncode != 0


# --- Elastic ---------------------------------------------------------------------------------------------------------

ELASTIC = f"elastic:{TEST_SECRETS['elasticPassword']}"
WRITER = f"logstash_writer:{TEST_SECRETS['logstashPassword']}"


def es(credentials: str, health: Reply = Reply(200, '{"status":"yellow"}')) -> Http:  # noqa: B008 - immutable
    """Elasticsearch: 401 without the right user; `_cluster/health?wait_for_status=…` answers 408 on timeout."""
    return Http(
        9200,
        {"/_cluster/health": health, "/_security/_authenticate": Reply(200, '{"username":"x"}')},
        credentials=credentials,
    )


def test_elasticsearch_is_ready_when_the_superuser_sees_a_yellow_cluster() -> None:
    spec = elasticsearch(SETTINGS)
    ready = check(spec, [es(ELASTIC)])
    assert ready.returncode == 0, ready.stderr
    [request] = ready.requests
    assert request.path == "/_cluster/health?wait_for_status=yellow&timeout=5s"
    assert check(spec, [es("elastic:another-password")]).returncode != 0, "a 401 is not ready"
    red = Reply(408, '{"status":"red","timed_out":true}')
    assert check(spec, [es(ELASTIC, health=red)]).returncode != 0, "a red cluster is not ready"


def logstash_api(pipeline: Reply, port: int = 9600) -> Http:
    """Logstash 8.11's node API: `/_node/pipelines/main` is 404 until the pipeline's workers run."""
    return Http(port, {"/": Reply(200, '{"status":"green"}'), "/_node/pipelines/main": pipeline})


RUNNING = Reply(200, '{"pipelines":{"main":{"workers":1}}}')


def test_logstash_is_ready_when_its_pipeline_runs_and_takes_connections_and_writes_as_itself() -> None:
    spec = logstash(SETTINGS)
    assert spec.healthcheck.test[:2] == ("CMD", "bash"), "/dev/tcp is bash's; the image's sh is dash"
    ready = check(spec, [logstash_api(RUNNING), Tcp(5000), es(WRITER)], hosts=["elasticsearch"])
    assert ready.returncode == 0, ready.stderr
    assert [r.path for r in ready.requests] == ["/_node/pipelines/main", "/_security/_authenticate"]
    assert ready.requests[1].user == WRITER


@pytest.mark.parametrize(
    ("case", "servers"),
    [
        ("pipeline not running", [logstash_api(Reply(404, "{}")), Tcp(5000), es(WRITER)]),
        ("TCP input closed", [logstash_api(RUNNING), es(WRITER)]),
        ("TCP input on another port", [logstash_api(RUNNING), Tcp(5001), es(WRITER)]),
        ("API on another port", [logstash_api(RUNNING, port=9601), Tcp(5000), es(WRITER)]),
        ("writer's password refused", [logstash_api(RUNNING), Tcp(5000), es("logstash_writer:stale-password")]),
        ("Elasticsearch down", [logstash_api(RUNNING), Tcp(5000)]),
    ],
)
def test_logstash_is_not_ready(case: str, servers: list[Server]) -> None:
    assert check(logstash(SETTINGS), servers, hosts=["elasticsearch"]).returncode != 0, case


LEVELS = ["available", "degraded", "unavailable", "critical"]


def kibana_status(core: str, plugins: str, port: int = 5601) -> Http:
    """Kibana 8.11's `/api/status` (packages/core/status/core-status-server-internal/src/routes/status.ts, since
    elastic/kibana#159768): 503 when core's level is unavailable or worse, else 200; an anonymous request gets a
    redacted body carrying core's level unless `status.allowAnonymous` (read from our kibana.yml) shows it all."""
    config = yaml.safe_load(kibana(SETTINGS).files[0].content.get_secret_value())  # type: ignore[union-attr]
    overall = max(core, plugins, key=LEVELS.index)
    if config.get("status.allowAnonymous", False):
        body = {"status": {"overall": {"level": overall}, "core": {"level": core}}}
    else:
        body = {"status": {"overall": {"level": core}}}
    status = 503 if LEVELS.index(core) >= LEVELS.index("unavailable") else 200
    return Http(port, {"/api/status": Reply(status, json.dumps(body))})


def test_kibana_is_ready_when_core_is_available_even_with_a_degraded_plugin() -> None:
    spec = kibana(SETTINGS)
    ready = check(spec, [kibana_status("available", "degraded")])
    assert ready.returncode == 0, ready.stderr
    assert [(r.path, r.user) for r in ready.requests] == [("/api/status", None)], "anonymous, no secret"
    assert check(spec, [kibana_status("available", "available")]).returncode == 0
    assert check(spec, [kibana_status("degraded", "available")]).returncode == 0, "Kibana serves; ES is slow"


@pytest.mark.parametrize(
    ("case", "servers"),
    [
        ("core unavailable", [kibana_status("unavailable", "available")]),
        ("not ready yet", [Http(5601, {"/api/status": Reply(503, "Kibana server is not ready yet")})]),
        ("another port", [kibana_status("available", "available", port=5602)]),
        ("nothing listening", []),
    ],
)
def test_kibana_is_not_ready(case: str, servers: list[Server]) -> None:
    assert check(kibana(SETTINGS), servers).returncode != 0, case


# --- the application --------------------------------------------------------------------------------------------------


def test_the_server_is_ready_only_when_its_health_route_succeeds_on_3001() -> None:
    require(shutil.which("node"), "Node.js (package nodejs)")
    spec = server(SETTINGS)
    assert check(spec, [Http(3001, {"/health": Reply(200, "ok")})]).returncode == 0
    assert check(spec, [Http(3001, {"/health": Reply(500, "db down")})]).returncode != 0
    assert check(spec, [Http(3001, {"/health": Reply(503, "")})]).returncode != 0
    assert check(spec, [Http(3002, {"/health": Reply(200, "ok")})]).returncode != 0


def test_the_client_is_ready_only_when_nginx_serves_on_3000(tmp_path: Path) -> None:
    busybox = shutil.which("busybox")
    require(busybox, "busybox")
    (tmp_path / "wget").symlink_to(str(busybox))  # nginx:alpine's wget is busybox's
    spec = client(SETTINGS)
    path = [str(tmp_path)]
    assert check(spec, [Http(3000, {"/": Reply(200, "<html>")})], path=path).returncode == 0
    assert check(spec, [Http(3000, {"/": Reply(500, "")})], path=path).returncode != 0
    assert check(spec, [Http(3003, {"/": Reply(200, "<html>")})], path=path).returncode != 0


# --- how long a start may take ---------------------------------------------------------------------------------------

TYPICAL_SECONDS_TO_HEALTHY = {"elasticsearch": 20, "logstash": 40, "kibana": 60}
"""The upper end of Elastic's typical start-up times (../shared/reference/provider-notes.md, "Elastic 8.11")."""


@pytest.mark.parametrize(
    "spec", [elasticsearch(SETTINGS), logstash(SETTINGS), kibana(SETTINGS)], ids=lambda spec: spec.name
)
def test_elastic_start_periods_cover_twice_the_typical_start(spec: ServiceSpec) -> None:
    """Failures during the start period do not count; a shorter one marks a normal, slow start unhealthy (and on a
    shared two-core host Elastic starts at half speed), and `pulumi up` must wait longer than the start period."""
    typical = TYPICAL_SECONDS_TO_HEALTHY[spec.name]
    assert spec.healthcheck.start_period >= 2 * typical
    assert spec.ready_timeout >= spec.healthcheck.start_period + spec.healthcheck.retries * spec.healthcheck.interval
