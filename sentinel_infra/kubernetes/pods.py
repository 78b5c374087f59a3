"""A service spec as a Pod: one small function per aspect (environment, files, scratch space, probes, resources,
security), in the manner of Kompose's `Config*` functions, so that "how a tmpfs becomes an emptyDir" has one home.

Secrets never appear in a Pod spec: a secret variable is a `secretKeyRef` into the service's Secret, a secret file
is mounted from it. Plain files come from a ConfigMap. Both are mounted read-only, one file each (`subPath`), over
the image's own folder.
"""

from __future__ import annotations

import hashlib
import json
import math
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.core.v1 import (
    ContainerArgsDict,
    EnvVarArgsDict,
    KeyToPathArgsDict,
    PodSecurityContextArgsDict,
    PodSpecArgsDict,
    ProbeArgsDict,
    ResourceRequirementsArgsDict,
    SecurityContextArgsDict,
    VolumeArgsDict,
    VolumeMountArgsDict,
)
from pulumi_kubernetes.meta.v1 import ObjectMetaArgsDict
from pydantic import SecretStr

from ..specs.model import EnvValue, FileUpload, HealthCheck, Limits, RunAs, ServiceSpec
from .images import ImageFacts, Probe

TMPFS_SIZE = "64Mi"
"""A spec's tmpfs, as on Docker (`size=64m`): an emptyDir in memory, counted against the memory limit."""
SCRATCH_SIZE = "1Gi"
"""A folder the image writes (a cache, a pid file): an emptyDir on the node's disk."""


def digest(content: object) -> str:
    """A short digest of plain content (a ConfigMap's files, a Job's script and image): the suffix of a name, so
    that a change is a new object and a new Pod template (a rollout), never an edit under running pods. Never of a
    secret: a digest in a name would confirm a guessed password offline (`SecretStr` is refused); a Secret is
    auto-named instead (secret_object)."""
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:10]


def secret_object(
    resource: str,
    metadata: ObjectMetaArgsDict,
    values: Mapping[str, str | SecretStr],
    opts: pulumi.ResourceOptions,
) -> k8s.core.v1.Secret:
    """An Opaque Secret whose whole data is a Pulumi secret (state and previews show `[secret]`).

    Without a `name` in `metadata` it is auto-named (`<resource>-<random>`): pulumi-kubernetes replaces a Secret
    whose data change (its provider's enableSecretMutable is off by default), so a new value is a new Secret under
    a new name, and every Pod template that refers to it (by its `metadata.name` output) rolls. Its name says
    nothing about its content. With a fixed name, a change replaces it under the same name (deleted first)."""
    data = {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in values.items()}
    fixed = "name" in metadata
    return k8s.core.v1.Secret(
        resource,
        metadata=metadata,
        type="Opaque",
        # Never changed in place: replaced (the kubelet need not watch it).
        immutable=not fixed,
        string_data=pulumi.Output.secret(data),
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(delete_before_replace=fixed or None)),
    )


def run_once_pod(
    run_as: RunAs, container: ContainerArgsDict, volumes: list[VolumeArgsDict], pull_secret: pulumi.Input[str] | None
) -> PodSpecArgsDict:
    """The pod of a Job or CronJob: never restarted in place (the Job retries with a new pod), no token."""
    pod: PodSpecArgsDict = {
        "restart_policy": "Never",
        "automount_service_account_token": False,
        "enable_service_links": False,
        "security_context": pod_security(run_as),
        "containers": [container],
        "volumes": volumes,
    }
    if pull_secret is not None:
        pod["image_pull_secrets"] = [{"name": pull_secret}]
    return pod


def secret_env(env: Mapping[str, EnvValue]) -> dict[str, SecretStr]:
    """The secret variables of an environment (they go into the service's Secret)."""
    return {name: value for name, value in sorted(env.items()) if isinstance(value, SecretStr)}


def env_vars(env: Mapping[str, EnvValue], secret_name: pulumi.Input[str] | None) -> list[EnvVarArgsDict]:
    """Plain variables by value, secret ones by reference to `secret_name` (the key is the variable's name)."""
    entries: list[EnvVarArgsDict] = []
    for name, value in sorted(env.items()):
        if isinstance(value, SecretStr):
            if secret_name is None:
                raise ValueError(f"{name} is secret but the service has no Secret")
            entries.append({"name": name, "value_from": {"secret_key_ref": {"name": secret_name, "key": name}}})
        else:
            entries.append({"name": name, "value": value})
    return entries


def file_key(upload: FileUpload) -> str:
    """The key of a file in its ConfigMap or Secret: its base name."""
    return posixpath.basename(upload.path)


def _check_keys(files: Sequence[FileUpload]) -> None:
    keys = [file_key(f) for f in files]
    if len(set(keys)) != len(keys):
        raise ValueError(f"two files share a base name: {sorted(keys)}")


def secret_files(files: Sequence[FileUpload]) -> dict[str, SecretStr]:
    _check_keys(files)
    return {file_key(f): f.content for f in files if isinstance(f.content, SecretStr)}


def plain_files(files: Sequence[FileUpload]) -> dict[str, str]:
    _check_keys(files)
    return {file_key(f): f.content for f in files if not isinstance(f.content, SecretStr)}


@dataclass(frozen=True)
class Mounted:
    """The Pod's volumes and the container's mounts for one aspect."""

    volumes: list[VolumeArgsDict]
    mounts: list[VolumeMountArgsDict]


def file_volumes(files: Sequence[FileUpload], config_map: str | None, secret: pulumi.Input[str] | None) -> Mounted:
    """Each file mounted read-only at its path, from the ConfigMap (plain) or the Secret (secret), with its mode."""
    volumes: list[VolumeArgsDict] = []
    mounts: list[VolumeMountArgsDict] = []
    plain = [f for f in files if not isinstance(f.content, SecretStr)]
    hidden = [f for f in files if isinstance(f.content, SecretStr)]
    if plain and config_map is not None:
        items: list[KeyToPathArgsDict] = [
            {"key": file_key(f), "path": file_key(f), "mode": int(f.mode, 8)} for f in plain
        ]
        volumes.append({"name": "config", "config_map": {"name": config_map, "items": items, "default_mode": 0o444}})
        mounts.extend(
            {"name": "config", "mount_path": f.path, "sub_path": file_key(f), "read_only": True} for f in plain
        )
    if hidden and secret is not None:
        secret_items: list[KeyToPathArgsDict] = [
            {"key": file_key(f), "path": file_key(f), "mode": int(f.mode, 8)} for f in hidden
        ]
        volumes.append(
            {"name": "secret-files", "secret": {"secret_name": secret, "items": secret_items, "default_mode": 0o440}}
        )
        mounts.extend(
            {"name": "secret-files", "mount_path": f.path, "sub_path": file_key(f), "read_only": True} for f in hidden
        )
    return Mounted(volumes, mounts)


def _volume_name(path: str) -> str:
    return "scratch-" + re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")


def scratch_volumes(tmpfs: Sequence[str], writable: Sequence[str]) -> Mounted:
    """The spec's tmpfs as emptyDirs in memory (as on Docker), the image's other write paths on the node's disk."""
    volumes: list[VolumeArgsDict] = []
    mounts: list[VolumeMountArgsDict] = []
    for path in sorted(set(tmpfs) | set(writable)):
        name = _volume_name(path)
        if path in tmpfs:
            volumes.append({"name": name, "empty_dir": {"medium": "Memory", "size_limit": TMPFS_SIZE}})
        else:
            volumes.append({"name": name, "empty_dir": {"size_limit": SCRATCH_SIZE}})
        mounts.append({"name": name, "mount_path": path})
    return Mounted(volumes, mounts)


def data_mounts(spec: ServiceSpec) -> list[VolumeMountArgsDict]:
    """The spec's named volumes, mounted from the StatefulSet's claims (named after the volume key)."""
    return [{"name": mount.volume, "mount_path": mount.path} for mount in spec.volumes]


def _command(check: HealthCheck) -> list[str]:
    kind, *rest = check.test
    if kind == "CMD-SHELL":
        return ["/bin/sh", "-c", *rest]
    if kind == "CMD":
        return list(rest)
    raise ValueError(f"a health check starts with CMD or CMD-SHELL, not {kind}")


def readiness_probe(check: HealthCheck) -> ProbeArgsDict:
    """The health check as the readiness probe: out of the Service's endpoints after `retries` failures."""
    return {
        "exec_": {"command": _command(check)},
        "period_seconds": check.interval,
        "timeout_seconds": check.timeout,
        "failure_threshold": check.retries,
    }


def startup_probe(check: HealthCheck) -> ProbeArgsDict:
    """The start period as a startup probe: the check every `start_interval` until it first passes, for the start
    period plus `retries` intervals (Docker's start period, then its failures), before the kubelet restarts it.
    Readiness and liveness wait for it."""
    attempts = math.ceil(check.start_period / check.start_interval) + check.retries
    return {
        "exec_": {"command": _command(check)},
        "period_seconds": check.start_interval,
        "timeout_seconds": check.timeout,
        "failure_threshold": attempts,
    }


def liveness_probe(probe: Probe | None, check: HealthCheck) -> ProbeArgsDict | None:
    """A restart of a stuck process only: twice the readiness's patience, and only with a check that no
    dependency can fail (see ImageFacts.liveness)."""
    if probe is None:
        return None
    action: ProbeArgsDict = (
        {"exec_": {"command": list(probe[1])}} if probe[0] == "exec" else {"tcp_socket": {"port": probe[1]}}
    )
    return {
        **action,
        "period_seconds": check.interval,
        "timeout_seconds": check.timeout,
        "failure_threshold": 2 * check.retries,
    }


def resources(limits: Limits) -> ResourceRequirementsArgsDict:
    """Requests equal to limits (the Guaranteed QoS class): the scheduler reserves what the container may use, so
    a node never overcommits the databases' memory; the server's HorizontalPodAutoscaler measures against it."""
    amounts = {"cpu": f"{round(limits.cpus * 1000)}m", "memory": f"{limits.memory_mb}Mi"}
    return {"requests": dict(amounts), "limits": dict(amounts)}


def user(spec: ServiceSpec, facts: ImageFacts) -> RunAs:
    """The image's own unprivileged user: the spec's `run_as`, else the renderer's fact about the image."""
    if spec.run_as is not None:
        return spec.run_as
    if facts.uid is None or facts.gid is None:
        raise ValueError(f"{spec.name}: no user to run as (the spec's run_as, or ImageFacts.uid/gid)")
    return RunAs(facts.uid, facts.gid)


def container_security(run_as: RunAs, read_only_root: bool) -> SecurityContextArgsDict:
    """Pod Security Standard "restricted", per container."""
    return {
        "run_as_non_root": True,
        "run_as_user": run_as.uid,
        "run_as_group": run_as.gid,
        "allow_privilege_escalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "read_only_root_filesystem": read_only_root,
        "seccomp_profile": {"type": "RuntimeDefault"},
    }


def pod_security(run_as: RunAs) -> PodSecurityContextArgsDict:
    """The image's own user, and volumes made writable for its group (`fsGroup`)."""
    return {
        "run_as_non_root": True,
        "run_as_user": run_as.uid,
        "run_as_group": run_as.gid,
        "fs_group": run_as.gid,
        "seccomp_profile": {"type": "RuntimeDefault"},
    }


def environment(spec: ServiceSpec, facts: ImageFacts) -> dict[str, EnvValue]:
    """The spec's environment as the cluster runs it (ImageFacts.env overrides, drop_env removes)."""
    env: dict[str, EnvValue] = {k: v for k, v in spec.env.items() if k not in facts.drop_env}
    env.update(facts.env)
    return env


@dataclass(frozen=True)
class PodObjects:
    """The names of the objects a Pod of the service refers to."""

    env_secret: pulumi.Input[str] | None = None
    files_secret: pulumi.Input[str] | None = None
    config_map: str | None = None
    pull_secret: pulumi.Input[str] | None = None


def container(spec: ServiceSpec, facts: ImageFacts, objects: PodObjects) -> ContainerArgsDict:
    files = file_volumes(spec.files, objects.config_map, objects.files_secret)
    scratch = scratch_volumes(spec.tmpfs, facts.writable)
    entry: ContainerArgsDict = {
        "name": spec.name,
        "image": spec.image,
        # Always: a tag (`main`, and `postgres:16-alpine` too, which moves with patch releases) is resolved by the
        # registry on every start, so two nodes never run two builds of one tag side by side.
        "image_pull_policy": "Always",
        "env": env_vars(environment(spec, facts), objects.env_secret),
        "ports": [{"name": p.name, "container_port": p.container, "protocol": "TCP"} for p in spec.ports],
        "readiness_probe": readiness_probe(spec.healthcheck),
        "startup_probe": startup_probe(spec.healthcheck),
        "resources": resources(spec.limits),
        "security_context": container_security(user(spec, facts), facts.read_only_root),
        "volume_mounts": [*data_mounts(spec), *files.mounts, *scratch.mounts],
    }
    if spec.entrypoint:
        entry["command"] = list(spec.entrypoint)
    if spec.command:
        entry["args"] = list(spec.command)
    live = liveness_probe(facts.liveness, spec.healthcheck)
    if live is not None:
        entry["liveness_probe"] = live
    return entry


def pod_spec(spec: ServiceSpec, facts: ImageFacts, objects: PodObjects) -> PodSpecArgsDict:
    """Everything of the Pod but its claims (a StatefulSet's volumeClaimTemplates provide the data volumes)."""
    files = file_volumes(spec.files, objects.config_map, objects.files_secret)
    scratch = scratch_volumes(spec.tmpfs, facts.writable)
    pod: PodSpecArgsDict = {
        "containers": [container(spec, facts, objects)],
        "volumes": [*files.volumes, *scratch.volumes],
        "security_context": pod_security(user(spec, facts)),
        # No pod talks to the Kubernetes API: no token in any container.
        "automount_service_account_token": False,
        # No FOO_SERVICE_HOST / REDIS_PORT=tcp://… variables: they clash with the images' own settings.
        "enable_service_links": False,
        "termination_grace_period_seconds": spec.stop_grace,
    }
    if objects.pull_secret is not None:
        pod["image_pull_secrets"] = [{"name": objects.pull_secret}]
    return pod
