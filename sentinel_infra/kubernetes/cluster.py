"""The ground on a cluster: one explicit Kubernetes provider, the stack's namespace and its baseline policies.

The namespace enforces the Pod Security Standard "restricted" (Pod Security Admission refuses any pod that does not
meet it), and starts from a default deny of all traffic, in and out; policies.py opens exactly the stack's edges.
DNS is the one egress every pod needs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from ..naming import StackNames
from ..settings import Settings
from .labels import labels

PSS_LEVEL = "restricted"
PSS_LABELS = {f"pod-security.kubernetes.io/{mode}": PSS_LEVEL for mode in ("enforce", "audit", "warn")}
"""Enforced, and also audited and warned about (so a violation is named in `kubectl` and the audit log)."""

DNS_NAMESPACE = "kube-system"
DNS_SELECTOR = {"k8s-app": "kube-dns"}
"""CoreDNS's pods, labelled `k8s-app: kube-dns` by kubeadm, EKS, GKE and AKS alike."""


@dataclass(frozen=True)
class ClusterArgs:
    settings: Settings
    names: StackNames


class Cluster(pulumi.ComponentResource):
    """The provider every object uses explicitly, the namespace, and the default-deny and DNS policies."""

    provider: k8s.Provider
    namespace: k8s.core.v1.Namespace
    namespace_name: pulumi.Output[str]
    pull_secret: pulumi.Output[str] | None
    """The image pull Secret's name, with registry credentials."""

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sentineliq:kubernetes:Cluster", name, None, opts)
        settings, names = args.settings, args.names
        kubeconfig = settings.kubeconfig
        self.provider = k8s.Provider(
            f"{name}-kubernetes",
            k8s.ProviderArgs(
                kubeconfig=None if kubeconfig is None else pulumi.Output.secret(kubeconfig.get_secret_value()),
                context=settings.kubernetes.context,
                # Server-side apply (pulumi-kubernetes 4's default, set so that it stays): the API server merges and
                # owns the fields, and the HorizontalPodAutoscaler's replica count is not fought over. No default
                # namespace: every object names the stack's explicitly.
                enable_server_side_apply=True,
            ),
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["kubeconfig"]),
        )
        on_cluster = pulumi.ResourceOptions(parent=self, provider=self.provider)
        namespace = settings.namespace(names.stack)
        self.namespace = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": namespace, "labels": {**labels(names), **PSS_LABELS}},
            # Deleting a namespace deletes every object in it, the claims of the data too.
            opts=pulumi.ResourceOptions.merge(
                on_cluster,
                pulumi.ResourceOptions(protect=settings.protect_data, retain_on_delete=settings.protect_data),
            ),
        )
        self.namespace_name = self.namespace.metadata.name
        in_namespace = pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=[self.namespace])
        self.default_deny = k8s.networking.v1.NetworkPolicy(
            f"{name}-default-deny",
            metadata={"name": "default-deny", "namespace": self.namespace_name, "labels": labels(names)},
            spec={"pod_selector": {}, "policy_types": ["Ingress", "Egress"]},
            opts=in_namespace,
        )
        self.dns = k8s.networking.v1.NetworkPolicy(
            f"{name}-dns",
            metadata={"name": "allow-dns", "namespace": self.namespace_name, "labels": labels(names)},
            spec={
                "pod_selector": {},
                "policy_types": ["Egress"],
                "egress": [
                    {
                        "to": [
                            {
                                "namespace_selector": {"match_labels": {"kubernetes.io/metadata.name": DNS_NAMESPACE}},
                                "pod_selector": {"match_labels": DNS_SELECTOR},
                            }
                        ],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                    }
                ],
            },
            opts=in_namespace,
        )
        self.pull_secret = self._pull_secret(name, settings, names)
        self.register_outputs({"namespace": self.namespace_name})

    def _pull_secret(self, name: str, settings: Settings, names: StackNames) -> pulumi.Output[str] | None:
        """A `kubernetes.io/dockerconfigjson` Secret for a private imageRegistry (registryUsername, registryToken);
        auto-named like every Secret (a new token, a new Secret, a rollout). Its name, or None."""
        if settings.registry_username is None or settings.registry_token is None:
            return None
        registry = settings.image_registry.split("/", 1)[0]
        auth = {"username": settings.registry_username, "password": settings.registry_token.get_secret_value()}
        secret = k8s.core.v1.Secret(
            f"{name}-registry",
            metadata={"namespace": self.namespace_name, "labels": labels(names)},
            type="kubernetes.io/dockerconfigjson",
            immutable=True,
            string_data=pulumi.Output.secret({".dockerconfigjson": json.dumps({"auths": {registry: auth}})}),
            opts=pulumi.ResourceOptions(parent=self, provider=self.provider),
        )
        secret_name: pulumi.Output[str] = secret.metadata.name
        return secret_name
