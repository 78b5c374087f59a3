"""A stand-in Kubernetes API server for the real `kubectl`: the few endpoints `kubectl get` calls (discovery, a
namespace, a namespace's pods by label selector), answering as the API server does, Status objects and all, and
able to fail as it does (a missing namespace, 401, 403, 500, a refused connection once stopped).

Field names and answers follow the API server's JSON (k8s.io/api core/v1 Pod, Namespace; meta/v1 Status,
APIVersions, APIGroupList, APIResourceList). It records every request, so a test can tell which namespace, selector
and cluster (context) `status` asked.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

REASONS = {401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 500: "InternalError"}

RESOURCES = {
    "kind": "APIResourceList",
    "apiVersion": "v1",
    "groupVersion": "v1",
    "resources": [
        {"name": "pods", "singularName": "pod", "namespaced": True, "kind": "Pod", "verbs": ["get", "list"]},
        {"name": "namespaces", "singularName": "namespace", "namespaced": False, "kind": "Namespace", "verbs": ["get"]},
    ],
}


@dataclass
class Cluster:
    namespaces: set[str] = field(default_factory=set)
    pods: list[dict[str, Any]] = field(default_factory=list)
    fault: int | None = None
    """Answer with this HTTP status (401, 403, 500) instead: every request, but a 403 only the namespaced ones
    (RBAC's system:discovery role lets every authenticated user read the discovery endpoints)."""
    requests: list[str] = field(default_factory=list)

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        parts = path.strip("/").split("/")
        if self.fault is not None and (self.fault != 403 or parts[:3] == ["api", "v1", "namespaces"]):
            return self.fault, status(self.fault, f"stand-in fault {self.fault}")
        if parts == ["api"]:
            return 200, {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        if parts == ["apis"]:
            return 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": []}
        if parts == ["api", "v1"]:
            return 200, RESOURCES
        if len(parts) == 4 and parts[:3] == ["api", "v1", "namespaces"]:
            if parts[3] not in self.namespaces:
                return 404, status(404, f'namespaces "{parts[3]}" not found', name=parts[3], kind="namespaces")
            return 200, {"kind": "Namespace", "apiVersion": "v1", "metadata": {"name": parts[3]}}
        if len(parts) == 5 and parts[:3] == ["api", "v1", "namespaces"] and parts[4] == "pods":
            selector = dict(term.split("=", 1) for term in query.get("labelSelector", [""])[0].split(",") if term)
            items = [
                pod
                for pod in self.pods
                if pod["metadata"].get("namespace") == parts[3]
                and all(pod["metadata"].get("labels", {}).get(k) == v for k, v in selector.items())
            ]
            return 200, {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": items}
        return 404, status(404, "the server could not find the requested resource")


def status(code: int, message: str, **details: str) -> dict[str, Any]:
    """A meta/v1 Status, as the API server answers an error."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": REASONS.get(code, "Unknown"),
        "details": details,
        "code": code,
    }


@contextmanager
def serve(cluster: Cluster) -> Iterator[str]:
    """The cluster on a free local port; yields its URL. Stopped (connections refused) on exit."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            cluster.requests.append(self.path)
            code, body = cluster.answer(url.path, parse_qs(url.query))
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def kubeconfig(path: Path, clusters: dict[str, str], current: str) -> Path:
    """A kubeconfig with one context per cluster URL (context name = cluster name)."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": url}} for name, url in clusters.items()],
        "users": [{"name": "ops", "user": {}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": "ops"}} for name in clusters],
        "current-context": current,
    }
    path.write_text(json.dumps(config))
    return path


def pod(
    name: str,
    service: str,
    namespace: str,
    stack: str = "k8s",
    phase: str = "Running",
    ready: bool = True,
    waiting: str | None = None,
    started: bool = True,
    image: str = "postgres:16-alpine",
) -> dict[str, Any]:
    """A pod as the API server lists it: labels as the program sets them, status as the kubelet reports it."""
    state: dict[str, Any] = (
        {"waiting": {"reason": waiting}} if waiting else {"running": {"startedAt": "2026-11-27T08:00:00Z"}}
    )
    if phase in ("Succeeded", "Failed"):
        state = {"terminated": {"exitCode": 0 if phase == "Succeeded" else 1, "reason": "Completed"}}
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/name": service,
                "app.kubernetes.io/part-of": "sentineliq",
                "app.kubernetes.io/instance": stack,
                "app.kubernetes.io/managed-by": "pulumi",
            },
        },
        "spec": {"containers": [{"name": service, "image": image}]},
        "status": {
            "phase": phase,
            "startTime": "2026-11-27T08:00:00Z",
            "conditions": [{"type": "Ready", "status": "True" if ready and phase == "Running" else "False"}],
            "containerStatuses": [
                {"name": service, "ready": ready, "started": started, "restartCount": 0, "image": image, "state": state}
            ],
        },
    }
