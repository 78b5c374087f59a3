"""Every rule of the pack: the Docker rules (`rules.py`) and the Kubernetes rules (`kubernetes.py`). A stack of
either target meets only its own: each rule applies to its resource types alone."""

from __future__ import annotations

from collections.abc import Sequence

from pulumi_policy import ResourceValidationPolicy, StackValidationPolicy

from . import kubernetes, rules

RULES: Sequence[rules.Rule] = (*rules.RULES, *kubernetes.RULES)
STACK_RULES: Sequence[rules.StackRule] = kubernetes.STACK_RULES


def policies() -> list[ResourceValidationPolicy | StackValidationPolicy]:
    return [*(rule.policy() for rule in RULES), *(rule.policy() for rule in STACK_RULES)]
