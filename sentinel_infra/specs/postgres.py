"""PostgreSQL 16: the application's database."""

from __future__ import annotations

from urllib.parse import quote

from pydantic import SecretStr

from ..settings import Settings
from .model import BackupSpec, HealthCheck, Limits, Port, RunAs, ServiceSpec, VolumeMount, shell_check

POSTGRES_IMAGE = "postgres:16-alpine"

DATABASE = "sentineliq"
"""The PostgreSQL role and database of the application."""

POSTGRES_USER = RunAs(70, 70)
"""The alpine image's `postgres` user (docker-library/postgres 16/alpine*/Dockerfile: `addgroup -g 70 -S postgres;
adduser -u 70 -S -D -G postgres`), which the entrypoint drops to."""


def postgres(settings: Settings) -> ServiceSpec:
    return ServiceSpec(
        name="postgres",
        image=POSTGRES_IMAGE,
        env={
            "POSTGRES_USER": DATABASE,
            "POSTGRES_DB": DATABASE,
            # Applied by the image only when it initialises an empty data directory.
            "POSTGRES_PASSWORD": settings.postgres_password,
        },
        ports=(Port("postgres", 5432),),
        volumes=(VolumeMount("postgres-data", "/var/lib/postgresql/data"),),
        image_volumes=("/var/lib/postgresql/data",),
        # The entrypoint starts as root, fixes the data directory's owner and mode (CHOWN, FOWNER; DAC_OVERRIDE to
        # walk the 0700 directory) and drops to the postgres user with su-exec (SETUID, SETGID).
        cap_add=("CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"),
        # Writes only its data directory (a volume), its socket directory and temporary files.
        read_only=True,
        tmpfs=("/var/run/postgresql", "/tmp"),  # noqa: S108 - a private tmpfs inside the container
        # Over TCP: the socket answers "ready" while initdb's temporary server is still running.
        healthcheck=HealthCheck(
            test=shell_check(f"pg_isready -h 127.0.0.1 -p 5432 -U {DATABASE} -d {DATABASE}"),
            interval=10,
            start_period=60,
        ),
        ready_timeout=180,
        # The image stops with SIGINT (fast shutdown): give it time to checkpoint instead of being SIGKILLed.
        stop_grace=120,
        limits=settings.limits("postgres", Limits(cpus=2, memory_mb=4096)),
        # pg_dump over the network, as the application's role.
        backup=BackupSpec(
            {
                "PGHOST": "postgres",
                "PGUSER": DATABASE,
                "PGDATABASE": DATABASE,
                "PGPASSWORD": settings.postgres_password,
            }
        ),
        run_as=POSTGRES_USER,
    )


def database_url(settings: Settings) -> SecretStr:
    """The application's connection string (on the stack network, by the `postgres` alias)."""
    password = quote(settings.postgres_password.get_secret_value(), safe="")
    return SecretStr(f"postgresql://{DATABASE}:{password}@postgres:5432/{DATABASE}")
