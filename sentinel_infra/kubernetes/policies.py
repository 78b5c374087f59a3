"""NetworkPolicies: after the namespace's default deny (cluster.py), exactly the stack's traffic edges.

An edge is (who connects, to which service, on which ports). Each service admits its clients (an ingress rule on
its pods) and each client may reach its services (an egress rule on its pods): both ends must agree, so a policy
on one side alone opens nothing. Clients are services, one-shot Jobs and backup CronJobs, all selected by their
`app.kubernetes.io/name` label; the ingress controller is admitted from its namespace, to the client and the server.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
from pulumi_kubernetes.networking.v1 import (
    NetworkPolicyEgressRuleArgsDict,
    NetworkPolicyIngressRuleArgsDict,
    NetworkPolicyPeerArgsDict,
    NetworkPolicyPortArgsDict,
    NetworkPolicySpecArgsDict,
)

from ..naming import StackNames
from .labels import labels, selector

EXTERNAL_HTTPS = 443


@dataclass(frozen=True)
class Edge:
    """`source` (a pod's app.kubernetes.io/name) opens connections to the pods of `target` on `ports`."""

    source: str
    target: str
    ports: tuple[int, ...]


@dataclass(frozen=True)
class PoliciesArgs:
    names: StackNames
    namespace: pulumi.Input[str]
    provider: k8s.Provider
    edges: Sequence[Edge]
    ingress_namespace: str
    """The ingress controller's namespace; its pods reach the `public` services."""
    public: dict[str, tuple[int, ...]]
    """The services the ingress controller routes to, with their ports."""
    internet: Sequence[str] = ()
    """Services that may open HTTPS connections outside the cluster (the server, with a Sentry DSN)."""


def _ports(ports: Sequence[int]) -> list[NetworkPolicyPortArgsDict]:
    return [{"protocol": "TCP", "port": port} for port in ports]


def ingress_rules(service: str, args: PoliciesArgs) -> list[NetworkPolicyIngressRuleArgsDict]:
    rules: list[NetworkPolicyIngressRuleArgsDict] = [
        {"from_": [{"pod_selector": {"match_labels": selector(args.names, edge.source)}}], "ports": _ports(edge.ports)}
        for edge in args.edges
        if edge.target == service
    ]
    if service in args.public:
        controller: NetworkPolicyPeerArgsDict = {
            "namespace_selector": {"match_labels": {"kubernetes.io/metadata.name": args.ingress_namespace}}
        }
        rules.append({"from_": [controller], "ports": _ports(args.public[service])})
    return rules


def egress_rules(source: str, args: PoliciesArgs) -> list[NetworkPolicyEgressRuleArgsDict]:
    rules: list[NetworkPolicyEgressRuleArgsDict] = [
        {"to": [{"pod_selector": {"match_labels": selector(args.names, edge.target)}}], "ports": _ports(edge.ports)}
        for edge in args.edges
        if edge.source == source
    ]
    if source in args.internet:
        rules.append(
            {
                "to": [{"ip_block": {"cidr": "0.0.0.0/0"}}, {"ip_block": {"cidr": "::/0"}}],
                "ports": _ports([EXTERNAL_HTTPS]),
            }
        )
    return rules


class NetworkPolicies(pulumi.ComponentResource):
    """One NetworkPolicy per pod group that has an edge: its allowed ingress and egress."""

    policies: dict[str, k8s.networking.v1.NetworkPolicy]

    def __init__(self, name: str, args: PoliciesArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sentineliq:kubernetes:NetworkPolicies", name, None, opts)
        groups = sorted(
            {edge.source for edge in args.edges}
            | {edge.target for edge in args.edges}
            | set(args.public)
            | set(args.internet)
        )
        self.policies = {}
        for group in groups:
            ingress = ingress_rules(group, args)
            egress = egress_rules(group, args)
            spec: NetworkPolicySpecArgsDict = {
                "pod_selector": {"match_labels": selector(args.names, group)},
                "policy_types": [kind for kind, rules in (("Ingress", ingress), ("Egress", egress)) if rules],
            }
            if ingress:
                spec["ingress"] = ingress
            if egress:
                spec["egress"] = egress
            self.policies[group] = k8s.networking.v1.NetworkPolicy(
                f"{name}-{group}",
                metadata={"name": group, "namespace": args.namespace, "labels": labels(args.names, group)},
                spec=spec,
                opts=pulumi.ResourceOptions(parent=self, provider=args.provider),
            )
        self.register_outputs({"policies": sorted(self.policies)})
