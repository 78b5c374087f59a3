"""The target-neutral model: a service (what it runs, what it needs, how it is known to be ready), a one-shot step.

Every container of the stack is described as data (image, ports by exposure, health check, limits, environment,
files, volumes, start dependencies) and rendered by each target's renderer (`sentinel_infra.docker` today), so
adding a service is adding a spec. A spec holds intent only: no Pulumi type, no Docker argument, no host address.
The renderers decide those (the Docker renderer binds an `operator` port to the host's loopback and a `public`
one to `publicBindAddress`; it turns the health check into Docker's own durations).

This package imports neither Pulumi nor a provider SDK (tests/test_specs.py checks it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from pydantic import SecretStr

EnvValue = str | SecretStr
"""An environment value or a file's content: plain text, or a secret that every renderer keeps secret."""


@dataclass(frozen=True)
class Limits:
    """The CPU and memory limits a service runs with."""

    cpus: float
    memory_mb: int


@dataclass(frozen=True)
class HealthCheck:
    """How a service shows it is ready; durations in seconds.

    `test` is Docker's form (`CMD …` or `CMD-SHELL script`, see `shell_check`): it runs inside the service's own
    image, so any target can run it as a command. `start_interval` probes every second during `start_period`, so
    readiness is seen within a second of it happening; after that the check runs every `interval`.
    """

    test: tuple[str, ...]
    interval: int = 10
    timeout: int = 5
    retries: int = 5
    start_period: int = 30
    start_interval: int = 1


def shell_check(script: str) -> tuple[str, ...]:
    """A health check run by the image's shell (`CMD-SHELL`)."""
    return ("CMD-SHELL", script)


Exposure = Literal["internal", "operator", "public"]
"""Who reaches a port: `internal` the stack's own services only; `operator` the operator on the host (never the
network: Docker binds it to loopback); `public` clients from outside (Docker binds it to `publicBindAddress`)."""


@dataclass(frozen=True)
class Port:
    """A port the service listens on, and who may reach it (`host` is the port outside, for non-internal ones)."""

    name: str
    container: int
    exposure: Exposure = "internal"
    host: int | None = None

    def __post_init__(self) -> None:
        if (self.host is None) != (self.exposure == "internal"):
            raise ValueError(f"port {self.name}: a host port is given exactly when it is not internal")

    @property
    def published(self) -> bool:
        return self.exposure != "internal"


@dataclass(frozen=True)
class VolumeMount:
    """A data volume (by its key, such as `postgres-data`) mounted at `path`: what the stack must never lose."""

    volume: str
    path: str


@dataclass(frozen=True)
class FileUpload:
    """A file placed into the service before it starts (written into the container; no host bind mount)."""

    path: str
    content: EnvValue
    mode: str = "0644"


@dataclass(frozen=True)
class BackupSpec:
    """How the daily backup job of a data service reaches it (the job, its scripts and schedule are common:
    `specs/backup.py`)."""

    env: Mapping[str, EnvValue]


@dataclass(frozen=True)
class RunAs:
    """The user and group the image's own process runs as (its `USER`, or the one its entrypoint drops to)."""

    uid: int
    gid: int


@dataclass(frozen=True)
class ServiceSpec:
    """Everything that describes one service of the stack."""

    name: str
    image: str
    healthcheck: HealthCheck
    ready_timeout: int
    """Seconds a deployment waits for the service to turn ready before it fails."""
    limits: Limits
    stop_grace: int = 10
    """Seconds between SIGTERM and SIGKILL when the service is stopped or replaced."""
    env: Mapping[str, EnvValue] = field(default_factory=dict)
    command: tuple[str, ...] = ()
    ports: tuple[Port, ...] = ()
    volumes: tuple[VolumeMount, ...] = ()
    files: tuple[FileUpload, ...] = ()
    entrypoint: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    """Services that must be ready before this one starts."""
    talks_to: tuple[str, ...] = ()
    """Services this one opens connections to (traffic, not start order: the server starts after Elasticsearch but
    only talks to Logstash); a target that restricts traffic allows exactly these edges."""
    follow_tag: bool = False
    """The image's tag moves (`main`): each new build pushed to it is a new image, which replaces the service
    (the Docker renderer pulls it by the registry digest the tag points to)."""
    cap_add: tuple[str, ...] = ()
    """Capabilities added back after dropping ALL: what the image's entrypoint needs, documented at the spec."""
    read_only: bool = False
    """A read-only root filesystem (where the image allows it), with `tmpfs` for the paths it writes."""
    tmpfs: tuple[str, ...] = ()
    image_volumes: tuple[str, ...] = ()
    """The image's declared VOLUMEs: each must be mounted from a data volume, or its data dies with the container."""
    rolling: bool = False
    """Replaced start-before-stop: the new instance is ready before the old one gets SIGTERM. Such a service has
    no fixed name and publishes no port: neither could exist twice."""
    backup: BackupSpec | None = None
    """A data service's daily backup: how its job reaches it."""
    run_as: RunAs | None = None
    """The image's own non-root user, where known; None for an image that runs as root or whose user is not known
    (a target that forbids root must then choose one itself)."""

    def __post_init__(self) -> None:
        if self.rolling and any(port.published for port in self.ports):
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

    @property
    def published_ports(self) -> tuple[Port, ...]:
        return tuple(port for port in self.ports if port.published)


@dataclass(frozen=True)
class NewImage:
    """Run again for each new image of the step's service (a migration: every new server image migrates once)."""


@dataclass(frozen=True)
class NewInstance:
    """Run again when `service` is a new instance (a new container: the setup it holds may be gone)."""

    service: str


@dataclass(frozen=True)
class Setting:
    """Run again when the operator changes the config key `key` (its value is `value`)."""

    key: str
    value: str


Rerun = NewImage | NewInstance | Setting


@dataclass(frozen=True)
class OneShotSpec:
    """A step that runs to completion during a deployment: a migration, a setup, a rotation.

    It runs a POSIX sh `script` in the image of `service` (in a new instance, or with `in_service` inside the
    running one), reads its secrets from `stdin` (never an argument or an environment entry), waits for `after`
    (services ready, steps done), and runs again when its script or stdin changes and on each of `reruns`.
    """

    name: str
    service: str
    script: str
    stdin: SecretStr
    after: tuple[str, ...] = ()
    reruns: tuple[Rerun, ...] = ()
    in_service: bool = False
    """Inside the running instance of `service` (its local socket, its own tools), not in a new one."""
    skip_if_absent: bool = False
    """With `in_service`: nothing to do while the service does not run yet (a first deployment)."""
    on_input_change: str | None = None
    """A script run instead when only the script's input changed (stdin, ...): a step that must run once per
    `reruns`, not again for a rotated password, says so here. None runs the script itself."""
    talks_to: tuple[str, ...] = ()
    """The services a step in a new instance connects to (its NetworkPolicy edges on a cluster): `service` is only
    the image it runs in."""

    def __post_init__(self) -> None:
        if self.skip_if_absent and not self.in_service:
            raise ValueError(f"{self.name}: only a step inside a running service can skip an absent one")
