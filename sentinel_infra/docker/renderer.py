"""The whole stack on Docker: platform, images, containers and one-shot steps, rendered in the plan's order.

Every start-order edge of the plan (a spec's `after`) is a `depends_on` on the upstream container, whose `wait`
returns only once it is healthy (compose's `service_healthy`), or on the upstream step's command; what has no edge
between it starts concurrently. `python -m sentinel_infra graph` draws the result (docs/architecture.md).

After the plan, the Docker target's own step `edge-upstreams` points the edge at the app containers by name (see
steps.py): with Kubernetes, a Service and readiness probes do that.
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi

from ..naming import StackNames
from ..settings import Settings
from ..specs.model import ServiceSpec
from ..specs.plan import Plan
from .backups import backup_directory, backup_path
from .containers import HostDirectory, ServiceContainer, ServiceContainerArgs
from .images import ImageSet, ImageSetArgs
from .platform import DockerPlatform, DockerPlatformArgs
from .steps import StepContext, edge_upstreams, render_step


class _Containers:
    """Renders service specs into containers, by logical name."""

    def __init__(self, platform: DockerPlatform, images: ImageSet, names: StackNames, public_address: str) -> None:
        self._platform, self._images, self._names = platform, images, names
        self._public_address = public_address
        self.containers: dict[str, ServiceContainer] = {}
        self.container_ids: dict[str, pulumi.Output[str]] = {}
        """Each container's id by logical name (what a step that reruns on a new instance keys on)."""
        self.of_service: dict[str, list[ServiceContainer]] = {}
        """Each service's containers (the server's replicas), in order."""

    def add(
        self,
        spec: ServiceSpec,
        after: Sequence[pulumi.Resource],
        name: str | None = None,
        host_directories: Sequence[HostDirectory] = (),
    ) -> ServiceContainer:
        """Render a spec; `name` is the logical name when it differs from the service's (a replica, `server-2`);
        `after` holds what the spec's `after` names, rendered."""
        name = name or spec.name
        service = ServiceContainer(
            name,
            ServiceContainerArgs(
                spec=spec,
                names=self._names,
                image_id=self._images.image_id(spec.name),
                network_name=self._platform.network.name,
                volume_names={key: volume.name for key, volume in self._platform.volumes.items()},
                provider=self._platform.provider,
                public_address=self._public_address,
                depends_on=list(after),
                host_directories=host_directories,
            ),
        )
        self.containers[name] = service
        self.container_ids[name] = service.container_id
        self.of_service.setdefault(spec.name, []).append(service)
        return service


def _on_host(settings: Settings, port: int) -> str:
    """How an operator reaches a port bound to the Docker host's loopback."""
    ssh = settings.ssh
    if ssh is None:
        return f"http://127.0.0.1:{port}"
    return f"http://127.0.0.1:{port} after: ssh -p {ssh.port} -N -L {port}:127.0.0.1:{port} {ssh.user}@{ssh.host}"


def render_stack(settings: Settings, names: StackNames, plan: Plan) -> dict[str, pulumi.Input[object]]:
    """Declare every Docker resource of the plan and return the stack outputs."""
    volumes = list(dict.fromkeys(mount.volume for spec in plan.services.values() for mount in spec.volumes))
    platform = DockerPlatform(names.project, DockerPlatformArgs(settings=settings, names=names, volumes=volumes))
    jobs = plan.backups
    images = ImageSet("images", ImageSetArgs(specs=[*plan.services.values(), *jobs], provider=platform.provider))
    services = _Containers(platform, images, names, settings.public_bind_address)
    # What a dependant waits for, by service or step name: a container (healthy by its `wait`), a command.
    done: dict[str, pulumi.Resource] = {}
    context = StepContext(
        settings=settings,
        names=names,
        network_name=platform.network.name,
        provider=platform.provider,
        image_id=images.image_id,
        container_ids=services.container_ids,
        done=done,
    )
    for name in plan.order:
        if name in plan.steps:
            done[name] = render_step(plan.steps[name], context)
            continue
        spec = plan.services[name]
        after = [done[upstream] for upstream in spec.after]
        done[name] = services.add(spec, after)
        # Replica 1 keeps the logical name `server` (its URN, so an existing stack does not replace it for nothing).
        for number, replica in enumerate(plan.replicas.get(name, ()), start=2):
            services.add(replica, after, name=f"{name}-{number}")
    edge_upstreams(
        settings, names, services.containers["edge"], services.of_service["server"], services.containers["client"]
    )
    for job in jobs:
        services.add(
            job, [done[upstream] for upstream in job.after], host_directories=[backup_directory(settings, names)]
        )

    return {
        "appUrl": settings.app_url,
        "apiUrl": settings.api_url,
        "kibana": _on_host(settings, settings.host_ports.kibana),
        "minioConsole": _on_host(settings, settings.host_ports.minio_console),
        "network": platform.network.name,
        "volumes": {key: volume.name for key, volume in platform.volumes.items()},
        "containers": {name: service.container_name for name, service in services.containers.items()},
        "images": {service: images.reference(service) for service in images.images},
        "imageDigests": {service: images.digest(service) for service in images.images},
        "backups": f"{backup_path(settings, names)} on the Docker host" if jobs else "disabled",
    }
