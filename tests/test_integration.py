"""End to end with the Pulumi Automation API: `up` of a dev-sized stack on the local Docker engine, every
service healthy, a second `preview` that must change nothing, then `destroy`.

It needs the Pulumi CLI, a Docker engine that can pull the images (Docker Hub, docker.elastic.co, ghcr.io) and a
few minutes, so it runs only where the Pulumi CLI is installed and Docker answers, and is skipped with the
reason elsewhere (as on the project's CI machines, which reach no registry). It works on a copy of the project
with a throw-away file backend and its own stack name and host ports, so it never touches Pulumi.dev.yaml, a
developer's state or a running dev stack. Run it with:

    venv/bin/python -m pytest tests/test_integration.py -s
"""

from __future__ import annotations

import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
from harness import ROOT
from pulumi import automation as auto

from sentinel_infra.ops.cli import required_secrets
from sentinel_infra.ops.status import collect

STACK = "integration"


def docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0


pytestmark = pytest.mark.skipif(
    shutil.which("pulumi") is None or not docker_answers(),
    reason="needs the Pulumi CLI and a Docker engine that can pull images (see the module docstring)",
)


def test_up_healthy_no_drift_destroy(tmp_path: Path) -> None:
    project = tmp_path / "project"
    shutil.copytree(ROOT, project, ignore=shutil.ignore_patterns("venv", ".git", ".pulumi-state", "__pycache__"))
    shutil.copy(project / "Pulumi.dev.yaml", project / f"Pulumi.{STACK}.yaml")
    env = {"PULUMI_BACKEND_URL": f"file://{tmp_path / 'state'}", "PULUMI_CONFIG_PASSPHRASE": secrets.token_hex(16)}
    (tmp_path / "state").mkdir()
    stack = auto.create_or_select_stack(
        stack_name=STACK,
        work_dir=str(project),
        opts=auto.LocalWorkspaceOptions(env_vars=env, secrets_provider="passphrase"),
    )
    for key in required_secrets().split():
        stack.set_config(f"sentineliq:{key}", auto.ConfigValue(value=secrets.token_hex(24), secret=True))
    stack.set_config(
        "sentineliq:hostPorts",
        auto.ConfigValue(value='{"client": 13000, "server": 13001, "kibana": 15601, "minioConsole": 19001}'),
    )
    try:
        stack.up(on_output=print)
        statuses = collect(STACK, None)
        assert all(status.ok for status in statuses), [s for s in statuses if not s.ok]
        stack.preview(expect_no_changes=True, on_output=print)
    finally:
        stack.destroy(on_output=print)
        stack.workspace.remove_stack(STACK)
