"""The report `status` prints for either target: a row per container or pod, and the exit code."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class ServiceStatus:
    service: str
    container: str
    state: str
    """running, exited, restarting, … or missing."""
    health: str
    """healthy, unhealthy, starting, or none."""
    image: str
    uptime_seconds: int | None

    @property
    def ok(self) -> bool:
        """Running and healthy; or, for a Kubernetes Job's pod (a one-shot step, a backup run), succeeded."""
        return (self.state == "running" and self.health == "healthy") or self.state == "succeeded"


def duration(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    return f"{minutes}m{seconds}s" if minutes else f"{seconds}s"


def table(statuses: list[ServiceStatus]) -> str:
    rows = [("SERVICE", "CONTAINER", "STATE", "HEALTH", "UPTIME", "IMAGE")]
    rows += [(s.service, s.container, s.state, s.health, duration(s.uptime_seconds), s.image) for s in statuses]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in rows
    )


def report(statuses: list[ServiceStatus], stack: str, as_json: bool) -> int:
    """Print the statuses (a table, or JSON for scripts); 0 when every row is ok, else 1."""
    healthy = all(s.ok for s in statuses)
    if as_json:
        rows = [{**asdict(s), "ok": s.ok} for s in statuses]
        print(json.dumps({"stack": stack, "healthy": healthy, "services": rows}, indent=2))
    else:
        print(table(statuses))
        print(f"\nstack {stack}: {'all services healthy' if healthy else 'NOT HEALTHY'}")
    return 0 if healthy else 1
