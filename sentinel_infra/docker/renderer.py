"""The whole stack on Docker: platform, images, containers and one-shot steps, in their health-gated start order.

Every edge is a `depends_on` on an upstream container whose `wait` returns only once it is healthy (compose's
`service_healthy`); services without an edge between them start concurrently. The order, as in the seed:

    postgres, redis, minio, elasticsearch          (no dependencies: all four at once)
    elasticsearch        after elastic-password (a no-op unless elasticPassword changed)
    elastic-setup        after elasticsearch
    minio-setup          after minio (the bucket and the server's own MinIO user)
    logstash, kibana     after elasticsearch and elastic-setup
    postgres-password    after postgres (applies postgresPassword to the running database)
    migrate              after postgres and postgres-password, with the server image of this update
    minio-setup          after minio (the bucket, its policy and the server's own user)
    seed-data            after migrate, only with seedData (once, and again when seedDataRun changes)
    server (each replica) after postgres, redis, minio, elasticsearch, logstash, minio-setup, migrate (and seed-data)
    edge                 after server
    client               after server and edge
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi

from ..naming import StackNames
from ..settings import Settings
from ..specs.model import ServiceSpec
from ..specs.server import server
from .backups import backup_directory, backup_jobs, backup_path
from .containers import HostDirectory, ServiceContainer, ServiceContainerArgs
from .images import ImageSet, ImageSetArgs
from .oneshot import OneShot
from .platform import Platform, PlatformArgs
from .steps import SeedData, SeedDataArgs, elastic_password, elastic_setup, migration, minio_setup, postgres_password


class _Containers:
    """Renders specs in order; a spec's `after` names services rendered before it."""

    def __init__(self, platform: Platform, images: ImageSet, names: StackNames, public_address: str) -> None:
        self._platform, self._images, self._names = platform, images, names
        self._public_address = public_address
        self.containers: dict[str, ServiceContainer] = {}

    def add(
        self,
        spec: ServiceSpec,
        gates: Sequence[pulumi.Resource] = (),
        name: str | None = None,
        host_directories: Sequence[HostDirectory] = (),
    ) -> ServiceContainer:
        """Render a spec; `name` is the logical name when it differs from the service's (a replica, `server-2`)."""
        upstream = [self.containers[service].container for service in spec.after]
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
                depends_on=[*upstream, *gates],
                host_directories=host_directories,
            ),
        )
        self.containers[name] = service
        return service


def _on_host(settings: Settings, port: int) -> str:
    """How an operator reaches a port bound to the Docker host's loopback."""
    ssh = settings.ssh
    if ssh is None:
        return f"http://127.0.0.1:{port}"
    return f"http://127.0.0.1:{port} after: ssh -p {ssh.port} -N -L {port}:127.0.0.1:{port} {ssh.user}@{ssh.host}"


def render_stack(
    settings: Settings, names: StackNames, specs: Mapping[str, ServiceSpec]
) -> dict[str, pulumi.Input[object]]:
    """Declare every Docker resource of the stack from its specs and return the stack outputs."""
    volumes = list(dict.fromkeys(mount.volume for spec in specs.values() for mount in spec.volumes))
    platform = Platform(names.project, PlatformArgs(settings=settings, names=names, volumes=volumes))
    jobs = backup_jobs(settings)
    images = ImageSet("images", ImageSetArgs(specs=[*specs.values(), *jobs], provider=platform.provider))
    services = _Containers(platform, images, names, settings.public_bind_address)
    for name in ("postgres", "redis", "minio"):
        services.add(specs[name])
    # Before a new Elasticsearch container (whose health check uses the new password) replaces the running one.
    elastic_rotation = OneShot("elastic-password", elastic_password(settings, names))
    services.add(specs["elasticsearch"], gates=[elastic_rotation.command])
    postgres = services.containers["postgres"].container
    postgres_rotation = OneShot("postgres-password", postgres_password(settings, names, postgres))

    setup = OneShot(
        "elastic-setup",
        elastic_setup(
            settings,
            names,
            images.image_id("elasticsearch"),
            platform.network.name,
            services.containers["elasticsearch"].container,
        ),
    )
    services.add(specs["logstash"], gates=[setup.command])
    services.add(specs["kibana"], gates=[setup.command])

    migrate = OneShot(
        "migrate",
        migration(
            settings, names, images.image_id("server"), platform.network.name, [postgres, postgres_rotation.command]
        ),
    )
    storage = OneShot(
        "minio-setup",
        minio_setup(
            settings, names, images.image_id("minio"), platform.network.name, services.containers["minio"].container
        ),
    )
    gates: list[pulumi.Resource] = [migrate.command, storage.command]
    if settings.seed_data:
        seed = SeedData(
            "seed",
            SeedDataArgs(
                settings, names, images.image_id("server"), platform.network.name, platform.provider, [migrate.command]
            ),
        )
        gates.append(seed.command)
    services.add(specs["server"], gates=gates)
    # Replica 1 keeps the logical name `server` (its URN, so an existing stack does not replace it for nothing).
    for replica in range(2, settings.server_replicas + 1):
        services.add(server(settings, replica), gates=gates, name=f"server-{replica}")
    services.add(specs["edge"])
    services.add(specs["client"])
    for job in jobs:
        services.add(job, host_directories=[backup_directory(settings, names)])

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
