"""The application: the Wasp API server (Node.js) and the web client (React SPA on nginx), from the registry."""

from __future__ import annotations

from .data_services import MINIO_API_PORT, database_url, redis_url
from .logging_stack import LOGSTASH_PORT
from .service import EnvValue, HealthCheck, PublishedPort, ServiceSpec
from .settings import Limits, Settings

SERVER_PORT = 3001
CLIENT_PORT = 3000

SERVER_HEALTH = (
    "CMD",
    "node",
    "-e",
    f"fetch('http://127.0.0.1:{SERVER_PORT}/health').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))",
)
"""Node 18+ has fetch; the image needs no curl."""


def server(settings: Settings) -> ServiceSpec:
    env: dict[str, EnvValue] = {
        "NODE_ENV": "production",
        "PORT": str(SERVER_PORT),
        "DATABASE_URL": database_url(settings),
        "REDIS_URL": redis_url(settings),
        "S3_ENDPOINT": f"http://minio:{MINIO_API_PORT}",
        "S3_REGION": "us-east-1",
        "S3_FORCE_PATH_STYLE": "true",
        "S3_BUCKET": settings.s3_bucket,
        "S3_ACCESS_KEY_ID": settings.minio_root_user,
        "S3_SECRET_ACCESS_KEY": settings.minio_root_password,
        "LOGSTASH_HOST": f"logstash:{LOGSTASH_PORT}",
        "JWT_SECRET": settings.jwt_secret,
        "WASP_WEB_CLIENT_URL": settings.app_url,
        "WASP_SERVER_URL": settings.api_url,
    }
    if settings.sentry_dsn is not None:
        env["SENTRY_DSN"] = settings.sentry_dsn
    return ServiceSpec(
        name="server",
        image=f"{settings.image_registry}/saas-server:{settings.server_tag}",
        track_registry_digest=True,
        env=env,
        ports=(PublishedPort(SERVER_PORT, settings.host_ports.server, settings.public_bind_address),),
        healthcheck=HealthCheck(test=SERVER_HEALTH, interval=10, start_period=60),
        wait_timeout=180,
        stop_grace=30,
        depends_on=("postgres", "redis", "minio", "elasticsearch", "logstash"),
        # A Node.js process on a port above 1024: no capability needed.
        limits=settings.limits("server", Limits(cpus=2, memory_mb=4096)),
    )


def client(settings: Settings) -> ServiceSpec:
    return ServiceSpec(
        name="client",
        image=f"{settings.image_registry}/saas-client:{settings.client_tag}",
        track_registry_digest=True,
        # nginx proxies the SPA's API calls to the server on the stack network.
        env={"REACT_APP_API_BASE_URL": f"http://server:{SERVER_PORT}"},
        ports=(PublishedPort(CLIENT_PORT, settings.host_ports.client, settings.public_bind_address),),
        # nginx:alpine has busybox wget, not curl.
        healthcheck=HealthCheck(
            test=("CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{CLIENT_PORT}/"),
            interval=10,
            start_period=20,
        ),
        wait_timeout=90,
        stop_grace=15,
        depends_on=("server",),
        # nginx's master starts as root, prepares its cache directories (CHOWN, DAC_OVERRIDE) and runs its
        # workers as the nginx user (SETUID, SETGID); port 3000 needs no NET_BIND_SERVICE.
        cap_add=("CHOWN", "DAC_OVERRIDE", "SETGID", "SETUID"),
        limits=settings.limits("client", Limits(cpus=0.5, memory_mb=512)),
    )
