"""The web client (React SPA on nginx), from the registry: behind the edge, `rolling` like the server."""

from __future__ import annotations

from ..settings import Settings
from .edge import CLIENT_UPSTREAM_PORT, INTERNAL_API_PORT, config_digest
from .model import HealthCheck, Limits, Port, ServiceSpec

CLIENT_PORT = CLIENT_UPSTREAM_PORT


def client(settings: Settings) -> ServiceSpec:
    return ServiceSpec(
        name="client",
        image=f"{settings.image_registry}/saas-client:{settings.client_tag}",
        follow_tag=True,
        env={
            # If nginx proxies API calls, it does so through the edge's in-network entrypoint: the edge's address
            # survives server deploys (nginx resolves a proxy_pass host name once, at start), it re-resolves the
            # replicas on every connection and retries a refused one.
            "REACT_APP_API_BASE_URL": f"http://edge:{INTERNAL_API_PORT}",
            # ... and a new edge (its configuration changed) gets a new client, started after it, so nginx never
            # keeps the address of a removed edge.
            "SENTINELIQ_EDGE_CONFIG": config_digest(settings),
        },
        ports=(Port("http", CLIENT_PORT),),
        rolling=True,
        # nginx:alpine has busybox wget, not curl.
        healthcheck=HealthCheck(
            test=("CMD", "wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{CLIENT_PORT}/"),
            interval=10,
            start_period=20,
        ),
        ready_timeout=90,
        stop_grace=15,
        after=("server", "edge"),
        # nginx proxies API calls to the edge's in-network entrypoint.
        talks_to=("edge",),
        # nginx's master starts as root, prepares its cache directories (CHOWN, DAC_OVERRIDE) and runs its
        # workers as the nginx user (SETUID, SETGID); port 3000 needs no NET_BIND_SERVICE.
        cap_add=("CHOWN", "DAC_OVERRIDE", "SETGID", "SETUID"),
        limits=settings.limits("client", Limits(cpus=0.5, memory_mb=512)),
    )
