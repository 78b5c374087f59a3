"""The entry point on a cluster: one `networking.k8s.io/v1` Ingress per public host (appUrl's, apiUrl's), its TLS
certificate from a cert-manager ClusterIssuer, and the Docker edge's protections where the controller has them.

- `nginx` (ingress-nginx): the body limit (`proxy-body-size`) on both hosts, the per-client rate limit on the API
  (`limit-rps`, with `limit-burst-multiplier` for the burst), the edge's security response headers from a ConfigMap
  (`custom-headers`; the controller's `global-allowed-response-headers` must list them), HSTS from the controller
  (on by default for TLS hosts: max-age one year, includeSubDomains), HTTP redirected to HTTPS (its default).
- `traefik`: the edge's own middlewares (edge.py, the same headers, rate limit and body limit) as
  `traefik.io/v1alpha1` Middleware objects, attached with `router.middlewares`. Traefik's CRDs must be installed
  (its Helm chart does).
- any other class: the Ingress and its TLS only; the README says which protections are then missing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pulumi
import pulumi_kubernetes as k8s

from ..naming import StackNames
from ..settings import Settings
from ..specs.edge import HSTS_SECONDS, _middlewares
from .labels import labels

NGINX = "nginx.ingress.kubernetes.io"
TRAEFIK = "traefik.ingress.kubernetes.io"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
"""What the Docker edge's `security-headers` middleware sends besides HSTS (edge.py: contentTypeNosniff,
frameDeny, referrerPolicy, permissionsPolicy)."""


@dataclass(frozen=True)
class Route:
    """A public host and the Service (and port name) behind it."""

    service: str
    host: str
    port: str
    rate_limited: bool


def routes(settings: Settings) -> list[Route]:
    return [
        Route("client", urlsplit(settings.app_url).hostname or "", "http", rate_limited=False),
        Route("server", urlsplit(settings.api_url).hostname or "", "http", rate_limited=True),
    ]


def nginx_annotations(settings: Settings, route: Route, namespace: str) -> dict[str, str]:
    edge = settings.edge
    annotations = {
        f"{NGINX}/proxy-body-size": f"{edge.max_body_mb}m",
        f"{NGINX}/ssl-redirect": "true",
        f"{NGINX}/custom-headers": f"{namespace}/security-headers",
    }
    if route.rate_limited:
        annotations[f"{NGINX}/limit-rps"] = str(edge.rate_limit_average)
        # ingress-nginx's burst is a multiple of the rate: the smallest one that allows the configured burst.
        annotations[f"{NGINX}/limit-burst-multiplier"] = str(
            max(1, math.ceil(edge.rate_limit_burst / edge.rate_limit_average))
        )
    return annotations


def traefik_middlewares(settings: Settings) -> dict[str, dict[str, Any]]:
    """The edge's middlewares that make sense in front of a cluster's Services (the retry is the Service's job)."""
    chosen = _middlewares(settings)
    headers = dict(chosen["security-headers"]["headers"])
    # On a cluster every host is served with cert-manager's certificate, whatever edge.tls (a Docker setting) says:
    # HSTS always, as ingress-nginx sends it by default; Traefik terminates TLS itself, so no forced header.
    headers.update(stsSeconds=HSTS_SECONDS, stsIncludeSubdomains=True, forceSTSHeader=False)
    return {
        "security-headers": {"headers": headers},
        "api-rate-limit": chosen["api-rate-limit"],
        "body-limit": chosen["body-limit"],
    }


def traefik_annotations(route: Route, namespace: str) -> dict[str, str]:
    names = ["security-headers", *(["api-rate-limit"] if route.rate_limited else []), "body-limit"]
    return {
        f"{TRAEFIK}/router.tls": "true",
        f"{TRAEFIK}/router.middlewares": ",".join(f"{namespace}-{name}@kubernetescrd" for name in names),
    }


@dataclass(frozen=True)
class EntryArgs:
    settings: Settings
    names: StackNames
    namespace: str
    provider: k8s.Provider
    depends_on: list[pulumi.Resource]


class Entry(pulumi.ComponentResource):
    """The Ingresses of the client and the server, and what their controller needs for the edge's protections."""

    def __init__(self, name: str, args: EntryArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sentineliq:kubernetes:Entry", name, None, opts)
        settings, names, namespace = args.settings, args.names, args.namespace
        on_cluster = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=args.depends_on)
        ingress_class = settings.kubernetes.ingress_class
        extras: list[pulumi.Resource] = []
        if ingress_class == "nginx":
            extras.append(
                k8s.core.v1.ConfigMap(
                    f"{name}-security-headers",
                    metadata={"name": "security-headers", "namespace": namespace, "labels": labels(names)},
                    data=SECURITY_HEADERS,
                    opts=on_cluster,
                )
            )
        elif ingress_class == "traefik":
            for middleware, spec in traefik_middlewares(settings).items():
                extras.append(
                    k8s.apiextensions.CustomResource(
                        f"{name}-{middleware}",
                        api_version="traefik.io/v1alpha1",
                        kind="Middleware",
                        metadata={"name": middleware, "namespace": namespace, "labels": labels(names)},
                        spec=spec,
                        opts=on_cluster,
                    )
                )
        self.ingresses = {}
        for route in routes(settings):
            annotations = {"cert-manager.io/cluster-issuer": settings.kubernetes.cluster_issuer}
            if ingress_class == "nginx":
                annotations.update(nginx_annotations(settings, route, namespace))
            elif ingress_class == "traefik":
                annotations.update(traefik_annotations(route, namespace))
            self.ingresses[route.service] = k8s.networking.v1.Ingress(
                f"{name}-{route.service}",
                metadata={
                    "name": route.service,
                    "namespace": namespace,
                    "labels": labels(names, route.service),
                    "annotations": annotations,
                },
                spec={
                    "ingress_class_name": ingress_class,
                    "tls": [{"hosts": [route.host], "secret_name": f"{route.service}-tls"}],
                    "rules": [
                        {
                            "host": route.host,
                            "http": {
                                "paths": [
                                    {
                                        "path": "/",
                                        "path_type": "Prefix",
                                        "backend": {"service": {"name": route.service, "port": {"name": route.port}}},
                                    }
                                ]
                            },
                        }
                    ],
                },
                opts=pulumi.ResourceOptions.merge(on_cluster, pulumi.ResourceOptions(depends_on=extras)),
            )
        self.register_outputs({"hosts": [route.host for route in routes(settings)]})
