"""The application: the Wasp API server (Node.js) and the web client (React SPA on nginx), from the registry.

Both sit behind the edge and are `rolling`: no host port, no fixed name, replaced create-before-delete, so a tag
bump never leaves the edge without a healthy upstream.
"""

from __future__ import annotations

from .data_services import MINIO_API_PORT, database_url, redis_url
from .edge import CLIENT_UPSTREAM_PORT, INTERNAL_API_PORT, SERVER_HEALTH_PATH, SERVER_UPSTREAM_PORT, config_digest
from .edge import server_alias as replica_alias
from .logging_stack import LOGSTASH_PORT
from .service import EnvValue, HealthCheck, ServiceSpec
from .settings import MINIO_APP_USER, Limits, Settings

SERVER_PORT = SERVER_UPSTREAM_PORT
CLIENT_PORT = CLIENT_UPSTREAM_PORT

SERVER_HEALTH = (
    "CMD",
    "node",
    "-e",
    f"fetch('http://127.0.0.1:{SERVER_PORT}{SERVER_HEALTH_PATH}')"
    ".then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))",
)
"""Node 18+ has fetch; the image needs no curl."""


def server(settings: Settings, replica: int = 1) -> ServiceSpec:
    """Replica `replica` (from 1) of the API server: network aliases `server` and `server-<replica>`."""
    env: dict[str, EnvValue] = {
        "NODE_ENV": "production",
        "PORT": str(SERVER_PORT),
        "DATABASE_URL": database_url(settings),
        "REDIS_URL": redis_url(settings),
        "S3_ENDPOINT": f"http://minio:{MINIO_API_PORT}",
        "S3_REGION": "us-east-1",
        "S3_FORCE_PATH_STYLE": "true",
        "S3_BUCKET": settings.s3_bucket,
        # Least privilege: the user the minio-setup step limits to this bucket, never MinIO's root.
        "S3_ACCESS_KEY_ID": MINIO_APP_USER,
        "S3_SECRET_ACCESS_KEY": settings.minio_app_password,
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
        aliases=(replica_alias(replica),),
        rolling=True,
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
        env={
            # If nginx proxies API calls, it does so through the edge's in-network entrypoint: the edge's address
            # survives server deploys (nginx resolves a proxy_pass host name once, at start), it re-resolves the
            # replicas on every connection and retries a refused one.
            "REACT_APP_API_BASE_URL": f"http://edge:{INTERNAL_API_PORT}",
            # ... and a new edge (its configuration changed) gets a new client, started after it, so nginx never
            # keeps the address of a removed edge.
            "SENTINELIQ_EDGE_CONFIG": config_digest(settings),
        },
        rolling=True,
        # nginx:alpine has busybox wget, not curl.
        healthcheck=HealthCheck(
            test=("CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{CLIENT_PORT}/"),
            interval=10,
            start_period=20,
        ),
        wait_timeout=90,
        stop_grace=15,
        depends_on=("server", "edge"),
        # nginx's master starts as root, prepares its cache directories (CHOWN, DAC_OVERRIDE) and runs its
        # workers as the nginx user (SETUID, SETGID); port 3000 needs no NET_BIND_SERVICE.
        cap_add=("CHOWN", "DAC_OVERRIDE", "SETGID", "SETUID"),
        limits=settings.limits("client", Limits(cpus=0.5, memory_mb=512)),
    )
