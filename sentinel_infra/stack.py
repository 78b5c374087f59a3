"""The whole stack: platform, images and services, wired in their health-gated start order."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi

from .data_services import data_services
from .images import ImageSet, ImageSetArgs
from .naming import StackNames
from .platform import Platform, PlatformArgs
from .service import ServiceContainer, ServiceContainerArgs, ServiceSpec
from .settings import Settings


class _Services:
    """Renders specs in order; a spec's `depends_on` names services rendered before it."""

    def __init__(self, platform: Platform, images: ImageSet, names: StackNames) -> None:
        self._platform, self._images, self._names = platform, images, names
        self.containers: dict[str, ServiceContainer] = {}

    def add(self, spec: ServiceSpec, gates: Sequence[pulumi.Resource] = ()) -> ServiceContainer:
        upstream = [self.containers[name].container for name in spec.depends_on]
        service = ServiceContainer(
            spec.name,
            ServiceContainerArgs(
                spec=spec,
                names=self._names,
                image_id=self._images.image_id(spec.name),
                network_name=self._platform.network.name,
                volume_names={key: volume.name for key, volume in self._platform.volumes.items()},
                provider=self._platform.provider,
                depends_on=[*upstream, *gates],
            ),
        )
        self.containers[spec.name] = service
        return service


def build_stack(settings: Settings) -> dict[str, pulumi.Input[object]]:
    """Declare every resource of the stack and return the stack outputs."""
    names = StackNames.current()
    platform = Platform(names.project, PlatformArgs(settings=settings, names=names))
    specs = data_services(settings)
    images = ImageSet("images", ImageSetArgs(specs=specs, provider=platform.provider))
    services = _Services(platform, images, names)
    for spec in specs:
        services.add(spec)
    return {
        "network": platform.network.name,
        "volumes": {key: volume.name for key, volume in platform.volumes.items()},
        "containers": {name: service.container_name for name, service in services.containers.items()},
        "minioConsole": f"http://127.0.0.1:{settings.host_ports.minio_console} on the Docker host",
    }
