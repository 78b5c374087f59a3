"""The shell the program writes, run for real with stand-ins for docker, curl, npx and redis-cli.

Mocks prove what is registered; these prove the command lines and health checks do what they claim once a
shell runs them: quoting survives `shlex.join` and `/bin/sh -c`, secrets arrive intact from stdin or the
environment, and failures fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from harness import TEST_SECRETS
from local_servers import require
from pydantic import SecretStr
from standins import PG_BIN, Http, Outcome, Postgres, Reply, Server, available, isolated

from sentinel_infra.docker.oneshot import InNewContainer, OneShotArgs, exec_command, run_command
from sentinel_infra.naming import StackNames
from sentinel_infra.settings import MINIO_APP_USER, Settings
from sentinel_infra.specs import elastic_setup
from sentinel_infra.specs.migrate import SCRIPT as MIGRATE_SCRIPT
from sentinel_infra.specs.minio_setup import minio_app_policy, minio_setup_input, minio_setup_script
from sentinel_infra.specs.postgres import database_url
from sentinel_infra.specs.redis import redis_url
from sentinel_infra.specs.rotation import ELASTIC_SCRIPT, POSTGRES_SCRIPT, elastic_input, postgres_statements

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


@pytest.fixture
def work(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").write_text(FAKE_DOCKER)
    (bin_dir / "docker").chmod(0o755)
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


def test_connection_strings_survive_any_password() -> None:
    config = settings(postgresPassword=TRICKY, redisPassword=TRICKY)
    for url in (database_url(config), redis_url(config)):
        assert unquote(urlsplit(url.get_secret_value()).password or "") == TRICKY
    assert isinstance(database_url(config), SecretStr)


# --- the Elastic steps, with the real curl against a stand-in Elasticsearch (tests/standins.py) ----------------------

SETUP_ROUTES = {
    "/_security/user/kibana_system/_password": Reply(200, "{}"),
    "/_security/role/logstash_writer": Reply(200, '{"role":{"created":true}}'),
    "/_security/user/logstash_writer": Reply(200, '{"created":true}'),
}


def in_namespace(
    work: Path, line: str, stdin: str, servers: list[Server], env: dict[str, str] | None = None
) -> Outcome:
    """A one-shot command line run as local.Command runs it, in a private network (stand-in docker, real curl)."""
    require(available() is None, f"network namespaces ({available()})")
    return isolated(
        ["/bin/sh", "-c", line],
        servers,
        stdin=stdin,
        env={"WORK": str(work), **(env or {})},
        hosts=["elasticsearch", "minio"],
        path=[str(work / "bin")],
    )


def test_the_elastic_setup_sends_each_identity(work: Path) -> None:
    config = settings(elasticPassword="elastic-" + TRICKY, kibanaSystemPassword="kibana-" + TRICKY)
    stdin = elastic_setup.setup_input(config).get_secret_value()
    server = Http(9200, SETUP_ROUTES, credentials="elastic:elastic-" + TRICKY)
    result = in_namespace(work, command_line(elastic_setup.SETUP_SCRIPT), stdin, [server])
    assert result.returncode == 0, result.stderr
    assert [(r.method, r.path) for r in result.requests] == [
        ("POST", "/_security/user/kibana_system/_password"),
        ("PUT", "/_security/role/logstash_writer"),
        ("PUT", "/_security/user/logstash_writer"),
    ]
    assert {r.user for r in result.requests} == {"elastic:elastic-" + TRICKY}
    bodies = [json.loads(r.body) for r in result.requests]
    assert bodies[0] == {"password": "kibana-" + TRICKY}
    assert bodies[1] == elastic_setup.WRITER_ROLE
    assert (bodies[2]["password"], bodies[2]["roles"]) == (TEST_SECRETS["logstashPassword"], ["logstash_writer"])
    assert TRICKY not in (work / "docker-args").read_text(), "a secret reached a command line"


def test_the_elastic_setup_fails_on_a_refused_password(work: Path) -> None:
    """An HTTP 401 must fail the step (`curl -f`), at the first request."""
    stdin = elastic_setup.setup_input(settings()).get_secret_value()
    server = Http(9200, SETUP_ROUTES, credentials="elastic:the-password-elasticsearch-really-has")
    result = in_namespace(work, command_line(elastic_setup.SETUP_SCRIPT), stdin, [server])
    assert result.returncode != 0
    assert len(result.requests) == 1


def test_the_elastic_setup_fails_on_a_server_error(work: Path) -> None:
    stdin = elastic_setup.setup_input(settings()).get_secret_value()
    routes = {**SETUP_ROUTES, "/_security/role/logstash_writer": Reply(400, '{"error":"bad role"}')}
    server = Http(9200, routes, credentials=f"elastic:{TEST_SECRETS['elasticPassword']}")
    result = in_namespace(work, command_line(elastic_setup.SETUP_SCRIPT), stdin, [server])
    assert result.returncode != 0
    assert [r.path for r in result.requests][-1] == "/_security/role/logstash_writer", "stops at the failure"


def reset_tool(work: Path) -> None:
    tool = work / "bin" / "elasticsearch-reset-password"
    tool.write_text('#!/bin/sh\necho "$@" > "$WORK/reset-args"; cat > "$WORK/reset-stdin"\n')
    tool.chmod(0o755)


def rotation_line() -> str:
    return exec_command(one_shot_args(ELASTIC_SCRIPT), "sentineliq-test-elasticsearch", skip_if_absent=True)


def test_the_elastic_password_step_keeps_a_current_password(work: Path) -> None:
    reset_tool(work)
    server = Http(9200, {"/_security/_authenticate": Reply(200, "{}")}, credentials=f"elastic:{TRICKY}-now")
    stdin = elastic_input(settings(elasticPassword=TRICKY + "-now")).get_secret_value()
    result = in_namespace(work, rotation_line(), stdin, [server], env={"ES_HOME": str(work)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "the elastic password is current"
    assert [(r.path, r.user) for r in result.requests] == [("/_security/_authenticate", f"elastic:{TRICKY}-now")]
    assert not (work / "reset-args").exists()


def test_the_elastic_password_step_resets_a_stale_password(work: Path) -> None:
    """Elasticsearch still has the old password: the new one gets a 401, which must lead to the reset."""
    reset_tool(work)
    server = Http(9200, {"/_security/_authenticate": Reply(200, "{}")}, credentials="elastic:the-old-password-0001")
    stdin = elastic_input(settings(elasticPassword=TRICKY + "-new")).get_secret_value()
    result = in_namespace(work, rotation_line(), stdin, [server], env={"ES_HOME": str(work)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "the elastic password was reset"
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
    reset_tool(work)
    result = run(work, rotation_line(), stdin=elastic_input(settings()).get_secret_value(), env={"NO_CONTAINER": "1"})
    assert result.returncode == 0, result.stderr
    assert "nothing to do" in result.stdout
    assert (work / "docker-args").read_text().split()[:2] == ["container", "inspect"]
    assert not (work / "reset-args").exists()


# --- the MinIO setup, with a stand-in `mc` that keeps MinIO's state and fails where the real one does -------------

FAKE_MC = r'''"""Stand-in for mc (minio/mc RELEASE.2025-04): the alias from $MC_CONFIG_DIR/config.json must hold the
server's root credentials ($MINIO_ROOT, "user:password") or every call is refused; MinIO's IAM state lives in
$WORK/minio.json."""
import json, os, sys
from pathlib import Path

work = Path(os.environ["WORK"])
with (work / "mc-args").open("a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\n")
state_file = work / "minio.json"
empty = {"buckets": [], "policies": {}, "users": {}, "attached": {}}
state = json.loads(state_file.read_text()) if state_file.exists() else empty
config = json.loads((Path(os.environ["MC_CONFIG_DIR"]) / "config.json").read_text())
alias = config["aliases"]["stack"]
if alias["url"] != "http://minio:9000" or f'{alias["accessKey"]}:{alias["secretKey"]}' != os.environ["MINIO_ROOT"]:
    sys.exit("mc: <ERROR> Access Denied.")
args = [a for a in sys.argv[1:] if a not in ("--ignore-existing", "-p")]
ignore = len(args) != len(sys.argv) - 1
if args[0] == "mb":
    bucket = args[1].split("/", 1)[1]
    if bucket in state["buckets"] and not ignore:
        sys.exit("mc: <ERROR> Unable to make bucket. Your previous request to create the named bucket succeeded.")
    if bucket not in state["buckets"]:
        state["buckets"].append(bucket)
elif args[:3] == ["admin", "policy", "create"]:
    state["policies"][args[4]] = json.loads(Path(args[5]).read_text())
elif args[:3] == ["admin", "user", "add"]:
    secret = args[5] if len(args) > 5 else sys.stdin.readline().rstrip("\n")
    if len(secret) < 8:
        sys.exit("mc: <ERROR> Unable to add new user. The secret key is too short.")
    state["users"][args[4]] = secret
elif args[:3] == ["admin", "policy", "attach"]:
    user = args[args.index("--user") + 1]
    policies = [a for a in args[4:args.index("--user")]]
    if user not in state["users"] or any(p not in state["policies"] for p in policies):
        sys.exit("mc: <ERROR> Unable to make user/group policy association.")
    state["attached"][user] = sorted(set(state["attached"].get(user, [])) | set(policies))
else:
    sys.exit(f"mc: unknown command {args}")
state_file.write_text(json.dumps(state))
'''


def minio_setup_line(config: Settings) -> str:
    return run_command(
        OneShotArgs(
            settings=config,
            names=StackNames("sentineliq", "test"),
            where=InNewContainer("sha256:feed", "net"),
            script=minio_setup_script(config.s3_bucket),
            stdin=SecretStr(""),
            depends_on=[],
        ),
        "minio-setup",
        "sha256:feed",
        "net",
    )


def setup_minio(work: Path, config: Settings, root: str | None = None) -> subprocess.CompletedProcess[str]:
    tool = work / "bin" / "mc"
    tool.write_text(f"#!{sys.executable}\n{FAKE_MC}")
    tool.chmod(0o755)
    (work / "tmp").mkdir(exist_ok=True)
    actual_root = root or f"{config.minio_root_user}:{config.minio_root_password.get_secret_value()}"
    stdin = minio_setup_input(config).get_secret_value()
    return run(
        work, minio_setup_line(config), stdin=stdin, env={"MINIO_ROOT": actual_root, "TMPDIR": str(work / "tmp")}
    )


def minio_state(work: Path) -> dict[str, Any]:
    state: dict[str, Any] = json.loads((work / "minio.json").read_text())
    return state


def test_the_minio_setup_creates_the_bucket_and_a_user_limited_to_it(work: Path) -> None:
    config = settings(minioRootPassword="root:" + TRICKY, minioAppPassword="app-" + TRICKY)
    result = setup_minio(work, config)
    assert result.returncode == 0, result.stderr
    state = minio_state(work)
    assert state["buckets"] == ["sentineliq"]
    assert state["users"] == {MINIO_APP_USER: "app-" + TRICKY}
    assert state["policies"] == {MINIO_APP_USER: minio_app_policy("sentineliq")}
    assert state["attached"] == {MINIO_APP_USER: [MINIO_APP_USER]}
    mc_arguments = [arg for line in (work / "mc-args").read_text().splitlines() for arg in json.loads(line)]
    for argument in [*mc_arguments, (work / "docker-args").read_text()]:
        assert TRICKY not in argument, "a secret reached a command line"
    assert list((work / "tmp").iterdir()) == [], "the folder with the root credentials is removed"


def test_the_minio_setup_is_idempotent_and_applies_a_new_password(work: Path) -> None:
    assert setup_minio(work, settings()).returncode == 0
    first = minio_state(work)
    again = setup_minio(work, settings())
    assert again.returncode == 0, again.stderr
    assert minio_state(work) == first
    rotated = setup_minio(work, settings(minioAppPassword="a-rotated-app-password"))
    assert rotated.returncode == 0, rotated.stderr
    assert minio_state(work)["users"][MINIO_APP_USER] == "a-rotated-app-password"


def test_the_minio_setup_fails_when_root_is_refused(work: Path) -> None:
    result = setup_minio(work, settings(), root="sentineliq:the-real-root-password")
    assert result.returncode != 0
    assert len((work / "mc-args").read_text().splitlines()) == 1, "stops at the first refusal"
    assert not (work / "minio.json").exists()


def test_the_application_policy_grants_its_bucket_only() -> None:
    policy = minio_app_policy("files")
    resources = {r for statement in policy["Statement"] for r in statement["Resource"]}  # type: ignore[index]
    actions = {a for statement in policy["Statement"] for a in statement["Action"]}  # type: ignore[index]
    assert resources == {"arn:aws:s3:::files", "arn:aws:s3:::files/*"}
    assert all(statement["Effect"] == "Allow" for statement in policy["Statement"])  # type: ignore[index]
    assert all(a.startswith("s3:") and "*" not in a for a in actions)
    assert not {"s3:DeleteBucket", "s3:PutBucketPolicy", "s3:CreateBucket"} & actions


# --- the PostgreSQL password step, against a real PostgreSQL ------------------------------------------------------


def test_the_postgres_password_step_applies_the_new_password(work: Path) -> None:
    """Through the local socket (trusted, as in the image) the step sets the role's password; over TCP
    (scram-sha-256, as the application connects) the new password then works and another does not."""
    require(PG_BIN, "PostgreSQL (package postgresql)")
    new = TRICKY + "-new"
    login = "psql -h 127.0.0.1 -p 5432 -U sentineliq -d sentineliq -tAc 'SELECT 1' >/dev/null 2>&1"
    step = exec_command(one_shot_args(POSTGRES_SCRIPT), "sentineliq-test-postgres", skip_if_absent=False)
    script = (
        f'PGPASSWORD="$NEW" {login}; echo "before=$?"\n'
        f'{step}; echo "step=$?"\n'
        f'PGPASSWORD="$NEW" {login}; echo "after=$?"\n'
        f'PGPASSWORD=another-password-0001 {login}; echo "other=$?"\n'
    )
    result = isolated(
        ["/bin/sh", "-c", script],
        [Postgres(5432, "sentineliq", host_auth="scram-sha-256")],
        stdin=postgres_statements(SecretStr(new)).get_secret_value(),
        env={"WORK": str(work), "NEW": new},
        path=[str(work / "bin"), str(PG_BIN)],
    )
    outcome = dict(line.split("=") for line in result.stdout.split())
    assert outcome == {"before": "2", "step": "0", "after": "0", "other": "2"}, result.stderr
    assert TRICKY not in (work / "docker-args").read_text()


def test_a_failing_postgres_password_step_fails_the_command(work: Path) -> None:
    require(PG_BIN, "PostgreSQL (package postgresql)")
    step = exec_command(one_shot_args(POSTGRES_SCRIPT), "sentineliq-test-postgres", skip_if_absent=False)
    broken = postgres_statements(SecretStr("a-valid-password-0001")).get_secret_value().replace("ROLE", "ROLL")
    result = isolated(
        ["/bin/sh", "-c", step],
        [Postgres(5432, "sentineliq")],
        stdin=broken,
        env={"WORK": str(work)},
        path=[str(work / "bin"), str(PG_BIN)],
    )
    assert result.returncode != 0, "ON_ERROR_STOP: a failed statement fails the step"
