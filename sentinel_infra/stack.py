"""The composition root: the stack's target-neutral specs, handed to the target's renderer.

Every service is a spec (`sentinel_infra.specs`); the Docker renderer (`sentinel_infra.docker`) turns them into
its resources. This is the only module that knows which renderers exist.
"""

from __future__ import annotations

import pulumi

from .docker.renderer import render_stack
from .naming import StackNames
from .settings import Settings
from .specs.client import client
from .specs.edge import edge
from .specs.elasticsearch import elasticsearch
from .specs.kibana import kibana
from .specs.logstash import logstash
from .specs.minio import minio
from .specs.model import ServiceSpec
from .specs.postgres import postgres
from .specs.redis import redis
from .specs.server import server


def service_specs(settings: Settings) -> dict[str, ServiceSpec]:
    """Every service of the stack, by name (a target renders each once; Docker adds the server's replicas)."""
    builders = (postgres, redis, minio, elasticsearch, logstash, kibana, server, client, edge)
    return {spec.name: spec for spec in (build(settings) for build in builders)}


def build_stack(settings: Settings) -> dict[str, pulumi.Input[object]]:
    """Declare every resource of the stack and return the stack outputs."""
    return render_stack(settings, StackNames.current(), service_specs(settings))
