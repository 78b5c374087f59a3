"""Physical names and labels: every Docker object carries its project and stack, so stacks can share a host."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

LABEL_PREFIX = "io.sentineliq"


@dataclass(frozen=True)
class StackNames:
    project: str
    stack: str

    @classmethod
    def current(cls) -> StackNames:
        return cls(project=pulumi.get_project(), stack=pulumi.get_stack())

    @property
    def prefix(self) -> str:
        return f"{self.project}-{self.stack}"

    def physical(self, suffix: str) -> str:
        """The Docker name of an object, e.g. `sentineliq-prod-postgres`."""
        return f"{self.prefix}-{suffix}"

    def labels(self, service: str | None = None) -> dict[str, str]:
        """The labels by which `status` and operators find the stack's objects."""
        labels = {f"{LABEL_PREFIX}.project": self.project, f"{LABEL_PREFIX}.stack": self.stack}
        if service is not None:
            labels[f"{LABEL_PREFIX}.service"] = service
        return labels
