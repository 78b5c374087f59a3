"""The Docker rendering of a service: `ServiceContainer`, the one component every `ServiceSpec` becomes.

The component owns the rules that hold for every service on Docker: health-gated start (`wait`), explicit port
addresses (an `operator` port on the host's loopback, a `public` one on `publicBindAddress`), no-new-privileges,
log rotation, labels, a stop grace period, and secret handling of the environment and files. Each aspect of the
translation is a small function below.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker
from pydantic import SecretStr

from ..naming import LABEL_PREFIX, StackNames
from ..specs.model import EnvValue, HealthCheck, Port, ServiceSpec
from .provider_forms import cpus_input, seconds

LOG_ROTATION = {"max-size": "10m", "max-file": "5"}
"""json-file rotation: at most 50 MB of logs per container, so logs cannot fill the host's disk."""

LOOPBACK = "127.0.0.1"
"""Where an `operator` port is published: reachable on the Docker host only (or through an SSH tunnel)."""


@dataclass(frozen=True)
class HostDirectory:
    """A directory of the Docker host mounted into the container (backups only: never a system path)."""

    host_path: str
    path: str


def healthcheck_args(check: HealthCheck) -> docker.ContainerHealthcheckArgs:
    # Go's `time.Duration.String()` form ("1m0s", not "60s"): what the provider's Read stores, so that
    # `replace_on_changes=["healthcheck"]` does not replace the container on every up.
    return docker.ContainerHealthcheckArgs(
        tests=list(check.test),
        interval=seconds(check.interval),
        timeout=seconds(check.timeout),
        retries=check.retries,
        start_period=seconds(check.start_period),
        start_interval=seconds(check.start_interval),
    )


def host_address(port: Port, public_address: str) -> str:
    """The host address a published port binds to: the target decides it from the port's exposure."""
    return public_address if port.exposure == "public" else LOOPBACK


def port_args(spec: ServiceSpec, public_address: str) -> list[docker.ContainerPortArgs] | None:
    """The published ports only: an `internal` port is reached on the stack network, by the service's name."""
    return [
        docker.ContainerPortArgs(
            internal=p.container, external=p.host, ip=host_address(p, public_address), protocol="tcp"
        )
        for p in spec.published_ports
    ] or None


def as_pulumi_input(value: EnvValue) -> pulumi.Input[str]:
    """Plain text as is; a secret as a Pulumi secret output, so state and previews only show `[secret]`."""
    if isinstance(value, SecretStr):
        return pulumi.Output.secret(value.get_secret_value())
    return value


def _env_entry(name: str, value: EnvValue) -> pulumi.Input[str]:
    """`NAME=value`, a secret output when the value is a secret."""
    if isinstance(value, SecretStr):
        return pulumi.Output.secret(f"{name}={value.get_secret_value()}")
    return f"{name}={value}"


def volume_args(
    spec: ServiceSpec, volume_names: Mapping[str, pulumi.Input[str]], host_directories: Sequence[HostDirectory]
) -> list[docker.ContainerVolumeArgs] | None:
    return [
        *(docker.ContainerVolumeArgs(volume_name=volume_names[m.volume], container_path=m.path) for m in spec.volumes),
        *(docker.ContainerVolumeArgs(host_path=d.host_path, container_path=d.path) for d in host_directories),
    ] or None


@dataclass(frozen=True)
class ServiceContainerArgs:
    spec: ServiceSpec
    names: StackNames
    image_id: pulumi.Input[str]
    network_name: pulumi.Input[str]
    volume_names: Mapping[str, pulumi.Input[str]]
    provider: docker.Provider
    public_address: str
    """The host address `public` ports bind to (`publicBindAddress`)."""
    depends_on: Sequence[pulumi.Resource] = ()
    """Resources that must be ready first: upstream containers (health-gated by their `wait`), setup steps."""
    host_directories: Sequence[HostDirectory] = ()


class ServiceContainer(pulumi.ComponentResource):
    """One service of the stack: its container, health-gated, hardened and labelled.

    A dependant depends on the component itself (the SDK expands a component to its children): it waits for the
    container, which is created only once healthy (`wait`).
    """

    container: docker.Container
    container_name: pulumi.Output[str]
    """The container's Docker name (auto-generated for a rolling one)."""
    container_id: pulumi.Output[str]
    """The container's id: a new one is a new container (what a step that reruns on a new instance keys on)."""

    def __init__(self, name: str, args: ServiceContainerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sentineliq:service:ServiceContainer", name, None, opts)
        spec = args.spec
        labels = args.names.labels(spec.name)
        if spec.follow_tag:
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
                ports=port_args(spec, args.public_address),
                volumes=volume_args(spec, args.volume_names, args.host_directories),
                uploads=[
                    docker.ContainerUploadArgs(file=f.path, content=as_pulumi_input(f.content), permissions=f.mode)
                    for f in spec.files
                ]
                or None,
                networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=args.network_name, aliases=[spec.name])],
                healthcheck=healthcheck_args(spec.healthcheck),
                wait=True,
                wait_timeout=spec.ready_timeout,
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
        self.container_id = self.container.id
        self.register_outputs({"containerName": self.container_name, "containerId": self.container_id})
