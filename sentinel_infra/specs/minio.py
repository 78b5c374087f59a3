"""MinIO: the application's S3-compatible object store."""

from __future__ import annotations

from urllib.parse import quote

from pydantic import SecretStr

from ..settings import Settings
from .model import BackupSpec, HealthCheck, Limits, Port, ServiceSpec, VolumeMount

MINIO_IMAGE = "minio/minio:RELEASE.2025-04-22T22-12-26Z"
"""A pinned release: MinIO's `latest` moves under a running deployment."""

MINIO_API_PORT = 9000
MINIO_CONSOLE_PORT = 9001
MINIO_URL = f"http://minio:{MINIO_API_PORT}"


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
        # The API (9000) stays on the stack network; only the console is published, to the operator.
        ports=(
            Port("api", MINIO_API_PORT),
            Port("console", MINIO_CONSOLE_PORT, "operator", settings.host_ports.minio_console),
        ),
        # The image has no curl; `mc ready local` asks the server itself.
        healthcheck=HealthCheck(test=("CMD", "mc", "ready", "local"), interval=10, start_period=30),
        ready_timeout=120,
        stop_grace=30,
        limits=settings.limits("minio", Limits(cpus=0.5, memory_mb=512)),
        backup=BackupSpec({"MC_HOST_source": _root_alias(settings)}),
    )


def _root_alias(settings: Settings) -> SecretStr:
    """`mc`'s alias for the server as root, in its URL form (the backup job's `mc mirror` reads every bucket)."""
    user = quote(settings.minio_root_user, safe="")
    password = quote(settings.minio_root_password.get_secret_value(), safe="")
    return SecretStr(f"http://{user}:{password}@minio:{MINIO_API_PORT}")
