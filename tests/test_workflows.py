"""The delivery workflows: what they run, checked by running it.

`scripts/test` validates the workflows against GitHub's schema and audits them with zizmor; these tests run the
deploy guard exactly as the composite action writes it (its `run:` script, its `env:` with the input filled in,
under GitHub's `bash -e -o pipefail`) against stack files with and without a Docker host, and check that every
Pulumi step installs the one pinned CLI that `scripts/dev-up` downloads.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import ROOT

ACTION = ROOT / ".github" / "actions" / "pulumi-stack" / "action.yml"
GUARD = "Refuse a stack that names no remote Docker host"


def steps() -> list[dict[str, Any]]:
    return list(yaml.safe_load(ACTION.read_text())["runs"]["steps"])


def guard() -> dict[str, Any]:
    [step] = [s for s in steps() if s.get("name") == GUARD]
    return step


def run_guard(checkout: Path, stack: str) -> subprocess.CompletedProcess[str]:
    """The guard step as the runner runs it: its env with `inputs.stack` filled in, its script under bash -e."""
    step = guard()
    env = {k: str(v).replace("${{ inputs.stack }}", stack) for k, v in step["env"].items()}
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
        cwd=checkout,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The parts of a checkout the guard reads (the venv is the one the action's install step created)."""
    shutil.copytree(ROOT / "sentinel_infra", tmp_path / "sentinel_infra", ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "venv").symlink_to(ROOT / "venv")
    return tmp_path


def stack_file(checkout: Path, stack: str, **extra: str) -> None:
    document = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())
    document["config"].update({f"sentineliq:{key}": value for key, value in extra.items()})
    (checkout / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(document))


def test_the_guard_lets_a_stack_with_a_remote_host_deploy(checkout: Path) -> None:
    stack_file(checkout, "prod", dockerHost="ssh://deploy@docker-1.example.com")
    result = run_guard(checkout, "prod")
    assert result.returncode == 0, result.stderr
    assert "deploys to ssh://deploy@docker-1.example.com" in result.stdout


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({}, "sets no sentineliq:dockerHost"),
        ({"dockerHost": "unix:///var/run/docker.sock"}, "a socket on the runner itself"),
    ],
)
def test_the_guard_refuses_a_stack_without_a_remote_host(checkout: Path, extra: dict[str, str], reason: str) -> None:
    stack_file(checkout, "prod", **extra)
    result = run_guard(checkout, "prod")
    assert result.returncode == 1
    assert reason in result.stderr
    assert "pulumi config set --stack prod sentineliq:dockerHost ssh://" in result.stderr, "the fix"
    assert result.stdout.startswith("::error title=No Docker host for stack prod::"), "an annotation on the run"


def test_the_guard_refuses_a_stack_without_a_stack_file(checkout: Path) -> None:
    result = run_guard(checkout, "staging")
    assert result.returncode == 1
    assert "Pulumi.staging.yaml does not exist" in result.stderr


def test_the_guard_runs_before_every_up_and_only_then() -> None:
    names = [s.get("name", s.get("uses")) for s in steps()]
    pulumi = next(i for i, s in enumerate(steps()) if str(s.get("uses", "")).startswith("pulumi/actions@"))
    assert names.index(GUARD) < pulumi
    assert guard()["if"] == "inputs.command == 'up'"
    deploy = yaml.safe_load((ROOT / ".github" / "workflows" / "deploy.yml").read_text())
    for job in ("dev", "prod"):
        [uses] = [s for s in deploy["jobs"][job]["steps"] if s.get("uses") == "./.github/actions/pulumi-stack"]
        assert uses["with"]["command"] == "up"


def test_every_pulumi_step_installs_the_pinned_cli() -> None:
    pulumi_steps = [s for s in steps() if str(s.get("uses", "")).startswith("pulumi/actions@")]
    assert pulumi_steps
    for step in pulumi_steps:
        assert step["with"]["pulumi-version-file"] == ".pulumi.version"
    for workflow in (ROOT / ".github" / "workflows").glob("*.yml"):
        assert "pulumi/actions@" not in workflow.read_text(), f"{workflow.name}: use the pulumi-stack action"
