"""The stack's backup jobs, run as registered (`backup --loop`) against real PostgreSQL and Redis.

Each test takes the job's container registration from the prod stack (entrypoint, command, environment, uploaded
scripts, memory limit) and runs it in `backup_sandbox`: busybox's sh, a chroot with the job's paths, and a network
namespace where the servers answer only under the names the stack gives them. A stand-in `sleep` on PATH lets the
loop run its days at once and ends it on the second call after the last day. The failures are real ones: a
server down, a connection cut mid-transfer (a proxy that closes it), a full disk (a small tmpfs as /backups).

Not covered here: the MinIO job (no MinIO server runs here; its script path is tested with a stand-in `mc` in
test_backup.py).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from backup_sandbox import POSTGRES_ADDRESS, PROXY_ADDRESS, REDIS_ADDRESS, Job, Sandbox, sandbox, unavailable
from harness import TEST_SECRETS, Deployment, unwrap
from local_servers import require, shared_dir

PG_BIN = next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)), None)
SANDBOX = Path(__file__).resolve().parent / "backup_sandbox.py"
# The image's PATH: busybox's applets first (as in Alpine), then the servers' client tools, then /usr/bin.
IMAGE_PATH = f"/stand-ins:/bin:{PG_BIN}:/usr/bin"
DAY = timedelta(days=1)


def registered_job(prod: Deployment, service: str) -> Job:
    container = prod.named(f"backup-{service}-container")
    inputs = unwrap(container.inputs)
    env = dict(line.split("=", 1) for line in inputs["envs"])
    files = {upload["file"]: (upload["content"], bool(upload.get("executable"))) for upload in inputs["uploads"]}
    (volume,) = inputs["volumes"]
    return Job(
        argv=[*inputs["entrypoints"], *inputs["command"]],
        env=env,
        files=files,
        backups=volume["containerPath"],
        memory_mb=int(inputs["memory"]),
        health=tuple(inputs["healthcheck"]["tests"]),
    )


def healthy(found: Servers, job: Job) -> bool:
    """The job's registered health check, run in its sandbox as Docker runs a CMD-SHELL test."""
    kind, command = job.health
    assert kind == "CMD-SHELL"
    check = Job(["/bin/sh", "-c", command], job.env, job.files, job.backups, 0)
    return found.box.run_job(check, IMAGE_PATH).returncode == 0


def stand_in_sleep(days: int) -> str:
    """Records each delay; lets `days` runs happen (one second apart, so no two share a stamp), then fails,
    which ends the loop."""
    return f"""#!/bin/sh
echo "$1" >> /tmp/sleeps
[ "$(wc -l < /tmp/sleeps)" -le {days} ] || exit 7
exec /bin/sleep 1
"""


@dataclass
class Servers:
    box: Sandbox
    pg_data: Path | None = None
    redis_server: subprocess.Popen[bytes] | None = None

    def sql(self, statement: str) -> str:
        assert PG_BIN is not None
        result = self.box.run(
            f"{PG_BIN}/psql",
            f"postgresql://sentineliq@{POSTGRES_ADDRESS}:5432/sentineliq",
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            statement,
            env={**os.environ, "PGPASSWORD": TEST_SECRETS["postgresPassword"]},
        )
        return result.stdout

    def redis(self, *args: str, stdin: bytes | None = None) -> str:
        argv = self.box.command(["redis-cli", "-h", REDIS_ADDRESS, "-p", "6379", "--no-auth-warning", *args])
        result = subprocess.run(
            ["env", f"REDISCLI_AUTH={TEST_SECRETS['redisPassword']}", *argv],
            input=stdin,
            capture_output=True,
            check=True,
        )
        return result.stdout.decode()

    def start_redis(self, data: Path) -> None:
        """Redis as the stack runs it (AOF, password), on the address that `redis` names only."""
        self.redis_server = self.box.start(
            "redis-server",
            "--port",
            "6379",
            "--bind",
            REDIS_ADDRESS,
            "--dir",
            str(data),
            "--appendonly",
            "yes",
            "--requirepass",
            TEST_SECRETS["redisPassword"],
            "--save",
            "",
        )
        deadline = time.monotonic() + 20
        while True:
            with suppress(subprocess.CalledProcessError):
                if self.redis("ping").strip() == "PONG":
                    return
            assert time.monotonic() < deadline, "redis did not start"
            time.sleep(0.1)

    def stop_postgres(self) -> None:
        assert PG_BIN is not None and self.pg_data is not None
        self.box.run(
            "runuser", "-u", "postgres", "--", f"{PG_BIN}/pg_ctl", "-D", str(self.pg_data), "-m", "fast", "stop"
        )
        self.pg_data = None


@pytest.fixture(scope="module")
def pg_template() -> Iterator[Path]:
    """A data folder with the stack's user, database and password (scram), made once (initdb is slow)."""
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    require(PG_BIN, "PostgreSQL (package postgresql)")
    root = shared_dir("postgres")
    data, secret = root / "data", root / "pw"
    secret.write_text(TEST_SECRETS["postgresPassword"])
    shutil.chown(secret, "postgres")
    as_postgres = ["runuser", "-u", "postgres", "--"]
    try:
        initdb = ["initdb", "-N", "-D", str(data), "-U", "sentineliq", "--auth=scram-sha-256", f"--pwfile={secret}"]
        subprocess.run([*as_postgres, f"{PG_BIN}/{initdb[0]}", *initdb[1:]], check=True, capture_output=True)
        subprocess.run(
            [*as_postgres, f"{PG_BIN}/postgres", "--single", "-D", str(data), "postgres"],
            input=b"CREATE DATABASE sentineliq;\n",
            check=True,
            capture_output=True,
        )
        yield data
    finally:
        shutil.rmtree(root, ignore_errors=True)


def start_postgres(box: Sandbox, template: Path, root: Path) -> Path:
    """The template's server, listening only on the address that `postgres` names in the sandbox."""
    assert PG_BIN is not None
    data = root / "data"
    subprocess.run(["cp", "-a", str(template), str(data)], check=True)
    options = f"-p 5432 -k {root} -c listen_addresses={POSTGRES_ADDRESS} -c fsync=off"
    box.run(
        "runuser",
        "-u",
        "postgres",
        "--",
        f"{PG_BIN}/pg_ctl",
        "-D",
        str(data),
        "-o",
        options,
        "-l",
        str(root / "log"),
        "-w",
        "start",
    )
    return data


@pytest.fixture
def servers(request: pytest.FixtureRequest, pg_template: Path) -> Iterator[Servers]:
    """A sandbox with PostgreSQL and Redis; an indirect parameter can give a disk size (`disk_mb`) and put a
    cutting proxy in front of one server (`cut`: service, bytes)."""
    require(shutil.which("redis-server"), "Redis (package redis-server)")
    options = dict(getattr(request, "param", {}))
    cut = options.get("cut")  # (service, bytes)
    hosts = {"postgres": POSTGRES_ADDRESS, "redis": REDIS_ADDRESS}
    if cut:
        hosts[cut[0]] = PROXY_ADDRESS
    pg_root = shared_dir("postgres")
    redis_data = shared_dir()
    try:
        with sandbox(hosts, disk_mb=options.get("disk_mb")) as box:
            found = Servers(box)
            try:
                found.pg_data = start_postgres(box, pg_template, pg_root)
                found.start_redis(redis_data)
                if cut:
                    service, limit = cut
                    address = POSTGRES_ADDRESS if service == "postgres" else REDIS_ADDRESS
                    port = "5432" if service == "postgres" else "6379"
                    box.start(sys.executable, str(SANDBOX), "proxy", PROXY_ADDRESS, port, address, port, str(limit))
                yield found
            finally:
                if found.pg_data is not None:
                    found.stop_postgres()
    finally:
        shutil.rmtree(pg_root, ignore_errors=True)
        shutil.rmtree(redis_data, ignore_errors=True)


ROWS = 20000
"""Of about 200 bytes of hex each (little to compress): some 4 MB to transfer, 2 MB compressed."""


def fill_postgres(found: Servers) -> str:
    found.sql("CREATE TABLE events (id bigserial PRIMARY KEY, payload text)")
    random = " || ".join(["md5(random()::text)"] * 6)
    found.sql(f"INSERT INTO events (payload) SELECT {random} FROM generate_series(1, {ROWS}) n")
    return found.sql("SELECT count(*), md5(string_agg(payload, ',' ORDER BY id)) FROM events")


def fill_redis(found: Servers) -> str:
    lines = "".join(f"SET key:{n} {os.urandom(100).hex()}\r\n" for n in range(ROWS))
    found.redis("--pipe", stdin=lines.encode())
    return found.redis("DBSIZE")


def old_runs(folder: Path, count: int, age_days: int) -> list[str]:
    """Complete-looking runs older than the retention: a successful day prunes some, a failed day none."""
    names = []
    for n in range(count):
        name = (datetime.now(UTC) - (age_days + n) * DAY).strftime("%Y%m%dT%H%M%SZ")
        (folder / name).mkdir(parents=True)
        (folder / name / "MANIFEST.sha256").write_text("")
        names.append(name)
    return sorted(names)


def listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def run_loop(found: Servers, job: Job, days: int = 1, memory_mb: int | None = None) -> subprocess.CompletedProcess[str]:
    found.box.install(job, {"sleep": stand_in_sleep(days)})
    result = found.box.run_job(job, IMAGE_PATH, memory_mb=memory_mb)
    # The loop ends only through the stand-in's failure, after its days: a failed day never stops it.
    assert result.returncode == 7, result.stderr
    delays = (found.box.root / "tmp" / "sleeps").read_text().split()
    assert len(delays) == days + 1
    assert all(0 < int(delay) <= 86400 for delay in delays), delays
    return result


def status(found: Servers) -> str:
    return (found.box.root / "tmp" / "backup-status").read_text().strip()


# --- a good day: the registered command, environment and memory limit work -----------------------------------------

LARGEST_VALUE_MB = 100
"""The largest single value the PostgreSQL job is sized for: pg_dump holds a whole row in memory, about twice
its size (measured: 205 MiB for this one). PostgreSQL allows up to 1 GB; README.md states this limit."""


@pytest.mark.parametrize("service", ["postgres", "redis"])
def test_the_registered_job_backs_up_the_stacks_server_within_its_memory_limit(
    prod: Deployment, servers: Servers, service: str
) -> None:
    job = registered_job(prod, service)
    folder = servers.box.host_path(job.backups) / service
    if service == "postgres":
        fill_postgres(servers)
        servers.sql("CREATE TABLE documents (id int PRIMARY KEY, body text)")
        servers.sql(f"INSERT INTO documents VALUES (1, repeat('x', {LARGEST_VALUE_MB} * 1024 * 1024) || 'end')")
        before = servers.sql("SELECT count(*), md5(string_agg(payload, ',' ORDER BY id)) FROM events")
        before += servers.sql("SELECT md5(body) FROM documents")
        # The limit is real: with a quarter of it, that row is more than pg_dump can hold.
        starved = run_loop(servers, job, days=1, memory_mb=job.memory_mb // 4)
        assert status(servers) == "failed", starved.stderr
        assert listing(folder) == []
        (servers.box.root / "tmp" / "sleeps").unlink()
    else:
        before = fill_redis(servers)
    old = old_runs(folder, 9, age_days=40)

    result = run_loop(servers, job, days=1, memory_mb=job.memory_mb)
    assert "FAILED" not in result.stderr, result.stderr
    assert status(servers) == "ok"
    assert healthy(servers, job)
    runs = listing(folder)
    # The new run plus the newest 6 old ones: the oldest 3 were older than the retention and beyond the 7 kept.
    assert runs[:-1] == old[3:], result.stderr
    new = folder / runs[-1]
    dump = "postgres.dump" if service == "postgres" else "redis.rdb"
    assert sorted(p.name for p in new.iterdir()) == ["MANIFEST.sha256", dump]

    # The run holds the server's data: restore it with the job's own restore script and compare.
    restore = Job(["/bin/sh", "/opt/sentineliq/restore"], job.env, job.files, job.backups, 0)
    if service == "postgres":
        servers.sql("DELETE FROM events WHERE id > 10; DELETE FROM documents")
        restore.argv += ["postgres", f"{job.backups}/postgres/{runs[-1]}"]
        restored = servers.box.run_job(restore, IMAGE_PATH)
        assert restored.returncode == 0, restored.stderr
        after = servers.sql("SELECT count(*), md5(string_agg(payload, ',' ORDER BY id)) FROM events")
        assert after + servers.sql("SELECT md5(body) FROM documents") == before
    else:
        assert servers.redis_server is not None
        servers.redis_server.terminate()
        servers.redis_server.wait(timeout=20)
        restore.argv += ["redis", f"{job.backups}/redis/{runs[-1]}", "/redis-data"]
        servers.box.host_path("/redis-data").mkdir()
        restored = servers.box.run_job(restore, IMAGE_PATH)
        assert restored.returncode == 0, restored.stderr
        servers.start_redis(servers.box.host_path("/redis-data"))
        assert servers.redis("DBSIZE") == before


# --- a bad day: the whole day fails, nothing is renamed or pruned, the job turns unhealthy --------------------------


def stop_server(found: Servers, service: str) -> None:
    if service == "postgres":
        found.stop_postgres()
    else:
        assert found.redis_server is not None
        found.redis_server.terminate()
        found.redis_server.wait(timeout=20)


CUT = 1_000_000
"""Bytes from the server after which the proxy closes the connection: mid-transfer."""


@pytest.mark.parametrize(
    ("service", "servers", "failure", "cause"),
    [
        ("postgres", {}, "down", "Connection refused"),
        ("redis", {}, "down", "Connection refused"),
        ("postgres", {"cut": ("postgres", CUT)}, "cut", "server closed the connection unexpectedly"),
        ("redis", {"cut": ("redis", CUT)}, "cut", "I/O Error reading RDB payload"),
        ("postgres", {"disk_mb": 1}, "full", "No space left on device"),
        ("redis", {"disk_mb": 1}, "full", "short write"),
    ],
    ids=["postgres-down", "redis-down", "postgres-cut", "redis-cut", "postgres-disk-full", "redis-disk-full"],
    indirect=["servers"],
)
def test_a_failed_day_writes_no_run_prunes_nothing_and_turns_the_job_unhealthy(
    prod: Deployment, servers: Servers, service: str, failure: str, cause: str
) -> None:
    job = registered_job(prod, service)
    if service == "postgres":
        fill_postgres(servers)
    else:
        fill_redis(servers)
    folder = servers.box.host_path(job.backups) / service
    old = old_runs(folder, 9, age_days=40)
    if failure == "down":
        stop_server(servers, service)

    result = run_loop(servers, job, days=1)
    assert cause in result.stderr, "the failure under test did not happen"
    assert status(servers) == "failed", result.stderr
    assert not healthy(servers, job)
    assert "FAILED" in result.stderr
    # Nothing renamed into a run, nothing pruned, no partial folder left.
    assert listing(folder) == old, result.stderr
