"""Read-back: every input the program sends to a Docker resource is what the provider's Read stores for it.

The mocks record what the program sends; `provider_read` holds what kreuzwerker/terraform-provider-docker's Read
functions (5074970c) store for each field, ported from upstream. Where the two differ, every `pulumi up` shows a
change, and on a ForceNew field or under `replace_on_changes` it replaces a running container. This test is what
README's "an unchanged `pulumi up` touches nothing" is checked against, over both stack files, adopted volumes, a
remote host, and generated `resources.*` values. A field or a Docker resource type the model does not know fails
it, with a message that says where to add the rule.

Layers of proof: the program side is the mocks; the provider side is a port of upstream's Read (read, not run:
no provider binary runs here); the engine side of volume adoption is a real dockerd.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
from typing import Any

import pytest
from harness import (
    ADOPTED_VOLUMES,
    PROJECT,
    STACK_VARIANTS,
    Deployment,
    Registration,
    deploy,
    deploy_stack,
    stack_config,
    unwrap,
    with_secrets,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from local_servers import docker_engine, tiny_image
from provider_read import RULES, drift, parse_duration

from sentinel_infra.docker.provider_forms import go_duration, nano_cpus_string, parse_cpus
from sentinel_infra.settings import SERVICE_NAMES, collect_problems


def docker_resources(deployment: Deployment) -> list[Registration]:
    """The provider's resources (the `pulumi:providers:docker` resource itself has no Read: its inputs are config)."""
    return [r for r in deployment.resources if r.type.startswith("docker:")]


def assert_reads_back(deployment: Deployment) -> None:
    resources = docker_resources(deployment)
    assert {r.type for r in resources} >= {"docker:index/container:Container", "docker:index/volume:Volume"}
    problems = [problem for resource in resources for problem in drift(resource)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("stack", sorted(STACK_VARIANTS))
def test_every_docker_input_reads_back_as_sent(stack: str) -> None:
    assert_reads_back(STACK_VARIANTS[stack]())


# --- generated resources.* values --------------------------------------------------------------------------------

limits = st.fixed_dictionaries(
    {},
    optional={
        # The settings' granularity (hundredths) over the whole range, as JSON numbers.
        "cpus": st.integers(5, 6400).map(lambda hundredths: hundredths / 100),
        "memoryMb": st.integers(64, 1_048_576),
    },
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(SERVICE_NAMES), limits, max_size=len(SERVICE_NAMES)))
def test_generated_resources_read_back_or_are_refused(resources: dict[str, dict[str, float]]) -> None:
    config, secret_keys = with_secrets(stack_config("prod"))
    config[f"{PROJECT}:resources"] = json.dumps(resources)
    strip = len(PROJECT) + 1
    problems, accepted = collect_problems({k[strip:]: v for k, v in config.items()}, {k[strip:] for k in secret_keys})
    if accepted is None:
        # Only a cpus value the provider would read back rounded may be refused, and it is named with its rule.
        assert problems, "refused without a problem"
        for problem in problems:
            assert problem.key.startswith("resources.") and problem.key.endswith(".cpus"), problem.render()
            assert "is read back by the Docker provider as" in problem.rule, problem.render()
        return
    assert_reads_back(deploy(config, secret_keys, stack="prod"))


# --- the model catches what it must --------------------------------------------------------------------------------


def container(prod: Deployment, **inputs: object) -> Registration:
    """The prod postgres container with some inputs replaced."""
    original = prod.containers()["postgres"]
    return Registration(**{**vars(original), "inputs": {**original.inputs, **inputs}})


@pytest.mark.parametrize(
    ("inputs", "expected"),
    [
        # Today's main before the fixes: "2" is stored as "2.0", "60s" as "1m0s".
        ({"cpus": "2"}, "cpus is sent as '2' but the provider's Read stores '2.0'"),
        ({"cpus": "10"}, "cpus is sent as '10' but the provider's Read stores '10.'"),
        ({"cpus": "0.05"}, "cpus is sent as '0.05' but the provider's Read stores '0.1'"),
        (
            {"healthcheck": {"tests": ["CMD", "true"], "interval": "60s", "retries": 3}},
            "healthcheck.interval is sent as '60s' but the provider's Read stores '1m0s'",
        ),
        ({"image": "postgres:16-alpine"}, "image must be an image id"),
        ({"ports": [{"internal": 5432, "external": 5432, "protocol": "tcp"}]}, "ports is sent as"),
        (
            {"ports": [{"internal": 9, "external": 9, "ip": "::1"}, {"internal": 8, "external": 8, "ip": "::1"}]},
            "ports is sent as",
        ),
        ({"memory": 4096.5}, "memory is sent as"),
        ({"shmSize": 64}, "input 'shmSize' has no read-back rule"),
        (
            {"healthcheck": {"tests": ["CMD", "true"], "startInterval": "1s", "timeoutish": "1s"}},
            "healthcheck.timeoutish",
        ),
    ],
)
def test_the_model_reports_drift(prod: Deployment, inputs: dict[str, object], expected: str) -> None:
    problems = drift(container(prod, **inputs))
    assert len(problems) == 1, problems
    assert expected in problems[0]
    if "no read-back rule" in expected or "timeoutish" in expected:
        assert "tests/provider_read.py" in problems[0]


def test_an_unknown_docker_resource_type_fails_with_where_to_add_it(prod: Deployment) -> None:
    original = prod.containers()["postgres"]
    secret = Registration(**{**vars(original), "type": "docker:index/secret:Secret", "inputs": {"name": "x"}})
    [problem] = drift(secret)
    assert "no rules for this resource type" in problem
    assert "RULES in tests/provider_read.py" in problem


def test_ignored_fields_are_not_diffed(prod: Deployment) -> None:
    volume = prod.named("sentineliq-postgres-data")
    assert volume.options["ignoreChanges"] == ["labels"]
    assert drift(volume) == []
    unguarded = Registration(**{**vars(volume), "options": {}})
    [problem] = drift(unguarded)
    assert "ignore_changes=['labels']" in problem


def test_every_rule_table_is_in_use() -> None:
    """A type whose rules no registration exercises is stale: the program stopped registering it."""
    registered = {r.type for stack in ("dev", "prod") for r in docker_resources(deploy_stack(stack))}
    assert registered == set(RULES)


# --- Go's ParseDuration, which the healthcheck rule relies on --------------------------------------------------


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [
        # From Go's own parseDurationTests (src/time/time_test.go).
        ("0", 0),
        ("5s", 5 * 10**9),
        ("30s", 30 * 10**9),
        ("1478s", 1478 * 10**9),
        ("1.0s", 10**9),
        ("1.s", 10**9),
        (".5s", 5 * 10**8),
        ("1.004s", 1_004_000_000),
        ("100.00100s", 100_001_000_000),
        ("10ns", 10),
        ("11us", 11_000),
        ("12µs", 12_000),
        ("12μs", 12_000),
        ("13ms", 13_000_000),
        ("14s", 14 * 10**9),
        ("15m", 15 * 60 * 10**9),
        ("16h", 16 * 3600 * 10**9),
        ("3h30m", (3 * 3600 + 30 * 60) * 10**9),
        ("10.5s4m", (4 * 60 + 10) * 10**9 + 5 * 10**8),
        ("1h1m1s", 3661 * 10**9),
        ("1m0s", 60 * 10**9),
        ("2m0s", 120 * 10**9),
    ],
)
def test_parse_duration(text: str, nanoseconds: int) -> None:
    assert parse_duration(text) == nanoseconds


@pytest.mark.parametrize("text", ["", "3", "-", "s", ".", "-.", ".s", "+.s", "1d", "10 s"])
def test_parse_duration_refuses_what_go_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


@pytest.mark.parametrize("count", [0, 1, 59, 60, 61, 119, 120, 180, 300, 3599, 3600, 3601, 86400])
def test_seconds_round_trip_through_parse_and_string(count: int) -> None:
    text = go_duration(count * 10**9)
    assert parse_duration(text) == count * 10**9
    assert go_duration(parse_duration(text)) == text


# --- volume adoption on a real engine --------------------------------------------------------------------------


def test_an_existing_volume_keeps_its_labels_and_the_program_ignores_them() -> None:
    """moby's volume store returns an existing volume unchanged: the labels the provider's Create then reads back
    are the first creator's, whatever the program sent. The program's adopted volumes must not diff on them."""
    deployment = deploy_stack("prod", volumeNames=json.dumps(ADOPTED_VOLUMES))
    adopted = deployment.named("sentineliq-postgres-data")
    assert adopted.plain("name") == ADOPTED_VOLUMES["postgresData"]
    sent = {item["label"]: item["value"] for item in adopted.plain("labels")}
    with docker_engine() as host:
        docker = ["docker", *(["--host", host] if host else [])]
        name = "siq-readback-adopted-" + str(abs(hash(host)))[:8]
        try:
            # docker compose created it first, with its own labels.
            subprocess.run(
                [*docker, "volume", "create", "--label", "com.docker.compose.project=sentineliq", name],
                check=True,
                capture_output=True,
            )
            # The provider's Create: VolumeCreate with the program's name and labels, then Read (VolumeInspect).
            subprocess.run(
                [*docker, "volume", "create", *(f"--label={k}={v}" for k, v in sent.items()), name],
                check=True,
                capture_output=True,
            )
            inspected = json.loads(
                subprocess.run([*docker, "volume", "inspect", name], check=True, capture_output=True, text=True).stdout
            )[0]
        finally:
            subprocess.run([*docker, "volume", "rm", "-f", name], capture_output=True, check=False)
    read_back = inspected["Labels"]
    assert read_back == {"com.docker.compose.project": "sentineliq"}
    assert read_back != sent
    # What the engine stores differs from what the program sends, so only ignore_changes keeps it from a diff.
    assert "labels" in adopted.options["ignoreChanges"]
    assert drift(adopted) == []


# --- containers on a real engine -----------------------------------------------------------------------------------


def _engine_request(socket_path: str, method: str, path: str, body: object | None = None) -> tuple[int, Any]:
    """One Docker Engine API call over its unix socket, as the provider's Go client makes it."""

    class UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(socket_path)

    connection = UnixConnection("docker")
    payload = None if body is None else json.dumps(body)
    connection.request(method, path, body=payload, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    text = response.read().decode()
    connection.close()
    return response.status, (json.loads(text) if text else None)


def create_body(resource: Registration, image_id: str) -> dict[str, Any]:
    """The ContainerCreate request `resourceDockerContainerCreate` makes for the fields the program sets (networks,
    volumes and uploads aside: Read does not store them). Durations go through Go's ParseDuration."""
    inputs = unwrap(resource.inputs)
    check = inputs["healthcheck"]
    host_config = {
        "RestartPolicy": {"Name": inputs["restart"], "MaximumRetryCount": 0},
        "ReadonlyRootfs": bool(inputs.get("readOnly")),
        "LogConfig": {"Type": inputs["logDriver"], "Config": inputs.get("logOpts") or {}},
        "Tmpfs": inputs.get("tmpfs"),
        "CapAdd": inputs["capabilities"].get("adds"),
        "CapDrop": inputs["capabilities"].get("drops"),
        "SecurityOpt": inputs["securityOpts"],
        "Memory": int(inputs["memory"]) * 1024 * 1024,
        "MemorySwap": int(inputs["memorySwap"]) * 1024 * 1024,
        "NanoCpus": parse_cpus(inputs["cpus"]),
        "NetworkMode": "none",
    }
    return {
        "Image": image_id,
        # The test image has no CMD of its own: a container that relies on its image's gets a stand-in (its command
        # is not an input, so it is not compared).
        "Cmd": inputs.get("command") or ["true"],
        "Entrypoint": inputs.get("entrypoints"),
        "StopTimeout": int(inputs["stopTimeout"]),
        "Healthcheck": {
            "Test": check["tests"],
            "Interval": parse_duration(check["interval"]),
            "Timeout": parse_duration(check["timeout"]),
            "StartPeriod": parse_duration(check["startPeriod"]),
            "StartInterval": parse_duration(check["startInterval"]),
            "Retries": int(check["retries"]),
        },
        "HostConfig": host_config,
    }


def read_container(inspected: dict[str, Any]) -> dict[str, Any]:
    """`resourceDockerContainerRead` for those fields, from a real `ContainerInspect` (see provider_read)."""
    config, host = inspected["Config"], inspected["HostConfig"]
    check, log = config["Healthcheck"], host["LogConfig"]
    return {
        "name": str(inspected["Name"]).lstrip("/"),
        "image": inspected["Image"],
        "command": config["Cmd"],
        "entrypoints": config["Entrypoint"],
        "restart": host["RestartPolicy"]["Name"],
        "readOnly": host["ReadonlyRootfs"],
        "logDriver": log["Type"],
        "logOpts": log["Config"],
        "tmpfs": host.get("Tmpfs"),  # omitted by the engine when empty
        "capabilities": {"adds": host["CapAdd"], "drops": host["CapDrop"]},
        "securityOpts": host["SecurityOpt"],
        "memory": int(host["Memory"]) // 1024 // 1024,
        "memorySwap": int(host["MemorySwap"]) // 1024 // 1024,
        "cpus": nano_cpus_string(int(host["NanoCpus"])),
        "stopTimeout": config["StopTimeout"],
        "healthcheck": {
            "tests": check["Test"],
            "retries": check["Retries"],
            **{
                field: go_duration(int(check.get(key, 0)))
                for field, key in (
                    ("interval", "Interval"),
                    ("timeout", "Timeout"),
                    ("startPeriod", "StartPeriod"),
                    ("startInterval", "StartInterval"),
                )
            },
        },
    }


def test_containers_read_back_from_a_real_engine_as_sent() -> None:
    """Each container of the prod stack, created on a real dockerd as the provider creates it, then inspected and
    read as the provider reads it: every stored field equals what the program sent. Ports are left out (the engine
    reports them only for a running container, and these commands cannot run in the test image); so are fields
    Read does not store. An engine older than API 1.44 (Docker 25) drops `start_interval`: then it reads back
    `0s`, the drift README's prerequisites warn about, and the test asserts exactly that."""
    deployment = deploy_stack("prod")
    containers = [r for r in deployment.of_type("docker:index/container:Container")]
    with docker_engine() as host:
        if host is None or not host.startswith("unix://"):
            pytest.skip("needs a Docker engine on a unix socket")
        socket_path = host.removeprefix("unix://")
        image = tiny_image(host, "sentineliq-test/readback:1")
        status, found = _engine_request(socket_path, "GET", f"/images/{image}/json")
        assert status == 200, found
        image_id = str(found["Id"])
        status, version = _engine_request(socket_path, "GET", "/version")
        api = tuple(int(part) for part in str(version["ApiVersion"]).split("."))
        for resource in containers:
            sent = unwrap(resource.inputs)
            name = f"siq-readback-{resource.name}"
            status, created = _engine_request(
                socket_path, "POST", f"/containers/create?name={name}", create_body(resource, image_id)
            )
            assert status == 201, (resource.name, created)
            try:
                status, inspected = _engine_request(socket_path, "GET", f"/containers/{name}/json")
                assert status == 200
                read = read_container(inspected)
            finally:
                _engine_request(socket_path, "DELETE", f"/containers/{name}?force=true")
            expected = {**sent, "name": name, "image": image_id}
            if api < (1, 44):
                expected["healthcheck"] = {**sent["healthcheck"], "startInterval": "0s"}
            for field in sorted(set(read) & set(sent)):
                got, wanted = canonical(field, read[field]), canonical(field, expected[field])
                assert got == wanted, f"{resource.name}.{field}: sent {wanted!r}, the engine reads back {got!r}"


def canonical(field: str, value: Any) -> Any:
    """Sets (TypeSet upstream) compare without order; numbers arrive from the mocks as doubles."""
    if field == "securityOpts":
        return sorted(value)
    if field == "capabilities":
        return {k: sorted(v) for k, v in value.items() if v}
    if field == "healthcheck":
        return {**value, "retries": int(value["retries"])}
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
