"""The composition root: the stack's target-neutral specs, handed to the target's renderer.

Every service and one-shot step is a spec (`sentinel_infra.specs`), ordered by the plan; the Docker renderer
(`sentinel_infra.docker`) or the Kubernetes renderer (`sentinel_infra.kubernetes`, `sentineliq:platform`) turns
them into its resources. This is the only module that knows which renderers exist.
"""

from __future__ import annotations

import pulumi

from . import kubernetes
from .docker.renderer import render_stack
from .naming import StackNames
from .settings import Settings
from .specs.plan import build_plan


def build_stack(settings: Settings) -> dict[str, pulumi.Input[object]]:
    """Declare every resource of the stack and return the stack outputs."""
    plan = build_plan(settings)
    if settings.platform == "kubernetes":
        return kubernetes.build(settings, StackNames.current(), plan)
    return render_stack(settings, StackNames.current(), plan)
