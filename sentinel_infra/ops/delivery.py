"""What the deploy workflow checks before `pulumi up`: the stack names the Docker engine it deploys to.

The Docker provider falls back to `DOCKER_HOST` or the local socket when `sentineliq:dockerHost` is unset: on a
GitHub-hosted runner that is the runner's own engine, thrown away with the runner, so a deploy would "succeed"
without touching any real host. The workflow runs `python -m sentinel_infra deploy-target --stack NAME` first and
stops with this module's message when the committed stack file does not name an `ssh://` engine.
"""

from __future__ import annotations

from pathlib import Path

from ..settings import NAMESPACE
from .stack_file import stack_file_config

KEY = f"{NAMESPACE}:dockerHost"


class NoDeployTargetError(Exception):
    """The stack names no remote Docker engine; the message says why and how to fix it."""


def deploy_target(root: Path, stack: str) -> str:
    """The `ssh://` engine the committed stack file of `stack` deploys to; `NoDeployTargetError` when there is none."""
    stack_file = root / f"Pulumi.{stack}.yaml"
    if not stack_file.exists():
        raise NoDeployTargetError(f"{stack_file.name} does not exist: commit the stack file of each deployed stack.")
    host = stack_file_config(stack_file).get(KEY)
    fix = (
        f"Set the engine this stack deploys to and commit {stack_file.name}:\n"
        f"  pulumi config set --stack {stack} {KEY} ssh://deploy@docker-1.example.com\n"
        f"  pulumi config set --stack {stack} --secret {NAMESPACE}:sshPrivateKey < deploy_key"
    )
    if host is None:
        raise NoDeployTargetError(
            f"{stack_file.name} sets no {KEY}: the deploy would go to the runner's own Docker engine, which is "
            f"thrown away with the runner.\n{fix}"
        )
    if not host.startswith("ssh://"):
        raise NoDeployTargetError(f"{KEY} is {host}, a socket on the runner itself, not the stack's host.\n{fix}")
    return host
