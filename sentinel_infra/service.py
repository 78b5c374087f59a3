"""The generic service container: a typed `ServiceSpec` and the one component that renders it.

Every container of the stack is described as data (image, ports, health check, limits, environment, files,
dependencies) and rendered by `ServiceContainer`, so adding a service is adding a spec. The component owns the
rules that hold for every service: health-gated start (`wait`), explicit port addresses, no-new-privileges, log
rotation, labels, a stop grace period, and secret handling of the environment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_docker as docker
from pydantic import SecretStr

from .naming import LABEL_PREFIX, StackNames
from .provider_forms import cpus_input, seconds
from .settings import Limits

EnvValue = str | SecretStr
"""An environment value: plain text, or a secret that is rendered as a Pulumi secret output."""

LOG_ROTATION = {"max-size": "10m", "max-file": "5"}
"""json-file rotation: at most 50 MB of logs per container, so logs cannot fill the host's disk."""


@dataclass(frozen=True)
class HealthCheck:
    """A Docker health check; durations in seconds.

    `start_interval` probes every second during `start_period`, so readiness is seen within a second of it
    happening (Docker Engine 25+); after that the check runs every `interval`.
    """

    test: tuple[str, ...]
    interval: int = 10
    timeout: int = 5
    retries: int = 5
    start_period: int = 30
    start_interval: int = 1

    def args(self) -> docker.ContainerHealthcheckArgs:
        # Go's `time.Duration.String()` form ("1m0s", not "60s"): what the provider's Read stores, so that
        # `replace_on_changes=["healthcheck"]` does not replace the container on every up.
        return docker.ContainerHealthcheckArgs(
            tests=list(self.test),
            interval=seconds(self.interval),
            timeout=seconds(self.timeout),
            retries=self.retries,
            start_period=seconds(self.start_period),
            start_interval=seconds(self.start_interval),
        )


def shell_check(script: str) -> tuple[str, ...]:
    """A health check run by the image's shell (`CMD-SHELL`)."""
    return ("CMD-SHELL", script)


@dataclass(frozen=True)
class PublishedPort:
    """A container port published on the Docker host, always on an explicit host address."""

    internal: int
    external: int
    host_ip: str


@dataclass(frozen=True)
class VolumeMount:
    """A named volume of the platform (by its key, such as `postgres-data`) mounted at `path`."""

    volume: str
    path: str


@dataclass(frozen=True)
class HostDirectory:
    """A directory of the Docker host mounted into the container (backups only: never a system path)."""

    host_path: str
    path: str


@dataclass(frozen=True)
class FileUpload:
    """A file written into the container before it starts (no host bind mount: works on a remote host)."""

    path: str
    content: EnvValue
    mode: str = "0644"


@dataclass(frozen=True)
class ServiceSpec:
    """Everything that describes one service of the stack."""

    name: str
    image: str
    healthcheck: HealthCheck
    wait_timeout: int
    """Seconds `pulumi up` waits for the container to turn healthy before it fails."""
    limits: Limits
    stop_grace: int = 10
    """Seconds between SIGTERM and SIGKILL when the container is stopped or replaced."""
    env: Mapping[str, EnvValue] = field(default_factory=dict)
    command: tuple[str, ...] = ()
    ports: tuple[PublishedPort, ...] = ()
    volumes: tuple[VolumeMount, ...] = ()
    files: tuple[FileUpload, ...] = ()
    host_directories: tuple[HostDirectory, ...] = ()
    entrypoint: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    """Services that must be healthy before this one starts."""
    track_registry_digest: bool = False
    """Pull the image by the registry digest its tag points to (for mutable tags such as `main`): a new build of
    the tag is a new image, which replaces the container; the tag is kept in the `io.sentineliq.image` label."""
    cap_add: tuple[str, ...] = ()
    """Capabilities added back after dropping ALL: what the image's entrypoint needs, documented at the spec."""
    read_only: bool = False
    """A read-only root filesystem (where the image allows it), with `tmpfs` for the paths it writes."""
    tmpfs: tuple[str, ...] = ()
    image_volumes: tuple[str, ...] = ()
    """The image's declared VOLUMEs: each must be mounted from a named volume, or its data dies with the container."""
    aliases: tuple[str, ...] = ()
    """Network aliases besides the service name (a replica's own, `server-2`)."""
    rolling: bool = False
    """Replaced create-before-delete: the new container is healthy before the old one gets SIGTERM. Such a
    container has no fixed name (Pulumi auto-names it) and publishes no port: both could not exist twice."""

    def __post_init__(self) -> None:
        if self.rolling and self.ports:
            raise ValueError(f"{self.name}: a rolling container cannot publish a host port (two would collide)")
        mounted = {mount.path for mount in self.volumes}
        lost = [path for path in self.image_volumes if path not in mounted]
        if lost:
            raise ValueError(f"{self.name}: image VOLUME {', '.join(lost)} is not on a named volume")
        if self.read_only and self.files:
            raise ValueError(f"{self.name}: files cannot be uploaded into a read-only root filesystem")

    @property
    def has_secrets(self) -> bool:
        return any(isinstance(v, SecretStr) for v in (*self.env.values(), *(f.content for f in self.files)))


def render(value: EnvValue) -> pulumi.Input[str]:
    """Plain text as is; a secret as a Pulumi secret output, so state and previews only show `[secret]`."""
    if isinstance(value, SecretStr):
        return pulumi.Output.secret(value.get_secret_value())
    return value


def _env_entry(name: str, value: EnvValue) -> pulumi.Input[str]:
    """`NAME=value`, a secret output when the value is a secret."""
    if isinstance(value, SecretStr):
        return pulumi.Output.secret(f"{name}={value.get_secret_value()}")
    return f"{name}={value}"


@dataclass(frozen=True)
class ServiceContainerArgs:
    spec: ServiceSpec
    names: StackNames
    image_id: pulumi.Input[str]
    network_name: pulumi.Input[str]
    volume_names: Mapping[str, pulumi.Input[str]]
    provider: docker.Provider
    depends_on: Sequence[pulumi.Resource] = ()
    """Resources that must be ready first: upstream containers (health-gated by their `wait`), setup steps."""


class ServiceContainer(pulumi.ComponentResource):
    """One service of the stack: its container, health-gated, hardened and labelled."""

    container: docker.Container

    def __init__(self, name: str, args: ServiceContainerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sentineliq:service:ServiceContainer", name, None, opts)
        spec = args.spec
        labels = args.names.labels(spec.name)
        if spec.track_registry_digest:
            # The container runs an image pulled by digest (images.py): the label keeps the tag it came from.
            labels[f"{LABEL_PREFIX}.image"] = spec.image
        self.container = docker.Container(
            f"{name}-container",
            docker.ContainerArgs(
                # Rolling: no name, so Pulumi auto-names it (pulumi-docker's provider/resources.go calls
                # SetAutonaming) and the successor can run beside its predecessor.
                name=None if spec.rolling else args.names.physical(spec.name),
                image=args.image_id,
                envs=[_env_entry(k, v) for k, v in sorted(spec.env.items())] or None,
                command=list(spec.command) or None,
                entrypoints=list(spec.entrypoint) or None,
                ports=[
                    docker.ContainerPortArgs(internal=p.internal, external=p.external, ip=p.host_ip, protocol="tcp")
                    for p in spec.ports
                ]
                or None,
                volumes=[
                    *(
                        docker.ContainerVolumeArgs(volume_name=args.volume_names[m.volume], container_path=m.path)
                        for m in spec.volumes
                    ),
                    *(
                        docker.ContainerVolumeArgs(host_path=d.host_path, container_path=d.path)
                        for d in spec.host_directories
                    ),
                ]
                or None,
                uploads=[
                    docker.ContainerUploadArgs(file=f.path, content=render(f.content), permissions=f.mode)
                    for f in spec.files
                ]
                or None,
                networks_advanced=[
                    docker.ContainerNetworksAdvancedArgs(name=args.network_name, aliases=[spec.name, *spec.aliases])
                ],
                healthcheck=spec.healthcheck.args(),
                wait=True,
                wait_timeout=spec.wait_timeout,
                restart="unless-stopped",
                must_run=True,
                memory=spec.limits.memory_mb,
                memory_swap=spec.limits.memory_mb,
                # Sent in the form the provider's Read stores, or `cpus` (ForceNew) would replace it on every up.
                cpus=cpus_input(spec.limits.cpus),
                destroy_grace_seconds=spec.stop_grace,
                stop_timeout=spec.stop_grace,
                security_opts=["no-new-privileges:true"],
                capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"], adds=sorted(spec.cap_add) or None),
                read_only=spec.read_only or None,
                tmpfs=dict.fromkeys(spec.tmpfs, "rw,noexec,nosuid,size=64m") or None,
                log_driver="json-file",
                log_opts=LOG_ROTATION,
                labels=[docker.ContainerLabelArgs(label=k, value=v) for k, v in labels.items()],
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=list(args.depends_on),
                # The provider updates a changed health check "in place" without touching the running container.
                replace_on_changes=["healthcheck"],
                # pulumi-docker sets DeleteBeforeReplace on docker_container (provider/resources.go), and the
                # engine lets an explicit option override the provider either way (pulumi/pulumi,
                # pkg/resource/deploy/step_generator.go: "The user can override the provider's decision").
                # A fixed name or host port cannot exist twice: remove the old container first. A rolling one is
                # created, waited healthy (`wait`), and only then is the old one stopped with its grace period.
                delete_before_replace=not spec.rolling,
                additional_secret_outputs=["envs", "uploads"] if spec.has_secrets else None,
            ),
        )
        self.container_name = self.container.name
        self.register_outputs({"containerName": self.container_name, "containerId": self.container.id})
