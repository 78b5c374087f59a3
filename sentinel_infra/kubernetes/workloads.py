"""One service of the stack on a cluster: its Secret and ConfigMap, its StatefulSet or Deployment, its Service, and
for a scaled service its PodDisruptionBudget and HorizontalPodAutoscaler.

A service with volumes is a StatefulSet whose `volumeClaimTemplates` hold them (the data services); any other is a
Deployment. Pulumi waits for a StatefulSet or Deployment to be ready (every replica's readiness probe passing)
before it creates what depends on it: the Docker target's health-gated start order, on a cluster.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.apps.v1 import DeploymentSpecArgsDict, StatefulSetSpecArgsDict
from pulumi_kubernetes.core.v1 import (
    PersistentVolumeClaimArgsDict,
    PersistentVolumeClaimSpecArgsDict,
    PodTemplateSpecArgsDict,
)
from pulumi_kubernetes.meta.v1 import ObjectMetaArgsDict

from ..naming import StackNames
from ..specs.model import ServiceSpec
from .images import ImageFacts
from .labels import labels, selector
from .pods import PodObjects, digest, plain_files, pod_spec, secret_env, secret_files, secret_object

HPA_CPU_UTILIZATION = 70
"""The HorizontalPodAutoscaler adds pods above 70% of the CPU requested, on average over the server's pods."""


@dataclass(frozen=True)
class Scaling:
    """A Deployment that scales: `replicas` at least (and at start), up to `max_replicas` on CPU."""

    replicas: int
    max_replicas: int


@dataclass(frozen=True)
class Storage:
    """The claims of a StatefulSet: their StorageClass (None: the cluster's default) and size per volume key."""

    storage_class: str | None
    sizes: dict[str, str]
    protect: bool
    """`protectData`: the StatefulSet is protected and its claims are retained when it is deleted."""


@dataclass(frozen=True)
class WorkloadArgs:
    spec: ServiceSpec
    facts: ImageFacts
    names: StackNames
    namespace: pulumi.Input[str]
    provider: k8s.Provider
    storage: Storage
    scaling: Scaling | None = None
    pull_secret: pulumi.Input[str] | None = None
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)
    """What must be ready or done first: upstream workloads (ready), one-shot Jobs (complete)."""


def metadata(name: str, namespace: pulumi.Input[str], names: StackNames, service: str | None) -> ObjectMetaArgsDict:
    return {"name": name, "namespace": namespace, "labels": labels(names, service)}


def claim_templates(spec: ServiceSpec, storage: Storage, names: StackNames) -> list[PersistentVolumeClaimArgsDict]:
    claims: list[PersistentVolumeClaimArgsDict] = []
    for mount in spec.volumes:
        body: PersistentVolumeClaimSpecArgsDict = {
            "access_modes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": storage.sizes[mount.volume]}},
        }
        if storage.storage_class is not None:
            body["storage_class_name"] = storage.storage_class
        claim: PersistentVolumeClaimArgsDict = {
            "metadata": {"name": mount.volume, "labels": labels(names, spec.name)},
            "spec": body,
        }
        claims.append(claim)
    return claims


class Workload(pulumi.ComponentResource):
    """A service's objects on the cluster; `service` is the Service named exactly as the seed's (`postgres`, ...)."""

    workload: k8s.apps.v1.StatefulSet | k8s.apps.v1.Deployment
    service: k8s.core.v1.Service | None

    def __init__(self, name: str, args: WorkloadArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sentineliq:kubernetes:Workload", name, None, opts)
        spec, facts, names = args.spec, args.facts, args.names
        on_cluster = pulumi.ResourceOptions(parent=self, provider=args.provider)
        # The Secrets are auto-named (secret_object): a new value, a new Secret and a rollout; no name tells of it.
        unnamed = {"namespace": args.namespace, "labels": labels(names, spec.name)}
        env = secret_env(spec.env)
        env_name = None
        if env:
            env_name = secret_object(f"{name}-env", {**unnamed}, env, on_cluster).metadata.name
        hidden = secret_files(spec.files)
        files_name = None
        if hidden:
            files_name = secret_object(f"{name}-files", {**unnamed}, hidden, on_cluster).metadata.name
        plain = plain_files(spec.files)
        config_name = None
        if plain:
            config_name = f"{spec.name}-config-{digest(plain)}"
            k8s.core.v1.ConfigMap(
                f"{name}-config",
                metadata=metadata(config_name, args.namespace, names, spec.name),
                immutable=True,
                data=plain,
                opts=on_cluster,
            )
        objects = PodObjects(env_name, files_name, config_name, args.pull_secret)

        template: PodTemplateSpecArgsDict = {
            "metadata": {"labels": labels(names, spec.name)},
            "spec": pod_spec(spec, facts, objects),
        }
        after = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=list(args.depends_on))
        if spec.volumes:
            self.workload = self._stateful_set(name, args, template, after)
        else:
            self.workload = self._deployment(name, args, template, after)

        # Every port of the service, the operator's too (kibana, the MinIO console): a ClusterIP is only reachable
        # inside the cluster, and the NetworkPolicies admit exactly the stack's edges.
        ports = spec.ports
        self.service = None
        if ports:
            self.service = k8s.core.v1.Service(
                f"{name}-service",
                metadata=metadata(spec.name, args.namespace, names, spec.name),
                spec={
                    "type": "ClusterIP",
                    "selector": selector(names, spec.name),
                    "ports": [
                        {"name": p.name, "port": p.container, "target_port": p.name, "protocol": "TCP"} for p in ports
                    ],
                },
                opts=on_cluster,
            )
        if args.scaling is not None:
            self._scaling(name, args, args.scaling, on_cluster)
        self.register_outputs(
            {"workload": self.workload.metadata.name, "service": None if self.service is None else spec.name}
        )

    def _stateful_set(
        self, name: str, args: WorkloadArgs, template: PodTemplateSpecArgsDict, opts: pulumi.ResourceOptions
    ) -> k8s.apps.v1.StatefulSet:
        spec, names = args.spec, args.names
        protect = args.storage.protect
        body: StatefulSetSpecArgsDict = {
            "service_name": spec.name,
            "replicas": 1,
            "selector": {"match_labels": selector(names, spec.name)},
            "template": template,
            "volume_claim_templates": claim_templates(spec, args.storage, names),
            # The claims outlive the StatefulSet unless data is not protected (dev).
            "persistent_volume_claim_retention_policy": {
                "when_deleted": "Retain" if protect else "Delete",
                "when_scaled": "Retain",
            },
            "update_strategy": {"type": "RollingUpdate"},
        }
        return k8s.apps.v1.StatefulSet(
            f"{name}-statefulset",
            metadata=metadata(spec.name, args.namespace, names, spec.name),
            spec=body,
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=protect)),
        )

    def _deployment(
        self, name: str, args: WorkloadArgs, template: PodTemplateSpecArgsDict, opts: pulumi.ResourceOptions
    ) -> k8s.apps.v1.Deployment:
        spec, names = args.spec, args.names
        scaling = args.scaling
        body: DeploymentSpecArgsDict = {
            "replicas": 1 if scaling is None else scaling.replicas,
            "selector": {"match_labels": selector(names, spec.name)},
            "template": template,
            # A new pod is ready before an old one stops: never fewer than `replicas` serving during a rollout.
            "strategy": {"type": "RollingUpdate", "rolling_update": {"max_unavailable": 0, "max_surge": 1}},
            "revision_history_limit": 5,
        }
        extra = pulumi.ResourceOptions()
        if scaling is not None:
            # The HorizontalPodAutoscaler owns the count once the Deployment exists: a later `pulumi up` must not
            # scale a loaded server back down to serverReplicas.
            extra = pulumi.ResourceOptions(ignore_changes=["spec.replicas"])
        return k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=metadata(spec.name, args.namespace, names, spec.name),
            spec=body,
            opts=pulumi.ResourceOptions.merge(opts, extra),
        )

    def _scaling(self, name: str, args: WorkloadArgs, scaling: Scaling, opts: pulumi.ResourceOptions) -> None:
        spec, names = args.spec, args.names
        # One pod at a time may be evicted by a drain: with two or more, the others keep serving.
        k8s.policy.v1.PodDisruptionBudget(
            f"{name}-pdb",
            metadata=metadata(spec.name, args.namespace, names, spec.name),
            spec={"max_unavailable": 1, "selector": {"match_labels": selector(names, spec.name)}},
            opts=opts,
        )
        k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-hpa",
            metadata=metadata(spec.name, args.namespace, names, spec.name),
            spec={
                "scale_target_ref": {"api_version": "apps/v1", "kind": "Deployment", "name": spec.name},
                "min_replicas": scaling.replicas,
                "max_replicas": scaling.max_replicas,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "average_utilization": HPA_CPU_UTILIZATION},
                        },
                    }
                ],
            },
            opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[self.workload])),
        )
