"""The daily backup jobs: one long-running job per data service (each data spec's `backup`), from its own image.

Each job runs `backup/backup --loop` (uploaded, with `restore` beside it): a consistent dump (pg_dump,
redis-cli --rdb, mc mirror) over the stack network at `backup.time`, into a timestamped folder with a checksum
manifest under `BACKUPS`, then removes runs older than `backup.retentionDays` (never the newest 7). A failed day
writes no run and prunes nothing. No job touches a data volume. Its health check turns unhealthy when its last
run failed. Where `BACKUPS` comes from is the target's: a folder of the Docker host (`backup.path`).
tests/test_backup_job.py runs each job's registered command, environment and memory limit against real servers
reachable only under the stack's names.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..settings import Settings
from .model import BackupSpec, FileUpload, HealthCheck, Limits, ServiceSpec, shell_check

SOURCE = Path(__file__).resolve().parents[2] / "backup"
"""The repository's `backup/` folder: the scripts operators also run by hand."""
SCRIPTS = "/opt/sentineliq"
BACKUPS = "/backups"
"""Where a job writes its runs, inside its container."""
STATUS_FILE = "/tmp/backup-status"  # noqa: S108 - inside the job's own container


def _script(name: str) -> FileUpload:
    return FileUpload(f"{SCRIPTS}/{name}", (SOURCE / name).read_text(), mode="0755")


def backup_job(settings: Settings, service: ServiceSpec, backup: BackupSpec) -> ServiceSpec:
    """The job that dumps `service` daily, in the service's own image (its client tools)."""
    return ServiceSpec(
        name=f"backup-{service.name}",
        image=service.image,
        entrypoint=("/bin/sh", f"{SCRIPTS}/backup"),
        command=("--loop", service.name, BACKUPS),
        files=(_script("backup"), _script("restore")),
        env={
            "BACKUP_TIME": settings.backup.time,
            "BACKUP_RETENTION_DAYS": str(settings.backup.retention_days),
            "BACKUP_STATUS_FILE": STATUS_FILE,
            **backup.env,
        },
        healthcheck=HealthCheck(test=shell_check(f'[ "$(cat {STATUS_FILE})" = ok ]'), interval=30, start_period=10),
        ready_timeout=60,
        stop_grace=30,
        after=(service.name,),
        talks_to=(service.name,),
        # The jobs run as root on files they create, on an unprivileged port-less loop.
        limits=Limits(cpus=0.5, memory_mb=512),
    )


def backup_jobs(settings: Settings, services: Iterable[ServiceSpec]) -> list[ServiceSpec]:
    """One job per service that declares a backup, or none when `backup.enabled` is off."""
    if not settings.backup.enabled:
        return []
    return [backup_job(settings, spec, spec.backup) for spec in services if spec.backup is not None]
