"""Local one-shot steps and `status` talk to the Docker provider's engine, whatever docker CLI context is current.

The provider uses `dockerHost`, else `DOCKER_HOST`, else `unix:///var/run/docker.sock`, and never the CLI's
current context (platform.LOCAL_ENGINE_ENVIRONMENT). These tests give the real docker CLI a configuration folder
of its own (`DOCKER_CONFIG`) with contexts pointing at a private dockerd and at a dead socket, and run the
one-shot command lines the way pulumi-command's `local.Command` does: `/bin/sh -c LINE`, with the machine's
environment plus the command's registered `environment` (appended last, so it wins: pulumi-command v1.2.1,
provider/pkg/provider/local/commandOutputs.go). Nothing listens on /var/run/docker.sock here; where something
does, it is not the private engine either, which is what the tests assert.
"""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import harness
import pulumi
import pytest
from harness import ROOT, TEST_SECRETS, Deployment, deploy, deploy_stack, stack_config, with_secrets
from local_servers import docker_engine, tiny_image
from pydantic import SecretStr

from sentinel_infra.docker.oneshot import InRunningContainer, OneShotArgs, exec_command
from sentinel_infra.docker.platform import check_engine_environment
from sentinel_infra.naming import StackNames
from sentinel_infra.ops.status import DockerUnavailableError, collect
from sentinel_infra.settings import Settings

SCRIPT = 'set -eu\nIFS= read -r word\nprintf "reached %s\\n" "$word"\n'
LOCAL = ("command:local:Command",)


@pytest.fixture(scope="module")
def engine() -> Iterator[tuple[str, str]]:
    """A private engine (its host) with a running, labelled container (its name)."""
    with docker_engine() as host:
        if host is None:
            pytest.skip("needs a private dockerd (root and Debian's docker.io) to point contexts at")
        image = tiny_image(host)
        name = f"siq-target-{uuid.uuid4().hex[:8]}"
        labels = [f"--label=io.sentineliq.{k}={v}" for k, v in (("project", "sentineliq"), ("stack", "target"))]
        run = ["docker", "--host", host, "run", "--detach", f"--name={name}", "--network=none", *labels]
        service = "--label=io.sentineliq.service=postgres"
        subprocess.run([*run, service, image, "sleep", "600"], check=True, capture_output=True)
        yield host, name


def cli(config: Path, *args: str) -> None:
    env = {**os.environ, "DOCKER_CONFIG": str(config)}
    subprocess.run(["docker", *args], env=env, check=True, capture_output=True, timeout=60)


@pytest.fixture
def contexts(engine: tuple[str, str], tmp_path: Path) -> Path:
    """A docker CLI configuration with two contexts: `private` (the test's engine) and `dead` (no engine)."""
    host, _ = engine
    cli(tmp_path, "context", "create", "private", "--docker", f"host={host}")
    cli(tmp_path, "context", "create", "dead", "--docker", "host=unix:///nonexistent/docker.sock")
    return tmp_path


def machine(config: Path, docker_host: str | None) -> dict[str, str]:
    """The environment of `pulumi` on a machine with this CLI configuration and DOCKER_HOST."""
    env = {k: v for k, v in os.environ.items() if k not in ("DOCKER_HOST", "DOCKER_CONTEXT")}
    env["DOCKER_CONFIG"] = str(config)
    if docker_host is not None:
        env["DOCKER_HOST"] = docker_host
    return env


def registered_environment(deployment: Deployment) -> dict[str, str]:
    """The `environment` every local one-shot of the stack is registered with (one value for all)."""
    found = {tuple(sorted((r.plain("environment") or {}).items())) for r in deployment.resources if r.type in LOCAL}
    assert len(found) == 1, found
    return dict(next(iter(found)))


def run_like_local_command(
    line: str, machine_env: dict[str, str], environment: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", "-c", line],
        input="word\n",
        env={**machine_env, **environment},
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def one_shot_line(container: str, docker_host: str | None = None) -> str:
    settings = Settings.model_validate(
        {**TEST_SECRETS, "serverTag": "m", "clientTag": "m", **({"dockerHost": docker_host} if docker_host else {})}
    )
    args = OneShotArgs(
        settings=settings,
        names=StackNames("sentineliq", "target"),
        where=InRunningContainer(container),
        script=SCRIPT,
        stdin=SecretStr("word\n"),
        depends_on=[],
    )
    return exec_command(args, container, skip_if_absent=False)


@pytest.fixture(scope="module")
def dev() -> Deployment:
    return deploy_stack("dev")


def test_a_current_context_is_not_the_engine_of_a_stack_without_docker_host(
    engine: tuple[str, str], contexts: Path, dev: Deployment
) -> None:
    """No dockerHost, no DOCKER_HOST: the provider uses the default socket, whatever context is current."""
    _, container = engine
    cli(contexts, "context", "use", "private")
    line = one_shot_line(container)
    # What plain `docker` does: it follows the current context to an engine the provider never talks to.
    assert "reached word" in run_like_local_command(line, machine(contexts, None), {}).stdout
    # The registered command does not.
    result = run_like_local_command(line, machine(contexts, None), registered_environment(dev))
    assert result.returncode != 0 and "reached" not in result.stdout
    assert "/var/run/docker.sock" in result.stderr


def test_docker_host_wins_over_a_current_context(engine: tuple[str, str], contexts: Path, dev: Deployment) -> None:
    host, container = engine
    cli(contexts, "context", "use", "dead")
    result = run_like_local_command(one_shot_line(container), machine(contexts, host), registered_environment(dev))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "reached word\n"


def test_a_configured_docker_host_is_used_whatever_the_context(engine: tuple[str, str], contexts: Path) -> None:
    host, container = engine
    cli(contexts, "context", "use", "dead")
    deployment = deploy_stack("dev", dockerHost=host)
    line = one_shot_line(container, docker_host=host)
    result = run_like_local_command(line, machine(contexts, None), registered_environment(deployment))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "reached word\n"


def test_status_asks_the_providers_engine_not_the_current_context(
    engine: tuple[str, str], contexts: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, container = engine
    cli(contexts, "context", "use", "private")
    for key, value in machine(contexts, None).items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    with pytest.raises(DockerUnavailableError, match=re.escape("/var/run/docker.sock")):
        collect("target", None)
    monkeypatch.setenv("DOCKER_HOST", host)
    found = {s.service: s.container for s in collect("target", None) if s.state != "missing"}
    assert found == {"postgres": container}


def test_the_one_shot_registrations_are_the_same_on_every_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """A command input that differed between a laptop and CI would re-run the migration there."""

    def commands() -> list[tuple[str, object, object, object]]:
        evaluated = deploy(*with_secrets(stack_config("dev")), stack="dev")
        return sorted(
            (r.name, r.plain("create"), r.plain("environment"), r.plain("interpreter"))
            for r in evaluated.resources
            if r.type in LOCAL
        )

    monkeypatch.setenv("DOCKER_HOST", "unix:///run/user/1000/docker.sock")
    monkeypatch.setenv("DOCKER_CONFIG", "/home/laptop/.docker")
    laptop = commands()
    monkeypatch.delenv("DOCKER_HOST")
    monkeypatch.setenv("DOCKER_CONFIG", "/runner/.docker")
    assert commands() == laptop
    assert all(environment == {"DOCKER_CONTEXT": "default"} for _, _, environment, _ in laptop)


@pytest.mark.parametrize("value", ["colima", "default", "desktop-linux"])
def test_a_docker_context_in_the_environment_is_refused(value: str) -> None:
    """The provider would follow it, overriding even an explicit host; nothing else in the stack would."""
    with pytest.raises(pulumi.RunError, match="DOCKER_CONTEXT is set") as raised:
        check_engine_environment({"DOCKER_CONTEXT": value})
    assert "unset DOCKER_CONTEXT" in str(raised.value)
    check_engine_environment({"DOCKER_CONTEXT": ""})
    check_engine_environment({"DOCKER_HOST": "unix:///var/run/docker.sock"})


def test_the_program_refuses_a_docker_context(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_CONTEXT", "colima")

    def program() -> dict[str, object]:
        runpy.run_path(str(ROOT / "__main__.py"))
        return {}

    with pytest.raises(pulumi.RunError, match="DOCKER_CONTEXT is set"):
        deploy(*with_secrets(stack_config("dev")), stack="dev", program=program)
    assert harness.LAST_REGISTRATIONS == [], "refused before anything is declared"


def test_a_kubernetes_stack_ignores_a_docker_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """DOCKER_CONTEXT only misleads the Docker provider: a cluster stack, which has none, deploys with it set."""
    monkeypatch.setenv("DOCKER_CONTEXT", "colima")

    def program() -> dict[str, object]:
        runpy.run_path(str(ROOT / "__main__.py"))
        return {}

    deploy(*with_secrets(stack_config("k8s")), stack="k8s", program=program)
    types = {registration.type for registration in harness.LAST_REGISTRATIONS}
    assert "kubernetes:apps/v1:Deployment" in types and not any(t.startswith("docker:") for t in types)
