"""The labels every Kubernetes object of the stack carries (fixed for issue 11), and the selector of a service."""

from __future__ import annotations

from ..naming import StackNames

NAME = "app.kubernetes.io/name"
PART_OF = "app.kubernetes.io/part-of"
INSTANCE = "app.kubernetes.io/instance"
MANAGED_BY = "app.kubernetes.io/managed-by"


def selector(names: StackNames, service: str) -> dict[str, str]:
    """What a Service, a PodDisruptionBudget and a NetworkPolicy select the pods of `service` by."""
    return {NAME: service, INSTANCE: names.stack}


def labels(names: StackNames, service: str | None = None) -> dict[str, str]:
    """The recommended labels: the service (when the object belongs to one), the project, the stack, Pulumi."""
    common = {PART_OF: names.project, INSTANCE: names.stack, MANAGED_BY: "pulumi"}
    return common if service is None else {NAME: service, **common}
