"""The daily backup jobs: one long-running container per data service, from the image the stack already pulls.

Each job runs `backup/backup --loop` (uploaded into the container, with `restore` beside it): a consistent dump
(pg_dump, redis-cli --rdb, mc mirror) over the stack network at `backup.time`, into a timestamped folder with a
checksum manifest under the host folder `backup.path`, then removes runs older than `backup.retentionDays` (never
the newest 7). A failed day writes no run and prunes nothing. No job touches a data volume or the Docker socket.
Its health check turns unhealthy when its last run failed. tests/test_backup_job.py runs each job's registered
command, environment and memory limit against real servers reachable only under the stack's names.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from pydantic import SecretStr

from ..naming import StackNames
from ..settings import Settings
from ..specs.minio import MINIO_API_PORT, minio
from ..specs.model import EnvValue, FileUpload, HealthCheck, Limits, ServiceSpec, shell_check
from ..specs.postgres import DATABASE, postgres
from ..specs.redis import redis
from .containers import HostDirectory

SOURCE = Path(__file__).resolve().parents[2] / "backup"
"""The repository's `backup/` folder: the scripts operators also run by hand."""
SCRIPTS = "/opt/sentineliq"
BACKUPS = "/backups"
STATUS_FILE = "/tmp/backup-status"  # noqa: S108 - inside the job's own container


def _script(name: str) -> FileUpload:
    return FileUpload(f"{SCRIPTS}/{name}", (SOURCE / name).read_text(), mode="0755")


def _credentials(settings: Settings, service: str) -> dict[str, EnvValue]:
    """How each job reaches its service on the stack network."""
    if service == "postgres":
        return {
            "PGHOST": "postgres",
            "PGUSER": DATABASE,
            "PGDATABASE": DATABASE,
            "PGPASSWORD": settings.postgres_password,
        }
    if service == "redis":
        return {"REDIS_HOST": "redis", "REDISCLI_AUTH": settings.redis_password}
    user = quote(settings.minio_root_user, safe="")
    password = quote(settings.minio_root_password.get_secret_value(), safe="")
    return {"MC_HOST_source": SecretStr(f"http://{user}:{password}@minio:{MINIO_API_PORT}")}


def backup_path(settings: Settings, names: StackNames) -> str:
    return settings.backup.path or f"/var/backups/{names.prefix}"


def backup_directory(settings: Settings, names: StackNames) -> HostDirectory:
    """The host folder every job writes its runs into."""
    return HostDirectory(backup_path(settings, names), BACKUPS)


def backup_jobs(settings: Settings) -> list[ServiceSpec]:
    """One job per data service, or none when `backup.enabled` is off."""
    if not settings.backup.enabled:
        return []
    jobs = []
    for service in (postgres(settings), redis(settings), minio(settings)):
        jobs.append(
            ServiceSpec(
                name=f"backup-{service.name}",
                image=service.image,
                entrypoint=("/bin/sh", f"{SCRIPTS}/backup"),
                command=("--loop", service.name, BACKUPS),
                files=(_script("backup"), _script("restore")),
                env={
                    "BACKUP_TIME": settings.backup.time,
                    "BACKUP_RETENTION_DAYS": str(settings.backup.retention_days),
                    "BACKUP_STATUS_FILE": STATUS_FILE,
                    **_credentials(settings, service.name),
                },
                healthcheck=HealthCheck(
                    test=shell_check(f'[ "$(cat {STATUS_FILE})" = ok ]'), interval=30, start_period=10
                ),
                ready_timeout=60,
                stop_grace=30,
                after=(service.name,),
                # The jobs run as root on files they create, on an unprivileged port-less loop.
                limits=Limits(cpus=0.5, memory_mb=512),
            )
        )
    return jobs
