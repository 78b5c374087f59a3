"""The one-shot steps on Docker: each `OneShotSpec` becomes a pulumi-command `OneShot` on the engine's host.

A step runs in a new container of its service's image on the stack network, or inside the service's running
container (`in_service`); its `reruns` become the command's `triggers` (a new image id, a new container id, a
setting's value), which make pulumi-command replace it and run `create` again.

A step that runs once (`on_input_change`, the seed) must keep a stable command line: pulumi-command runs `update`
(or `create` again, when there is no `update`) on any input change, and `create` again on a replacement. So it does
not run the image id: it runs the stack's local tag `localhost/<project>-<stack>-<service>:<name>`, which a
`docker.Tag` moves to each new image (the tag resource, not the step, changes with the image; upstream's
`resourceDockerTagDelete` and `Read` are no-ops: kreuzwerker/terraform-provider-docker
`internal/provider/resource_docker_tag_funcs.go`); a change of its stdin (a rotated `postgresPassword`) runs
`on_input_change`, a no-op that says how to run it again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker
from pydantic import SecretStr

from ..naming import StackNames
from ..settings import Settings
from ..specs.edge import upstreams_script
from ..specs.model import NewImage, NewInstance, OneShotSpec, Setting
from .containers import ServiceContainer
from .oneshot import InNewContainer, InRunningContainer, OneShot, OneShotArgs

COMPONENT_NAMES = {"seed-data": "seed"}
"""The logical names the steps that run a local tag registered before the split (their URNs): the seed's component
is `seed`, its tag `seed-image` and its command `seed-data-command`. Renaming them would replace the command, and
a replaced command runs again: the seed would seed twice."""


@dataclass(frozen=True)
class StepContext:
    """What a step's rendering reads from the resources rendered before it."""

    settings: Settings
    names: StackNames
    network_name: pulumi.Input[str]
    provider: docker.Provider
    image_id: Callable[[str], pulumi.Input[str]]
    """The pulled image id of a service."""
    container_ids: Mapping[str, pulumi.Input[str]]
    """The id of each rendered container, by logical name (a service's is its replica 1)."""
    done: Mapping[str, pulumi.Resource]
    """What a dependant waits for, by service or step name: a `ServiceContainer`, a `OneShot`."""


def _triggers(step: OneShotSpec, context: StepContext) -> list[pulumi.Input[str]]:
    triggers: list[pulumi.Input[str]] = []
    for rerun in step.reruns:
        if isinstance(rerun, NewImage):
            triggers.append(context.image_id(step.service))
        elif isinstance(rerun, NewInstance):
            triggers.append(context.container_ids[rerun.service])
        elif isinstance(rerun, Setting):
            triggers.append(rerun.value)
    return triggers


def step_args(
    step: OneShotSpec,
    context: StepContext,
    image: pulumi.Input[str] | None = None,
    also_after: tuple[pulumi.Resource, ...] = (),
) -> OneShotArgs:
    """The step as a command: in a new container of `image` (its service's image id by default) or in the
    service's running container."""
    where: InNewContainer | InRunningContainer
    if step.in_service:
        where = InRunningContainer(context.names.physical(step.service), skip_if_absent=step.skip_if_absent)
    else:
        where = InNewContainer(context.image_id(step.service) if image is None else image, context.network_name)
    return OneShotArgs(
        settings=context.settings,
        names=context.names,
        where=where,
        script=step.script,
        stdin=step.stdin,
        triggers=_triggers(step, context),
        on_update=step.on_input_change,
        depends_on=[*(context.done[name] for name in step.after), *also_after],
    )


def local_tag(names: StackNames, service: str, component: str) -> str:
    """The stack's local tag of a service's current image: a stable name, never pulled (no registry answers
    `localhost/…` on a Docker host)."""
    return f"localhost/{names.physical(service)}:{component}"


def seed_image(names: StackNames) -> str:
    """The seed step's image: the stack's local tag of its current server image."""
    return local_tag(names, "server", COMPONENT_NAMES["seed-data"])


class SeedData(pulumi.ComponentResource):
    """A step that runs once, and the tag that points it at this update's image of its service (the seed)."""

    step: OneShot
    """The step's command: its dependants wait for it (not for the tag, which is no step of the plan)."""

    def __init__(
        self, name: str, step: OneShotSpec, context: StepContext, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("sentineliq:migrations:SeedData", name, None, opts)
        target = local_tag(context.names, step.service, name)
        tag = docker.Tag(
            f"{name}-image",
            docker.TagArgs(source_image=context.image_id(step.service), target_image=target),
            opts=pulumi.ResourceOptions(parent=self, provider=context.provider),
        )
        self.step = OneShot(
            step.name,
            step_args(step, context, image=target, also_after=(tag,)),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({})


def render_step(step: OneShotSpec, context: StepContext) -> OneShot:
    """The step's resources; returns what its dependants wait for."""
    if step.on_input_change is not None:
        return SeedData(COMPONENT_NAMES.get(step.name, step.name), step, context).step
    return OneShot(step.name, step_args(step, context))


def edge_upstreams(
    settings: Settings,
    names: StackNames,
    edge: ServiceContainer,
    servers: Sequence[ServiceContainer],
    client: ServiceContainer,
) -> OneShot:
    """Points the edge at the app containers of this update, each by its own name (specs/edge.py:
    `upstreams_script`). A Docker step, outside the plan: its script names containers, which only this target has.

    It depends on every app container, so in a deploy it runs once each new one is healthy (`wait`), and the
    engine deletes the containers they replace at the end of the update, after it: an old container is stopped
    only once the edge no longer sends it anything. A new container that never turns healthy fails `pulumi up`
    before this step: the edge never routes to it.
    """
    script = pulumi.Output.all(client.container_name, *(server.container_name for server in servers)).apply(
        lambda values: upstreams_script(servers=[str(v) for v in values[1:]], client=str(values[0]))
    )
    return OneShot(
        "edge-upstreams",
        OneShotArgs(
            settings=settings,
            names=names,
            where=InRunningContainer(edge.container_name),
            script=script,
            stdin=SecretStr(""),
            depends_on=[edge, *servers, client],
            # A new edge container (its configuration changed) starts without the file: write it again.
            triggers=[edge.container_id],
        ),
    )
