"""The Wasp API server (Node.js), from the registry: behind the edge, `rolling` (no host port, no fixed name,
replaced start-before-stop), so a tag bump never leaves the edge without a healthy upstream."""

from __future__ import annotations

from ..settings import MINIO_APP_USER, Settings
from .edge import SERVER_HEALTH_PATH, SERVER_UPSTREAM_PORT
from .logstash import LOGSTASH_PORT
from .minio import MINIO_API_PORT
from .model import EnvValue, HealthCheck, Limits, Port, ServiceSpec
from .postgres import database_url
from .redis import redis_url

SERVER_PORT = SERVER_UPSTREAM_PORT

SERVER_HEALTH = (
    "CMD",
    "node",
    "-e",
    f"fetch('http://127.0.0.1:{SERVER_PORT}{SERVER_HEALTH_PATH}')"
    ".then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))",
)
"""Node 18+ has fetch; the image needs no curl."""


def server(settings: Settings) -> ServiceSpec:
    """One replica of the API server (every replica has the network alias `server`; the edge routes to each by its
    container name, see edge.py)."""
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
    seeded = ("seed-data",) if settings.seed_data else ()
    if settings.sentry_dsn is not None:
        env["SENTRY_DSN"] = settings.sentry_dsn
    return ServiceSpec(
        name="server",
        image=f"{settings.image_registry}/saas-server:{settings.server_tag}",
        follow_tag=True,
        env=env,
        ports=(Port("http", SERVER_PORT),),
        rolling=True,
        healthcheck=HealthCheck(test=SERVER_HEALTH, interval=10, start_period=60),
        ready_timeout=180,
        stop_grace=30,
        # Its schema, its bucket and user, and (with seedData) its seed data are in place before it starts.
        after=("postgres", "redis", "minio", "elasticsearch", "logstash", "migrate", "minio-setup", *seeded),
        talks_to=("postgres", "redis", "minio", "logstash"),
        # A Node.js process on a port above 1024: no capability needed.
        limits=settings.limits("server", Limits(cpus=2, memory_mb=4096)),
    )
