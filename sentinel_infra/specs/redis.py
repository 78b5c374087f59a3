"""Redis 7: the application's cache and queues, with AOF persistence."""

from __future__ import annotations

from urllib.parse import quote

from pydantic import SecretStr

from ..settings import Settings
from .model import BackupSpec, FileUpload, HealthCheck, Limits, Port, RunAs, ServiceSpec, VolumeMount, shell_check

REDIS_IMAGE = "redis:7-alpine"
REDIS_USER = RunAs(999, 1000)
"""The alpine image's `redis` user (docker-library/redis alpine Dockerfile: `addgroup -S -g 1000 redis; adduser -S
-G redis -u 999 redis`), which the entrypoint drops to."""


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
        ports=(Port("redis", 6379),),
        volumes=(VolumeMount("redis-data", "/data"),),
        image_volumes=("/data",),
        # The entrypoint chowns /data to the redis user (CHOWN; DAC_OVERRIDE for its 0700 AOF directory), then
        # drops privileges with su-exec (SETUID, SETGID). No read-only root: the config file is uploaded.
        cap_add=("CHOWN", "DAC_OVERRIDE", "SETGID", "SETUID"),
        healthcheck=HealthCheck(
            test=shell_check('[ "$(redis-cli -h 127.0.0.1 ping)" = PONG ]'), interval=10, start_period=20
        ),
        ready_timeout=90,
        stop_grace=30,
        limits=settings.limits("redis", Limits(cpus=1, memory_mb=1024)),
        # redis-cli --rdb over the network.
        backup=BackupSpec({"REDIS_HOST": "redis", "REDISCLI_AUTH": settings.redis_password}),
        run_as=REDIS_USER,
    )


def redis_url(settings: Settings) -> SecretStr:
    """The application's Redis URL, with the password (URL-encoded)."""
    password = quote(settings.redis_password.get_secret_value(), safe="")
    return SecretStr(f"redis://:{password}@redis:6379/0")
