"""Against a real Docker engine (a private dockerd from Debian's docker.io, started by the test) and a tiny
local image (busybox, imported: no registry): the status command, and the exact one-shot command lines."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator

import pytest
from harness import TEST_SECRETS, deploy_stack
from local_servers import docker_engine, tiny_image
from pydantic import SecretStr

from sentinel_infra.docker.oneshot import InRunningContainer, OneShotArgs, exec_command, run_command
from sentinel_infra.naming import StackNames
from sentinel_infra.ops.cli import main
from sentinel_infra.ops.status import collect
from sentinel_infra.settings import SERVICE_NAMES, Settings
from sentinel_infra.specs.kibana import kibana


@pytest.fixture(scope="module")
def engine() -> Iterator[tuple[str | None, str]]:
    with docker_engine() as host:
        yield host, tiny_image(host)


def docker(host: str | None, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    command = ["docker", *(["--host", host] if host else []), *args]
    return subprocess.run(command, input=stdin, capture_output=True, text=True, check=False, timeout=120)


def sh(line: str, stdin: str) -> subprocess.CompletedProcess[str]:
    """Run a command line the way local.Command does (`/bin/sh -c`), with its stdin."""
    return subprocess.run(["/bin/sh", "-c", line], input=stdin, capture_output=True, text=True, check=False)


def start(
    host: str | None,
    image: str,
    stack: str,
    service: str,
    check: str,
    command: str = "sleep 600",
    label: str | None = None,
) -> None:
    """A container named siq-<stack>-<service>, labelled as service `label` (by default `service`)."""
    result = docker(
        host,
        "run",
        "--detach",
        "--network=none",
        f"--name=siq-{stack}-{service}",
        "--label=io.sentineliq.project=sentineliq",
        f"--label=io.sentineliq.stack={stack}",
        f"--label=io.sentineliq.service={label or service}",
        f"--health-cmd={check}",
        "--health-interval=1s",
        "--health-retries=1",
        image,
        "sh",
        "-c",
        command,
    )
    assert result.returncode == 0, result.stderr


def settle(host: str | None, stack: str, expected: dict[str, str]) -> None:
    """Wait until Docker reports the expected health of each service."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        seen = {s.service: s.health for s in collect(stack, host) if s.state != "missing"}
        if all(seen.get(service) == health for service, health in expected.items()):
            return
        time.sleep(0.5)
    raise AssertionError(f"health never settled: {seen}")


@pytest.fixture
def stack(engine: tuple[str | None, str]) -> Iterator[str]:
    name = f"t{uuid.uuid4().hex[:8]}"
    yield name
    host, _ = engine
    ids = docker(host, "ps", "-aq", "--filter", f"label=io.sentineliq.stack={name}").stdout.split()
    if ids:
        docker(host, "rm", "-f", *ids)


def test_status_reports_every_service_and_fails_on_an_unhealthy_one(
    engine: tuple[str | None, str], stack: str, capsys: pytest.CaptureFixture[str]
) -> None:
    host, image = engine
    for service in SERVICE_NAMES:
        if service == "kibana":
            continue  # missing
        if service == "redis":
            start(host, image, stack, service, "false")
        elif service == "client":
            start(host, image, stack, service, "true", command="exit 3")
        else:
            start(host, image, stack, service, "true")
    start(host, image, stack, "backup-postgres", "true")
    settle(host, stack, {"postgres": "healthy", "redis": "unhealthy", "backup-postgres": "healthy"})

    assert main(["status", "--stack", stack, "--json", *(["--docker-host", host] if host else [])]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["stack"] == stack and report["healthy"] is False
    services = {s["service"]: s for s in report["services"]}
    assert list(services)[: len(SERVICE_NAMES)] == list(SERVICE_NAMES), "the nine services first, in order"
    assert services["postgres"]["state"] == "running" and services["postgres"]["ok"] is True
    assert services["postgres"]["container"] == f"siq-{stack}-postgres"
    assert services["postgres"]["image"] == image
    assert services["postgres"]["uptime_seconds"] >= 0
    assert (services["redis"]["health"], services["redis"]["ok"]) == ("unhealthy", False)
    assert services["kibana"]["state"] == "missing"
    assert services["client"]["state"] == "exited" and services["client"]["uptime_seconds"] is None
    assert services["backup-postgres"]["ok"] is True


def test_status_lists_every_replica(
    engine: tuple[str | None, str], stack: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two server containers (replicas, or the old and the new one during a deploy): both are reported, and one
    unhealthy replica makes the stack unhealthy."""
    host, image = engine
    for service in SERVICE_NAMES:
        start(host, image, stack, service, "true")
    start(host, image, stack, "server-b", "false", label="server")
    settle(host, stack, {name: "healthy" for name in SERVICE_NAMES if name != "server"})
    deadline = time.monotonic() + 60
    while [s.health for s in collect(stack, host) if s.service == "server"] != ["healthy", "unhealthy"]:
        assert time.monotonic() < deadline
        time.sleep(0.5)
    assert main(["status", "--stack", stack, "--json", *(["--docker-host", host] if host else [])]) == 1
    report = json.loads(capsys.readouterr().out)
    servers = [s["container"] for s in report["services"] if s["service"] == "server"]
    assert servers == [f"siq-{stack}-server", f"siq-{stack}-server-b"]


def test_status_table_and_a_healthy_stack(
    engine: tuple[str | None, str], stack: str, capsys: pytest.CaptureFixture[str]
) -> None:
    host, image = engine
    for service in SERVICE_NAMES:
        start(host, image, stack, service, "true")
    settle(host, stack, dict.fromkeys(SERVICE_NAMES, "healthy"))
    args = ["status", "--stack", stack, *(["--docker-host", host] if host else [])]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["SERVICE", "CONTAINER", "STATE", "HEALTH", "UPTIME", "IMAGE"]
    assert f"siq-{stack}-server" in out
    assert out.rstrip().endswith(f"stack {stack}: all services healthy")


def test_status_without_docker_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--stack", "prod", "--docker-host", "unix:///nonexistent/docker.sock"]) == 2
    assert "cannot ask Docker at unix:///nonexistent/docker.sock" in capsys.readouterr().out


# --- the one-shot command lines, for real ------------------------------------------------------------------------

SCRIPT = 'set -eu\nIFS= read -r secret\nprintf "%s" "$secret" | sha256sum\n'


def args_for(host: str | None) -> OneShotArgs:
    settings = Settings.model_validate(
        {**TEST_SECRETS, "serverTag": "m", "clientTag": "m", **({"dockerHost": host} if host else {})}
    )
    return OneShotArgs(
        settings=settings,
        names=StackNames("sentineliq", "oneshot"),
        where=InRunningContainer("unused"),
        script=SCRIPT,
        stdin=SecretStr(""),
        depends_on=[],
    )


def test_a_run_one_shot_reads_its_secret_from_stdin(engine: tuple[str | None, str]) -> None:
    host, image = engine
    line = run_command(args_for(host), "test", image, "none")
    secret = "p@ss word with 'quotes'"
    result = sh(line, secret + "\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in line
    leftovers = docker(host, "ps", "-aq", "--filter", "label=io.sentineliq.stack=oneshot").stdout.split()
    assert leftovers == [], "--rm removes the one-shot container"


def test_an_exec_one_shot_and_its_absent_container(engine: tuple[str | None, str], stack: str) -> None:
    host, image = engine
    start(host, image, stack, "postgres", "true")
    container = f"siq-{stack}-postgres"
    result = sh(exec_command(args_for(host), container, skip_if_absent=True), "s3cret\n")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.split()[0]) == 64
    absent = sh(exec_command(args_for(host), f"{container}-gone", skip_if_absent=True), "s3cret\n")
    assert absent.returncode == 0 and "nothing to do" in absent.stdout
    strict = sh(exec_command(args_for(host), f"{container}-gone", skip_if_absent=False), "s3cret\n")
    assert strict.returncode != 0


def test_creating_an_existing_volume_adopts_it_unchanged(engine: tuple[str | None, str], stack: str) -> None:
    """What the README's compose-adoption runbook relies on: a create by an existing name (the Docker API call
    behind the provider's Volume create) returns that volume, data intact."""
    host, image = engine
    volume = f"siq-{stack}-adopted"
    try:
        assert docker(host, "volume", "create", volume).returncode == 0
        written = docker(
            host, "run", "--rm", "--network=none", "-v", f"{volume}:/data", image, "sh", "-c", "echo kept > /data/file"
        )
        assert written.returncode == 0, written.stderr
        again = docker(host, "volume", "create", volume)
        assert again.returncode == 0 and again.stdout.strip() == volume
        read = docker(host, "run", "--rm", "--network=none", "-v", f"{volume}:/data", image, "cat", "/data/file")
        assert read.stdout.strip() == "kept"
    finally:
        docker(host, "volume", "rm", "-f", volume)


def test_a_one_shot_container_has_no_capability_and_no_new_privileges(engine: tuple[str | None, str]) -> None:
    """The exact `docker run` line of a one-shot, on a real engine, reads its own process status from the kernel."""
    host, image = engine
    args = dataclasses.replace(args_for(host), script="cat /proc/self/status")
    result = sh(run_command(args, "test", image, "none"), "")
    assert result.returncode == 0, result.stderr
    status = dict(line.split(":\t", 1) for line in result.stdout.splitlines() if ":\t" in line)
    assert status["Uid"].split()[0] == "0", "root in the container, so only --cap-drop keeps it powerless"
    assert int(status["CapEff"], 16) == 0
    assert int(status["CapBnd"], 16) == 0
    assert status["NoNewPrivs"].strip() == "1"


def kibana_like_image(host: str | None, image: str) -> str:
    """The tiny image with Kibana's user: uid 1000, group 1000, member of group 0 (elastic/dockerfiles
    kibana/Dockerfile at 8.11.0: `useradd --uid 1000 --gid 1000 -G 0`, `USER kibana`), and its config folder."""
    tag = "sentineliq-test/kibana-like:1"
    setup = (
        "busybox mkdir -p /etc /usr/share/kibana/config && busybox chown -R 1000:0 /usr/share/kibana"
        " && printf 'root:x:0:0::/root:/bin/sh\\nkibana:x:1000:1000::/usr/share/kibana:/bin/sh\\n' > /etc/passwd"
        " && printf 'root:x:0:kibana\\nkibana:x:1000:\\n' > /etc/group"
    )
    name = f"siq-build-{uuid.uuid4().hex[:8]}"
    built = docker(host, "run", f"--name={name}", "--network=none", image, "sh", "-c", setup)
    assert built.returncode == 0, built.stderr
    try:
        assert docker(host, "commit", "--change", "USER kibana", name, tag).returncode == 0
    finally:
        docker(host, "rm", "-f", name)
    return tag


def upload_like_the_provider(host: str | None, container: str, path: str, content: str, mode: str) -> None:
    """What the provider's upload does (resource_docker_container_funcs.go at 5074970c): a tar with one entry named
    after the file, the mode parsed from `permissions`, no owner, copied to "/" with CopyToContainerOptions{}."""
    data = content.encode()
    entry = tarfile.TarInfo(path)
    entry.mode, entry.size = int(mode, 8), len(data)
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(entry, io.BytesIO(data))
    command = ["docker", *(["--host", host] if host else []), "cp", "-", f"{container}:/"]
    copied = subprocess.run(command, input=archive.getvalue(), capture_output=True, check=False, timeout=60)
    assert copied.returncode == 0, copied.stderr


@pytest.mark.parametrize("mode", ["spec", "0600"])
def test_kibana_can_read_its_uploaded_config_and_nobody_else_can(
    engine: tuple[str | None, str], stack: str, mode: str
) -> None:
    host, image = engine
    upload = kibana(Settings.model_validate({**TEST_SECRETS, "serverTag": "m", "clientTag": "m"})).files[0]
    chosen = upload.mode if mode == "spec" else mode
    name = f"siq-{stack}-kibana"
    created = docker(
        host,
        "create",
        f"--name={name}",
        "--network=none",
        f"--label=io.sentineliq.stack={stack}",
        kibana_like_image(host, image),
        "/bin/sleep",
        "600",
    )
    assert created.returncode == 0, created.stderr
    upload_like_the_provider(host, name, upload.path, upload.content.get_secret_value(), chosen)  # type: ignore[union-attr]
    assert docker(host, "start", name).returncode == 0
    owner = docker(host, "exec", "--user=0", name, "/bin/busybox", "stat", "-c", "%u:%g %a", upload.path)
    assert owner.stdout.split() == ["0:0", chosen.lstrip("0")], "uploaded as root:root with the given mode"
    read = docker(host, "exec", name, "/bin/cat", upload.path)
    if mode == "spec":
        assert read.returncode == 0, read.stderr
        assert read.stdout == upload.content.get_secret_value()  # type: ignore[union-attr]
        other = docker(host, "exec", "--user=2000:2000", name, "/bin/cat", upload.path)
        assert other.returncode != 0, "another uid outside group 0 cannot read the secrets"
    else:
        assert read.returncode != 0, "0600 root:root: Kibana (uid 1000) could not read its configuration"


def test_status_tells_two_stacks_of_one_host_apart_by_the_labels_the_program_registers(
    engine: tuple[str | None, str], capsys: pytest.CaptureFixture[str]
) -> None:
    """Two stacks of the project on one host, their containers labelled exactly as the program registers them:
    `status` of one stack lists its containers only (a stack label dropped from the registrations would mix them)."""
    host, image = engine
    stacks = {"dev": deploy_stack("dev"), "prod": deploy_stack("prod")}
    started: list[str] = []
    try:
        for stack, deployment in stacks.items():
            for resource in deployment.resources:
                if resource.type != "docker:index/container:Container":
                    continue
                labels = {entry["label"]: entry["value"] for entry in resource.inputs["labels"]}
                if labels.get("io.sentineliq.service") not in {"postgres", "server"}:
                    continue
                name = f"siq-labels-{stack}-{uuid.uuid4().hex[:6]}"
                result = docker(
                    host,
                    "run",
                    "--detach",
                    "--network=none",
                    f"--name={name}",
                    *(f"--label={key}={value}" for key, value in labels.items()),
                    image,
                    "sleep",
                    "600",
                )
                assert result.returncode == 0, result.stderr
                started.append(name)
        for stack in stacks:
            main(["status", "--stack", stack, "--json", *(["--docker-host", host] if host else [])])
            report = json.loads(capsys.readouterr().out)
            found = {s["container"] for s in report["services"] if s["state"] != "missing"}
            assert found and all(name.startswith(f"siq-labels-{stack}-") for name in found), (stack, found)
            assert {s["service"] for s in report["services"] if s["state"] != "missing"} == {"postgres", "server"}
    finally:
        if started:
            docker(host, "rm", "-f", *started)
