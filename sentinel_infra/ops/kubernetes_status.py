"""`python -m sentinel_infra status --stack NAME` for a Kubernetes stack: the stack's pods, asked of the cluster.

Every object the program creates carries `app.kubernetes.io/part-of=<project>` and `app.kubernetes.io/instance=<stack>`,
a service's pods `app.kubernetes.io/name=<service>` (issue 11). This command lists those pods in the stack's
namespace (`sentineliq:kubernetes.namespace`, default `sentineliq-<stack>`) with `kubectl`, through the context
`sentineliq:kubernetes.context` (unset: the kubeconfig's current context) of the ambient kubeconfig (KUBECONFIG or
~/.kube/config: a kubeconfig kept as a stack secret cannot be read without the stack's passphrase).

A row per pod: a service's pod is ok when it runs and is Ready (its readiness probe passes); a Job's pod (a one-shot
step, a backup run) when it succeeded. The eight services are always listed, a missing one as `missing` (on
Kubernetes the ingress controller is the edge). Exit 0 when every row is ok, 1 otherwise (a namespace that does not
exist: the stack is not deployed), 2 when the cluster cannot be asked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..settings import NAMESPACE, SERVICE_NAMES, default_namespace
from .status_report import ServiceStatus, report

PART_OF = "app.kubernetes.io/part-of"
INSTANCE = "app.kubernetes.io/instance"
NAME = "app.kubernetes.io/name"

SERVICES = tuple(name for name in SERVICE_NAMES if name != "edge")
"""The services that run as pods: the cluster's ingress controller takes the edge's place."""


class ClusterUnavailableError(RuntimeError):
    """kubectl could not ask the cluster (no kubectl, no such context, unreachable, refused, unauthorised)."""


class NamespaceMissingError(RuntimeError):
    """The stack's namespace does not exist: nothing is deployed there."""


def kubectl(context: str | None, *args: str) -> str:
    """kubectl's output; its last error line as the exception otherwise (kubectl prints no credential there)."""
    command = ["kubectl", *([f"--context={context}"] if context else []), "--request-timeout=30s", *args]
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=90)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ClusterUnavailableError(f"cannot run kubectl: {error}") from error
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        message = lines[-1].strip() if lines else f"kubectl {args[0]} failed ({result.returncode})"
        if "(NotFound)" in message:
            raise NamespaceMissingError(message)
        raise ClusterUnavailableError(message)
    return result.stdout


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def pod_status(pod: Mapping[str, Any], now: datetime) -> ServiceStatus:
    """One pod as a status row: its phase (or why its container waits), its readiness, its image and age."""
    metadata, status = pod.get("metadata") or {}, pod.get("status") or {}
    containers = status.get("containerStatuses") or []
    phase = str(status.get("phase", "Unknown")).lower()
    waits = [(c.get("state") or {}).get("waiting") for c in containers]
    waiting = [str(wait.get("reason", "waiting")) for wait in waits if isinstance(wait, dict)]
    state = f"waiting: {waiting[0]}" if waiting and phase in ("running", "pending") else phase
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    if phase != "running":
        health = "none"
    elif ready:
        health = "healthy"
    elif any(c.get("started") is False for c in containers):
        health = "starting"  # its startup probe has not passed yet
    else:
        health = "unhealthy"
    started = _time(status.get("startTime"))
    running = phase == "running" and started is not None
    specs = (pod.get("spec") or {}).get("containers") or [{}]
    return ServiceStatus(
        service=str((metadata.get("labels") or {}).get(NAME) or metadata.get("name", "?")),
        container=str(metadata.get("name", "?")),
        state=state,
        health=health,
        image=str(specs[0].get("image", "")),
        uptime_seconds=max(0, int((now - started).total_seconds())) if running and started else None,
    )


def collect(stack: str, namespace: str, context: str | None, project: str = NAMESPACE) -> list[ServiceStatus]:
    """The status of every pod of the stack, the eight services first (a missing one as `missing`)."""
    kubectl(context, "get", "namespace", namespace, "--output=name")  # NotFound: nothing is deployed
    selector = f"{PART_OF}={project},{INSTANCE}={stack}"
    pods = kubectl(context, f"--namespace={namespace}", "get", "pods", f"--selector={selector}", "--output=json")
    listed = json.loads(pods)
    now = datetime.now(UTC)
    found: dict[str, list[ServiceStatus]] = {}
    for pod in listed.get("items") or []:
        status = pod_status(pod, now)
        found.setdefault(status.service, []).append(status)
    missing = {name: [ServiceStatus(name, "-", "missing", "-", "-", None)] for name in SERVICES}
    names = [*SERVICES, *sorted(found.keys() - set(SERVICES))]
    return [s for name in names for s in sorted(found.get(name) or missing[name], key=lambda s: s.container)]


def target(config: Mapping[str, str], stack: str) -> tuple[str, str | None]:
    """The stack's namespace and kubeconfig context, from its stack file's config."""
    settings = json.loads(config.get(f"{NAMESPACE}:kubernetes", "{}"))
    return settings.get("namespace") or default_namespace(stack), settings.get("context")


def run_status(config: Mapping[str, str], stack: str, as_json: bool) -> int:
    namespace, context = target(config, stack)
    where = f"namespace {namespace}" + (f" of context {context}" if context else " of the current context")
    try:
        statuses = collect(stack, namespace, context)
    except NamespaceMissingError:
        print(f"status: {where} does not exist: stack {stack} is not deployed (pulumi up)", file=sys.stderr)
        statuses = [ServiceStatus(name, "-", "missing", "-", "-", None) for name in SERVICES]
    except ClusterUnavailableError as error:
        print(f"status: cannot ask Kubernetes ({where}): {error}", file=sys.stderr)
        return 2
    return report(statuses, stack, as_json)
