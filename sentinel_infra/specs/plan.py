"""The plan: every service and one-shot step of a stack, and the one order they start in.

The start order lives in one place: each spec's `after` (services ready, steps done). `build_plan` collects the
specs of a configuration, checks that every name they refer to exists and that the order has no cycle, and sorts
them topologically; each target renders in plan order and turns `after` into its own dependencies
(tests/test_specs.py checks that the Docker target registers exactly the plan's edges).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..settings import Settings
from .backup import backup_jobs
from .client import client
from .edge import edge
from .elastic_setup import elastic_setup_step
from .elasticsearch import elasticsearch
from .kibana import kibana
from .logstash import logstash
from .migrate import migrate_step, seed_step
from .minio import minio
from .minio_setup import minio_setup_step
from .model import NewInstance, OneShotSpec, ServiceSpec
from .postgres import postgres
from .redis import redis
from .rotation import elastic_password_step, postgres_password_step
from .server import server

SERVICES = (postgres, redis, minio, elasticsearch, logstash, kibana, server, client, edge)
"""Every service of the stack, in the order they are declared (and listed by `status`)."""


class PlanError(ValueError):
    """The specs refer to a name that does not exist, or their start order has a cycle."""


@dataclass(frozen=True)
class Plan:
    services: Mapping[str, ServiceSpec]
    steps: Mapping[str, OneShotSpec]
    replicas: Mapping[str, tuple[ServiceSpec, ...]]
    """A service's further instances (the server's `server-2`, ...); a target that
    scales a service by itself (Kubernetes) needs only their count."""
    backups: tuple[ServiceSpec, ...]
    """The backup jobs, one per data service that declares a backup (none with `backup.enabled` off)."""
    order: tuple[str, ...]
    """Services and steps, each after everything its `after` names."""

    def after(self, name: str) -> tuple[str, ...]:
        spec = self.services.get(name) or self.steps[name]
        return spec.after


def steps(settings: Settings) -> list[OneShotSpec]:
    """Every one-shot step of a configuration (the seed only with `seedData`)."""
    found = [
        elastic_password_step(settings),
        postgres_password_step(settings),
        elastic_setup_step(settings),
        migrate_step(settings),
        minio_setup_step(settings),
    ]
    if settings.seed_data:
        found.append(seed_step(settings))
    return found


def topological(after: Mapping[str, tuple[str, ...]]) -> tuple[str, ...]:
    """The names in an order where each comes after everything it names (ties in the mapping's order)."""
    order: list[str] = []
    placed: set[str] = set()
    waiting = dict(after)
    while waiting:
        ready = [name for name, upstream in waiting.items() if set(upstream) <= placed]
        if not ready:
            raise PlanError(f"the start order has a cycle among {', '.join(sorted(waiting))}")
        for name in ready:
            order.append(name)
            placed.add(name)
            del waiting[name]
    return tuple(order)


def _check_names(services: Mapping[str, ServiceSpec], steps: Mapping[str, OneShotSpec]) -> None:
    known = {*services, *steps}
    problems = []
    every: list[ServiceSpec | OneShotSpec] = [*services.values(), *steps.values()]
    for spec in every:
        problems += [
            f"{spec.name}: starts after {name}, which does not exist" for name in spec.after if name not in known
        ]
    for service in services.values():
        problems += [
            f"{service.name}: talks to {name}, which is no service" for name in service.talks_to if name not in services
        ]
    for step in steps.values():
        used = [step.service, *step.talks_to, *(r.service for r in step.reruns if isinstance(r, NewInstance))]
        problems += [f"{step.name}: runs with {name}, which is no service" for name in used if name not in services]
    clashes = set(services) & set(steps)
    problems += [f"{name}: both a service and a step" for name in sorted(clashes)]
    if problems:
        raise PlanError("; ".join(problems))


def make_plan(
    services: list[ServiceSpec],
    steps: list[OneShotSpec],
    replicas: Mapping[str, tuple[ServiceSpec, ...]],
    backups: list[ServiceSpec],
) -> Plan:
    """A plan of these specs; `PlanError` when a name is unknown, taken twice, or the order has a cycle."""
    by_name = {spec.name: spec for spec in services}
    steps_by_name = {step.name: step for step in steps}
    if len(by_name) != len(services) or len(steps_by_name) != len(steps):
        raise PlanError("two specs share a name")
    _check_names(by_name, steps_by_name)
    after = {name: spec.after for name, spec in by_name.items()} | {
        name: step.after for name, step in steps_by_name.items()
    }
    order = topological(after)
    return Plan(by_name, steps_by_name, replicas, tuple(backups), order)


def build_plan(settings: Settings) -> Plan:
    """The plan of a configuration."""
    services = [build(settings) for build in SERVICES]
    replicas = {"server": tuple(server(settings) for _ in range(2, settings.server_replicas + 1))}
    return make_plan(services, steps(settings), replicas, backup_jobs(settings, services))
