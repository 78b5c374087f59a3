"""The data tier: PostgreSQL 16, Redis 7 and MinIO, as specs for the generic service container."""

from __future__ import annotations

from urllib.parse import quote

from pydantic import SecretStr

from .service import FileUpload, HealthCheck, PublishedPort, ServiceSpec, VolumeMount, shell_check
from .settings import Limits, Settings

POSTGRES_IMAGE = "postgres:16-alpine"
REDIS_IMAGE = "redis:7-alpine"
MINIO_IMAGE = "minio/minio:RELEASE.2025-04-22T22-12-26Z"
"""A pinned release: MinIO's `latest` moves under a running deployment."""

DATABASE = "sentineliq"
"""The PostgreSQL role and database of the application."""

MINIO_API_PORT = 9000
MINIO_CONSOLE_PORT = 9001


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
        wait_timeout=180,
        # The image stops with SIGINT (fast shutdown): give it time to checkpoint instead of being SIGKILLed.
        stop_grace=120,
        limits=settings.limits("postgres", Limits(cpus=2, memory_mb=4096)),
    )


def _redis_quoted(value: str) -> str:
    """A redis.conf argument in double quotes: spaces, quotes and backslashes survive its parser."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def redis(settings: Settings) -> ServiceSpec:
    # The password lives in a config file written into the container, never on redis-server's command line
    # (where `ps` on the host would show it). AOF persistence: at most a second of writes lost on a crash.
    password = _redis_quoted(settings.redis_password.get_secret_value())
    config = SecretStr(f"appendonly yes\nappendfsync everysec\ndir /data\nrequirepass {password}\n")
    return ServiceSpec(
        name="redis",
        image=REDIS_IMAGE,
        command=("redis-server", "/usr/local/etc/redis/redis.conf"),
        files=(FileUpload("/usr/local/etc/redis/redis.conf", config),),
        # redis-cli reads the password from REDISCLI_AUTH; `ping` exits 0 even on NOAUTH, so check for PONG.
        env={"REDISCLI_AUTH": settings.redis_password},
        volumes=(VolumeMount("redis-data", "/data"),),
        image_volumes=("/data",),
        # The entrypoint chowns /data to the redis user (CHOWN; DAC_OVERRIDE for its 0700 AOF directory), then
        # drops privileges with su-exec (SETUID, SETGID). No read-only root: the config file is uploaded.
        cap_add=("CHOWN", "DAC_OVERRIDE", "SETGID", "SETUID"),
        healthcheck=HealthCheck(
            test=shell_check('[ "$(redis-cli -h 127.0.0.1 ping)" = PONG ]'), interval=10, start_period=20
        ),
        wait_timeout=90,
        stop_grace=30,
        limits=settings.limits("redis", Limits(cpus=1, memory_mb=1024)),
    )


def minio(settings: Settings) -> ServiceSpec:
    return ServiceSpec(
        name="minio",
        image=MINIO_IMAGE,
        command=("server", "/data", "--console-address", f":{MINIO_CONSOLE_PORT}"),
        env={"MINIO_ROOT_USER": settings.minio_root_user, "MINIO_ROOT_PASSWORD": settings.minio_root_password},
        volumes=(VolumeMount("minio-data", "/data"),),
        image_volumes=("/data",),
        # Runs as root on files it owns and listens above 1024: no capability needed. Not read-only: `mc` keeps
        # its configuration under the home directory.
        # The API (9000) stays on the stack network; only the console is published, on loopback.
        ports=(PublishedPort(MINIO_CONSOLE_PORT, settings.host_ports.minio_console, "127.0.0.1"),),
        # The image has no curl; `mc ready local` asks the server itself.
        healthcheck=HealthCheck(test=("CMD", "mc", "ready", "local"), interval=10, start_period=30),
        wait_timeout=120,
        stop_grace=30,
        limits=settings.limits("minio", Limits(cpus=0.5, memory_mb=512)),
    )


def database_url(settings: Settings) -> SecretStr:
    """The application's connection string (on the stack network, by the `postgres` alias)."""
    password = quote(settings.postgres_password.get_secret_value(), safe="")
    return SecretStr(f"postgresql://{DATABASE}:{password}@postgres:5432/{DATABASE}")


def redis_url(settings: Settings) -> SecretStr:
    """The application's Redis URL, with the password (URL-encoded)."""
    password = quote(settings.redis_password.get_secret_value(), safe="")
    return SecretStr(f"redis://:{password}@redis:6379/0")


def data_services(settings: Settings) -> list[ServiceSpec]:
    return [postgres(settings), redis(settings), minio(settings)]
