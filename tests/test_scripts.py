"""The shell the program writes, run for real with stand-ins for docker, curl, npx and redis-cli.

Mocks prove what is registered; these prove the command lines and health checks do what they claim once a
shell runs them: quoting survives `shlex.join` and `/bin/sh -c`, secrets arrive intact from stdin or the
environment, and failures fail.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from harness import TEST_SECRETS
from pydantic import SecretStr

from sentinel_infra import logging_stack
from sentinel_infra.data_services import database_url, redis_url
from sentinel_infra.data_services import redis as redis_spec
from sentinel_infra.migrations import SCRIPT as MIGRATE_SCRIPT
from sentinel_infra.naming import StackNames
from sentinel_infra.oneshot import InNewContainer, OneShotArgs, exec_command, run_command
from sentinel_infra.rotation import ELASTIC_SCRIPT, elastic_input
from sentinel_infra.settings import Settings

# Quotes, backslashes, spaces, $ and URL-special characters: whatever a generator may produce.
TRICKY = "p\"a\\ss w$rd'x@/:#?%"

FAKE_DOCKER = """#!/bin/sh
# Stand-in for docker: `run ... --entrypoint=SH IMAGE ARGS...` runs ARGS with SH here; `exec -i NAME CMD...` runs
# CMD here; `container inspect NAME` fails when $NO_CONTAINER is set. Stdin passes through.
echo "$@" >> "$WORK/docker-args"
case "$1" in
  container) [ -z "${NO_CONTAINER:-}" ]; exit ;;
  exec) shift 3; exec "$@" ;;
esac
while [ "$#" -gt 0 ]; do
  case "$1" in
    --entrypoint=*) entrypoint="${1#--entrypoint=}"; shift 2; break ;;
    *) shift ;;
  esac
done
exec "$entrypoint" "$@"
"""

FAKE_CURL = """#!/bin/sh
# Stand-in for curl: records its arguments, its -K config and its request body, one numbered call each.
n=$(ls "$WORK" | grep -c '^curl-args' || true)
printf '%s\\n' "$@" > "$WORK/curl-args-$n"
while [ "$#" -gt 0 ]; do
  case "$1" in
    -K) if [ "$2" = - ]; then cat > "$WORK/curl-config-$n"; else cp "$2" "$WORK/curl-config-$n"; fi; shift 2 ;;
    --data-binary) cat > "$WORK/curl-body-$n"; shift 2 ;;
    *) shift ;;
  esac
done
[ -f "$WORK/curl-response" ] && cat "$WORK/curl-response"
exit "${CURL_EXIT:-0}"
"""


@pytest.fixture
def work(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in {"docker": FAKE_DOCKER, "curl": FAKE_CURL}.items():
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    return tmp_path


def write_tool(work: Path, name: str, body: str) -> None:
    path = work / "bin" / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)


def run(
    work: Path, script: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {"PATH": f"{work / 'bin'}:/usr/bin:/bin", "WORK": str(work), **(env or {})}
    return subprocess.run(
        ["/bin/sh", "-c", script], input=stdin, env=environment, capture_output=True, text=True, check=False
    )


def settings(**secrets: str) -> Settings:
    values = {**TEST_SECRETS, **secrets, "serverTag": "main", "clientTag": "main"}
    return Settings.model_validate(values)


def one_shot_args(script: str) -> OneShotArgs:
    return OneShotArgs(
        settings=settings(),
        names=StackNames("sentineliq", "test"),
        where=InNewContainer("sha256:feed", "sentineliq-test-network"),
        script=script,
        stdin=SecretStr(""),
        depends_on=[],
    )


def command_line(script: str) -> str:
    return run_command(one_shot_args(script), "test", "sha256:feed", "sentineliq-test-network")


def test_the_migration_command_line_hands_the_url_from_stdin_to_prisma(work: Path) -> None:
    write_tool(work, "npx", 'printf "%s" "$DATABASE_URL" > "$WORK/url"; echo "$@" > "$WORK/npx-args"\n')
    url = "postgresql://sentineliq:" + TRICKY + "@postgres:5432/sentineliq"
    result = run(work, command_line(MIGRATE_SCRIPT), stdin=url + "\n")
    assert result.returncode == 0, result.stderr
    assert (work / "url").read_text() == url
    assert (work / "npx-args").read_text().strip() == "prisma migrate deploy --schema=../db/schema.prisma"
    docker_args = (work / "docker-args").read_text()
    assert "--network=sentineliq-test-network" in docker_args
    assert TRICKY not in docker_args


def test_a_failing_migration_fails_the_command(work: Path) -> None:
    write_tool(work, "npx", "echo 'P3009: migrate found failed migrations' >&2; exit 1\n")
    result = run(work, command_line(MIGRATE_SCRIPT), stdin="postgresql://u:p@postgres/db\n")
    assert result.returncode != 0


def test_the_elastic_setup_sends_each_identity(work: Path) -> None:
    config = settings(elasticPassword="elastic-" + TRICKY, kibanaSystemPassword="kibana-" + TRICKY)
    stdin = logging_stack.setup_input(config).get_secret_value()
    result = run(work, command_line(logging_stack.SETUP_SCRIPT), stdin=stdin)
    assert result.returncode == 0, result.stderr
    urls = [(work / f"curl-args-{n}").read_text().split("\n")[-2] for n in range(3)]
    assert urls == [
        "http://elasticsearch:9200/_security/user/kibana_system/_password",
        "http://elasticsearch:9200/_security/role/logstash_writer",
        "http://elasticsearch:9200/_security/user/logstash_writer",
    ]
    header = (work / "curl-config-0").read_text()
    token = header.split("Basic ")[1].split('"')[0]
    assert base64.b64decode(token).decode() == "elastic:elastic-" + TRICKY
    assert json.loads((work / "curl-body-0").read_text()) == {"password": "kibana-" + TRICKY}
    assert json.loads((work / "curl-body-1").read_text()) == logging_stack.WRITER_ROLE
    writer = json.loads((work / "curl-body-2").read_text())
    assert (writer["password"], writer["roles"]) == (TEST_SECRETS["logstashPassword"], ["logstash_writer"])
    for n in range(3):
        assert TRICKY not in (work / f"curl-args-{n}").read_text(), "a secret reached curl's arguments"


def test_the_elastic_setup_stops_at_the_first_failed_request(work: Path) -> None:
    stdin = logging_stack.setup_input(settings()).get_secret_value()
    result = run(work, command_line(logging_stack.SETUP_SCRIPT), stdin=stdin, env={"CURL_EXIT": "22"})
    assert result.returncode != 0
    assert not (work / "curl-args-1").exists()


def test_the_elasticsearch_health_check_authenticates_without_arguments(work: Path) -> None:
    result = run(work, logging_stack.ELASTICSEARCH_CHECK, env={"ELASTIC_PASSWORD": TRICKY})
    assert result.returncode == 0, result.stderr
    config = (work / "curl-config-0").read_text()
    token = config.split("Basic ")[1].split('"')[0]
    assert base64.b64decode(token).decode() == "elastic:" + TRICKY
    args = (work / "curl-args-0").read_text()
    assert "_cluster/health?wait_for_status=yellow" in args
    assert TRICKY not in args
    assert run(work, logging_stack.ELASTICSEARCH_CHECK, env={"ELASTIC_PASSWORD": "x", "CURL_EXIT": "22"}).returncode


@pytest.mark.parametrize(
    ("response", "healthy"),
    [
        ('{"status":{"overall":{"level":"available"}}}', True),
        ('{"status":{"overall":{"level":"degraded"},"core":{"level":"available"}}}', False),
    ],
)
def test_the_kibana_health_check_needs_overall_available(work: Path, response: str, healthy: bool) -> None:
    (work / "curl-response").write_text(response)
    check = logging_stack.kibana(settings()).healthcheck.test[1]
    assert (run(work, check).returncode == 0) is healthy


@pytest.mark.parametrize(
    ("answer", "healthy"),
    [("PONG", True), ("NOAUTH Authentication required.", False), ("", False)],
)
def test_the_redis_health_check_needs_pong(work: Path, answer: str, healthy: bool) -> None:
    write_tool(work, "redis-cli", f'[ -n "$REDISCLI_AUTH" ] && echo "{answer}"\n')
    check = redis_spec(settings()).healthcheck.test[1]
    assert (run(work, check, env={"REDISCLI_AUTH": "pw"}).returncode == 0) is healthy


def test_connection_strings_survive_any_password() -> None:
    config = settings(postgresPassword=TRICKY, redisPassword=TRICKY)
    for url in (database_url(config), redis_url(config)):
        assert unquote(urlsplit(url.get_secret_value()).password or "") == TRICKY
    assert isinstance(database_url(config), SecretStr)


def test_the_elastic_password_step_keeps_a_current_password(work: Path) -> None:
    line = exec_command(one_shot_args(ELASTIC_SCRIPT), "sentineliq-test-elasticsearch", skip_if_absent=True)
    result = run(work, line, stdin=elastic_input(settings()).get_secret_value(), env={"ES_HOME": str(work)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "the elastic password is current"
    assert "_security/_authenticate" in (work / "curl-args-0").read_text()


def test_the_elastic_password_step_resets_a_stale_password(work: Path) -> None:
    (work / "bin" / "elasticsearch-reset-password").unlink(missing_ok=True)
    tool = work / "bin" / "elasticsearch-reset-password"
    tool.write_text('#!/bin/sh\necho "$@" > "$WORK/reset-args"; cat > "$WORK/reset-stdin"\n')
    tool.chmod(0o755)
    line = exec_command(one_shot_args(ELASTIC_SCRIPT), "sentineliq-test-elasticsearch", skip_if_absent=True)
    stdin = elastic_input(settings(elasticPassword=TRICKY + "-new")).get_secret_value()
    result = run(work, line, stdin=stdin, env={"ES_HOME": str(work), "CURL_EXIT": "22"})
    assert result.returncode == 0, result.stderr
    assert (work / "reset-args").read_text().split() == [
        "--username",
        "elastic",
        "--interactive",
        "--batch",
        "--url",
        "http://127.0.0.1:9200",
    ]
    assert (work / "reset-stdin").read_text() == f"{TRICKY}-new\n{TRICKY}-new\n"
    assert TRICKY not in (work / "docker-args").read_text()


def test_the_elastic_password_step_waits_for_a_first_container(work: Path) -> None:
    line = exec_command(one_shot_args(ELASTIC_SCRIPT), "sentineliq-test-elasticsearch", skip_if_absent=True)
    result = run(work, line, stdin=elastic_input(settings()).get_secret_value(), env={"NO_CONTAINER": "1"})
    assert result.returncode == 0, result.stderr
    assert "nothing to do" in result.stdout
    assert not (work / "curl-args-0").exists()
