"""`python -m sentinel_infra status --stack NAME`: the seed's `prod.sh status`, asked of Docker itself.

Every container the program creates carries `io.sentineliq.project`, `io.sentineliq.stack` and
`io.sentineliq.service` labels. This command finds a stack's containers by those labels on the stack's Docker
host (`sentineliq:dockerHost` from `Pulumi.<stack>.yaml`, or the local engine) and reports, for each of the nine
services (every container of one: the server's replicas, and the old and new containers during a deploy) and
any other labelled container (the backup jobs), its container, state, health, image and uptime.
It exits 0 when every service is running and healthy, 1 otherwise, 2 when Docker cannot be asked.
A stack with `sentineliq:platform: kubernetes` is asked of its cluster instead (ops/kubernetes_status.py).
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..docker.platform import LOCAL_ENGINE_ENVIRONMENT
from ..naming import LABEL_PREFIX
from ..settings import NAMESPACE, SERVICE_NAMES
from . import kubernetes_status
from .stack_file import stack_file_config
from .status_report import ServiceStatus, report


class DockerUnavailableError(RuntimeError):
    pass


def _docker(host: str | None, *args: str) -> str:
    command = ["docker", *(["--host", host] if host else []), *args]
    # Without a host: the provider's local engine, never the docker CLI's current context.
    environment = {**os.environ, **LOCAL_ENGINE_ENVIRONMENT}
    try:
        result = subprocess.run(  # noqa: S603
            command, capture_output=True, text=True, check=False, timeout=60, env=environment
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise DockerUnavailableError(f"cannot run docker: {error}") from error
    if result.returncode != 0:
        raise DockerUnavailableError(result.stderr.strip() or f"docker {args[0]} failed")
    return result.stdout


def _uptime(state: dict[str, Any], now: datetime) -> int | None:
    if state.get("Status") != "running":
        return None
    started = str(state.get("StartedAt", ""))[:26].rstrip("Z")  # RFC 3339 with nanoseconds: keep microseconds
    return max(0, int((now - datetime.fromisoformat(started).replace(tzinfo=UTC)).total_seconds()))


def collect(stack: str, docker_host: str | None, project: str = NAMESPACE) -> list[ServiceStatus]:
    """The status of every container of the stack, the expected services first (a missing one as `missing`)."""
    ids = _docker(
        docker_host,
        "ps",
        "--all",
        "--quiet",
        "--filter",
        f"label={LABEL_PREFIX}.project={project}",
        "--filter",
        f"label={LABEL_PREFIX}.stack={stack}",
    ).split()
    found: dict[str, list[ServiceStatus]] = {}
    now = datetime.now(UTC)
    for container in json.loads(_docker(docker_host, "inspect", *ids)) if ids else []:
        labels = container["Config"].get("Labels") or {}
        state = container["State"]
        service = labels.get(f"{LABEL_PREFIX}.service", container["Name"].lstrip("/"))
        status = ServiceStatus(
            service=service,
            container=container["Name"].lstrip("/"),
            state=state.get("Status", "unknown"),
            health=(state.get("Health") or {}).get("Status", "none"),
            image=container["Config"].get("Image", ""),
            uptime_seconds=_uptime(state, now),
        )
        found.setdefault(service, []).append(status)
    missing = {name: [ServiceStatus(name, "-", "missing", "-", "-", None)] for name in SERVICE_NAMES}
    names = [*SERVICE_NAMES, *sorted(found.keys() - set(SERVICE_NAMES))]
    return [s for name in names for s in sorted(found.get(name) or missing[name], key=lambda s: s.container)]


def run_status(root: Path, stack: str, as_json: bool = False, docker_host: str | None = None) -> int:
    stack_file = root / f"Pulumi.{stack}.yaml"
    config = stack_file_config(stack_file) if stack_file.exists() else {}
    if config.get(f"{NAMESPACE}:platform") == "kubernetes":
        return kubernetes_status.run_status(config, stack, as_json)
    if docker_host is None:
        docker_host = config.get(f"{NAMESPACE}:dockerHost")
    try:
        statuses = collect(stack, docker_host)
    except DockerUnavailableError as error:
        print(f"status: cannot ask Docker{f' at {docker_host}' if docker_host else ''}: {error}")
        return 2
    return report(statuses, stack, as_json)
