"""One-shot steps as Jobs, and the daily backups as CronJobs, with the same scripts as on Docker.

A step's script and its stdin (the secrets it reads, one per line) are the keys `script` and `stdin` of one
Secret, mounted read-only; the container runs `sh script < stdin`, so no secret is in the Pod spec, its
environment or its command line, exactly as on Docker where they travel on `docker run -i`'s stdin.

A Job's pod template cannot change: a Job is named after what it runs (`<step>-<digest>` of its image, script and
input), so a change is a new Job, which runs once; Pulumi waits for a Job to complete before it creates what
depends on it (the server Deployment after `migrate`, Logstash and Kibana after `elastic-setup`). Completed Jobs
stay (no TTL): one that disappeared would be created, and run, again by the next `pulumi up`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.core.v1 import (
    ContainerArgsDict,
    PersistentVolumeClaimSpecArgsDict,
    PodSpecArgsDict,
    VolumeArgsDict,
)
from pydantic import SecretStr

from ..naming import StackNames
from ..specs.model import EnvValue, Limits, RunAs
from .labels import labels
from .pods import (
    container_security,
    digest,
    env_vars,
    resources,
    run_once_pod,
    scratch_volumes,
    secret_env,
    secret_object,
)

STEP_DIR = "/var/run/sentineliq"
STEP_LIMITS = Limits(cpus=1, memory_mb=1024)
"""As on Docker (oneshot.ONE_SHOT_LIMITS): one CPU and 1 GiB, far more than a migration or a setup call needs."""
DEADLINE_SECONDS = 900
"""A step that has not finished in 15 minutes has failed (a migration waiting on a lock, a setup on a dead host)."""
BACKOFF_LIMIT = 2
"""Two retries: a setup step that met a service a second before it took connections runs again."""


def slug(text: str, length: int) -> str:
    """`text` as the start of a DNS label: lowercase letters, digits and '-'."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:length].strip("-")


@dataclass(frozen=True)
class StepArgs:
    """A one-shot step: the script run by `image`'s shell, reading `stdin`."""

    step: str
    """Its name (`migrate`, `elastic-setup`): the label its NetworkPolicy selects, and the start of the Job's."""
    image: str
    run_as: RunAs
    script: str
    stdin: SecretStr
    names: StackNames
    namespace: pulumi.Input[str]
    provider: k8s.Provider
    pull_secret: pulumi.Input[str] | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    named_after: str | None = None
    """Readable part of the Job's name (the server image's tag for the migration); the digest follows it."""
    stdin_reruns: bool = True
    """Whether a change of the input alone runs the step again (not the seed step: only seedDataRun does)."""
    depends_on: Sequence[pulumi.Resource] = ()


def step_pod(args: StepArgs, secret: pulumi.Input[str]) -> PodSpecArgsDict:
    scratch = scratch_volumes(("/tmp",), ())  # noqa: S108 - an emptyDir in memory
    container: ContainerArgsDict = {
        "name": args.step,
        "image": args.image,
        "image_pull_policy": "Always",
        "command": ["/bin/sh", "-c", f"exec /bin/sh {STEP_DIR}/script < {STEP_DIR}/stdin"],
        "env": [{"name": k, "value": v} for k, v in sorted({"HOME": "/tmp", **args.env}.items())],  # noqa: S108
        "resources": resources(STEP_LIMITS),
        "security_context": container_security(args.run_as, read_only_root=True),
        "volume_mounts": [{"name": "step", "mount_path": STEP_DIR, "read_only": True}, *scratch.mounts],
    }
    volumes: list[VolumeArgsDict] = [
        {"name": "step", "secret": {"secret_name": secret, "default_mode": 0o440}},
        *scratch.volumes,
    ]
    return run_once_pod(args.run_as, container, volumes, args.pull_secret)


class Step(pulumi.ComponentResource):
    """A one-shot step as a Job (and the Secret holding its script and input)."""

    job: k8s.batch.v1.Job
    job_name: str

    def __init__(self, name: str, args: StepArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sentineliq:kubernetes:Step", name, None, opts)
        # The Job's name: the step, what it is named after, and a digest of what it runs (never of its input).
        suffix = digest({"script": args.script, "image": args.image, "env": dict(args.env)})
        readable = f"{args.step}-{slug(args.named_after, 30)}" if args.named_after else args.step
        self.job_name = f"{readable}-{suffix}"
        meta = {"namespace": args.namespace, "labels": labels(args.names, args.step)}
        # A step that runs again on a new input reads it from an auto-named Secret: a new input is a new Secret,
        # a new pod template, so the Job is replaced and runs. The seed's Secret keeps the Job's name: a new input
        # replaces it under that name, the Job is unchanged and does not run again (only seedDataRun reruns it).
        secret = secret_object(
            f"{name}-input",
            meta if args.stdin_reruns else {"name": self.job_name, **meta},
            {"script": args.script, "stdin": args.stdin},
            pulumi.ResourceOptions(parent=self, provider=args.provider),
        )
        self.job = k8s.batch.v1.Job(
            f"{name}-job",
            metadata={"name": self.job_name, "namespace": args.namespace, "labels": labels(args.names, args.step)},
            spec={
                "backoff_limit": BACKOFF_LIMIT,
                "active_deadline_seconds": DEADLINE_SECONDS,
                "template": {
                    "metadata": {"labels": labels(args.names, args.step)},
                    "spec": step_pod(args, secret.metadata.name),
                },
            },
            opts=pulumi.ResourceOptions(
                parent=self,
                provider=args.provider,
                depends_on=[secret, *args.depends_on],
                # The same name again (a change of limits, say) cannot be created beside the old Job.
                delete_before_replace=True,
            ),
        )
        self.register_outputs({"job": self.job_name})


@dataclass(frozen=True)
class BackupArgs:
    service: str
    image: str
    run_as: RunAs
    scripts: Mapping[str, str]
    """`backup` and `restore`, from the repository's backup/ folder."""
    env: Mapping[str, EnvValue]
    schedule: str
    names: StackNames
    namespace: pulumi.Input[str]
    provider: k8s.Provider
    size: str
    storage_class: str | None
    protect: bool
    depends_on: Sequence[pulumi.Resource] = ()


SCRIPTS_DIR = "/opt/sentineliq"
BACKUPS_DIR = "/backups"


class BackupSchedule(pulumi.ComponentResource):
    """One data service's daily backup: a CronJob running `backup SERVICE /backups` on its own claim."""

    def __init__(self, name: str, args: BackupArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sentineliq:kubernetes:BackupSchedule", name, None, opts)
        on_cluster = pulumi.ResourceOptions(parent=self, provider=args.provider)
        label = f"backup-{args.service}"
        meta = {"namespace": args.namespace, "labels": labels(args.names, label)}
        claim_spec: PersistentVolumeClaimSpecArgsDict = {
            "access_modes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": args.size}},
        }
        if args.storage_class is not None:
            claim_spec["storage_class_name"] = args.storage_class
        k8s.core.v1.PersistentVolumeClaim(
            f"{name}-claim",
            metadata={"name": label, **meta},
            spec=claim_spec,
            opts=pulumi.ResourceOptions.merge(
                on_cluster, pulumi.ResourceOptions(protect=args.protect, retain_on_delete=args.protect)
            ),
        )
        scripts_name = f"{label}-scripts-{digest(dict(args.scripts))}"
        k8s.core.v1.ConfigMap(
            f"{name}-scripts",
            metadata={"name": scripts_name, **meta},
            immutable=True,
            data=dict(args.scripts),
            opts=on_cluster,
        )
        hidden = secret_env(args.env)
        secret_name = secret_object(f"{name}-env", {**meta}, hidden, on_cluster).metadata.name
        scratch = scratch_volumes(("/tmp",), ())  # noqa: S108
        container: ContainerArgsDict = {
            "name": "backup",
            "image": args.image,
            "image_pull_policy": "Always",
            "command": ["/bin/sh", f"{SCRIPTS_DIR}/backup"],
            "args": [args.service, BACKUPS_DIR],
            "env": env_vars(args.env, secret_name),
            "resources": resources(Limits(cpus=0.5, memory_mb=512)),
            "security_context": container_security(args.run_as, read_only_root=True),
            "volume_mounts": [
                {"name": "scripts", "mount_path": SCRIPTS_DIR, "read_only": True},
                {"name": "backups", "mount_path": BACKUPS_DIR},
                *scratch.mounts,
            ],
        }
        volumes: list[VolumeArgsDict] = [
            {"name": "scripts", "config_map": {"name": scripts_name, "default_mode": 0o555}},
            {"name": "backups", "persistent_volume_claim": {"claim_name": label}},
            *scratch.volumes,
        ]
        pod = run_once_pod(args.run_as, container, volumes, None)
        self.cron_job = k8s.batch.v1.CronJob(
            f"{name}-cronjob",
            metadata={"name": label, **meta},
            spec={
                "schedule": args.schedule,
                "time_zone": "Etc/UTC",
                # A run still going (a large MinIO mirror) is not joined by the next one.
                "concurrency_policy": "Forbid",
                "starting_deadline_seconds": 3600,
                "successful_jobs_history_limit": 3,
                "failed_jobs_history_limit": 3,
                "job_template": {
                    "metadata": {"labels": labels(args.names, label)},
                    "spec": {
                        "backoff_limit": 1,
                        "template": {"metadata": {"labels": labels(args.names, label)}, "spec": pod},
                    },
                },
            },
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=list(args.depends_on)),
        )
        self.register_outputs({"cronJob": label})
