"""The data tier: PostgreSQL 16, Redis 7 and MinIO, as specs for the generic service container."""

from __future__ import annotations

import json
import shlex
from urllib.parse import quote

import pulumi
from pydantic import SecretStr

from .naming import StackNames
from .oneshot import InNewContainer, OneShotArgs
from .service import FileUpload, HealthCheck, PublishedPort, ServiceSpec, VolumeMount, shell_check
from .settings import MINIO_APP_USER, Limits, Settings

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


MINIO_URL = f"http://minio:{MINIO_API_PORT}"


def minio_app_policy(bucket: str) -> dict[str, object]:
    """The application user's only permissions: list its bucket, read, write and delete objects in it."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["s3:GetBucketLocation", "s3:ListBucket", "s3:ListBucketMultipartUploads"],
                "Resource": [f"arn:aws:s3:::{bucket}"],
            },
            {
                "Effect": "Allow",
                "Action": [
                    "s3:GetObject",
                    "s3:PutObject",
                    "s3:DeleteObject",
                    "s3:AbortMultipartUpload",
                    "s3:ListMultipartUploadParts",
                ],
                "Resource": [f"arn:aws:s3:::{bucket}/*"],
            },
        ],
    }


def minio_setup_script(bucket: str) -> str:
    """Creates the bucket, the application's policy and user, and attaches one to the other; every step is
    idempotent (`mb --ignore-existing`; `policy create` and `user add` overwrite; `mc` treats an attachment that is
    already in effect as done, cmd/admin-policy-attach.go in minio/mc).

    The root credentials reach `mc` in a private config folder (`MC_CONFIG_DIR`, removed on exit), not in
    `MC_HOST_*`, whose parser splits on `:` and would break a password containing one (cmd/config.go,
    `parseEnvURLStr`); the application's password reaches `mc admin user add` on its stdin, which it reads when
    the secret key argument is left out (cmd/admin-user-add.go, `fetchUserKeys`), so no secret is an argument.
    """
    target = shlex.quote(f"stack/{bucket}")
    user = shlex.quote(MINIO_APP_USER)
    return f"""set -eu
umask 077
IFS= read -r config
IFS= read -r policy
IFS= read -r app_password
MC_CONFIG_DIR=$(mktemp -d)
export MC_CONFIG_DIR
trap 'rm -rf "$MC_CONFIG_DIR"' EXIT
printf '%s\\n' "$config" > "$MC_CONFIG_DIR/config.json"
printf '%s\\n' "$policy" > "$MC_CONFIG_DIR/policy.json"
mc mb --ignore-existing {target}
mc admin policy create stack {user} "$MC_CONFIG_DIR/policy.json"
printf '%s\\n' "$app_password" | mc admin user add stack {user}
mc admin policy attach stack {user} --user {user}
"""


def minio_setup_input(settings: Settings) -> SecretStr:
    """The setup step's stdin: mc's config with the root alias `stack`, the policy, the application's password."""
    config = {
        "version": "10",
        "aliases": {
            "stack": {
                "url": MINIO_URL,
                "accessKey": settings.minio_root_user,
                "secretKey": settings.minio_root_password.get_secret_value(),
                "api": "s3v4",
                "path": "auto",
            }
        },
    }
    password = settings.minio_app_password.get_secret_value()
    lines = [json.dumps(config), json.dumps(minio_app_policy(settings.s3_bucket)), password]
    return SecretStr("\n".join(lines) + "\n")


def minio_setup(
    settings: Settings,
    names: StackNames,
    image_id: pulumi.Input[str],
    network_name: pulumi.Input[str],
    minio: pulumi.CustomResource,
) -> OneShotArgs:
    """The bucket and the application's least-privilege user, with `mc` from the MinIO image itself.

    It runs once MinIO is healthy, again when its input changes (root or application password, bucket: stdin and
    script) or the MinIO container is new.
    """
    return OneShotArgs(
        settings=settings,
        names=names,
        where=InNewContainer(image_id, network_name),
        script=minio_setup_script(settings.s3_bucket),
        stdin=minio_setup_input(settings),
        triggers=[minio.id],
        depends_on=[minio],
    )


def data_services(settings: Settings) -> list[ServiceSpec]:
    return [postgres(settings), redis(settings), minio(settings)]
