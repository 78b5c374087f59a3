"""The policy pack's rules: the stacks as registered pass them; each branch of each rule fires on its bad value and
stays quiet on its good one; no shape of input makes a validator raise."""

from __future__ import annotations

import ast
import copy
import dataclasses
import inspect
import json
import re
from collections.abc import Callable
from typing import Any

import pulumi_docker as docker
import pytest
from google.protobuf import json_format, struct_pb2
from harness import (
    ROOT,
    TEST_SECRETS,
    Deployment,
    Registration,
    Secret,
    deploy,
    deploy_stack,
    stack_config,
    unwrap,
    with_secrets,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pulumi.runtime import rpc
from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy import EnforcementLevel, PolicyCustomTimeouts, PolicyResourceOptions, ResourceValidationArgs
from pulumi_policy.policy import _PolicyAnalyzerServicer
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy
from sentineliq_policy import docker_cli, pack
from sentineliq_policy.rules import (
    COMMANDS,
    CONTAINER,
    DOCUMENTED_CAPABILITIES,
    IMAGE,
    LOCAL_COMMAND,
    NAMESPACE_MODES,
    PLUGIN,
    REMOTE_COMMAND,
    RULES,
    SWARM_SERVICE,
    VOLUME,
    one_shot_containers,
)
from sentineliq_policy.values import SENSITIVE_DIRECTORIES, SENSITIVE_TREES, normalise, sensitive
from test_stack import remote

from sentinel_infra.settings import Settings
from sentinel_infra.specs.client import client
from sentinel_infra.specs.postgres import postgres
from sentinel_infra.specs.redis import redis

URN = "urn:pulumi:prod::sentineliq::sentineliq:service:ServiceContainer$docker:index/container:Container::{}"


def options(protect: bool = False, delete_before_replace: bool | None = None) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=protect,
        ignore_changes=[],
        delete_before_replace=delete_before_replace,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=None,
    )


def args_of(
    resource_type: str,
    props: Any,
    name: str = "thing",
    urn: str | None = None,
    protect: bool = False,
    config: Any = None,
    delete_before_replace: bool | None = None,
) -> ResourceValidationArgs:
    """What the engine hands a validator: camelCase props, secrets unwrapped, the resource options."""
    return ResourceValidationArgs(
        resource_type=resource_type,
        props=props,
        urn=urn or URN.format(name),
        name=name,
        opts=options(protect, delete_before_replace),
        provider=None,
        config=config,
    )


def args_for(resource: Registration, config: dict[str, Any] | None = None, props: Any = None) -> ResourceValidationArgs:
    """The engine's arguments for a registered resource (its props, or these instead)."""
    replace = resource.delete_before_replace if resource.delete_before_replace_defined else None
    props = unwrap(resource.inputs) if props is None else props
    return args_of(resource.type, props, resource.name, resource.urn, resource.protect, config, replace)


def run(args: ResourceValidationArgs, only: set[str] | None = None) -> dict[str, list[str]]:
    """{rule name: messages} for the rules the resource breaks, each rule through its real validator (the pack's
    resource policies come first, in the order of its rules)."""
    found: dict[str, list[str]] = {}
    for rule, policy in zip(pack.RULES, pack.policies()[: len(pack.RULES)], strict=True):
        if only is not None and rule.name not in only:
            continue
        messages: list[str] = []
        policy.validate(args, lambda message, _urn, out=messages: out.append(message))
        if messages:
            found[rule.name] = messages
    return found


def violations(resource: Registration) -> dict[str, list[str]]:
    return run(args_for(resource))


# --- the real stacks -------------------------------------------------------------------------------------------


def _variants() -> dict[str, Callable[[], Deployment]]:
    def private_registry() -> Deployment:
        config, secret_keys = with_secrets(stack_config("prod"), {**TEST_SECRETS, "registryToken": "tok-0123456789"})
        config["sentineliq:registryUsername"] = "ci-bot"
        config["sentineliq:imageRegistry"] = "registry.example.com:5000/team"
        return deploy(config, secret_keys, stack="prod")

    return {
        "dev": lambda: deploy_stack("dev"),
        "prod": lambda: deploy_stack("prod"),
        "prod-ssh": remote,
        "prod-registry": private_registry,
        "prod-backup-path": lambda: deploy_stack("prod", backup='{"path": "/srv/backups/sentineliq"}'),
        "dev-backups": lambda: deploy_stack("dev", backup='{"enabled": true}'),
    }


@pytest.fixture(scope="module", params=sorted(_variants()))
def deployment(request: pytest.FixtureRequest) -> Deployment:
    return _variants()[request.param]()


def test_the_stacks_pass_every_rule(deployment: Deployment) -> None:
    checked = {CONTAINER: 0, VOLUME: 0, IMAGE: 0, LOCAL_COMMAND: 0, REMOTE_COMMAND: 0}
    for resource in deployment.resources:
        assert violations(resource) == {}, resource.name
        if resource.type in checked:
            checked[resource.type] += 1
        # Under the engine the props arrive behind pulumi_policy's proxy: the same verdict.
        proxied = args_for(resource)
        proxied.props = unknown_checking_proxy(unwrap(resource.inputs))
        assert run(proxied) == {}, resource.name
    assert checked[CONTAINER] >= 8 and checked[VOLUME] >= 4 and checked[IMAGE] >= 8
    assert checked[LOCAL_COMMAND] + checked[REMOTE_COMMAND] >= 4


def test_the_one_shot_lines_are_read_as_the_containers_they_start(prod: Deployment) -> None:
    """`docker run` flags become container properties the rules check: the real migrate line, read back."""
    migrate = prod.named("migrate-command")
    [container] = one_shot_containers(unwrap(migrate.inputs))
    assert container["networksAdvanced"] == [{"name": "sentineliq-prod-network"}]
    assert container["securityOpts"] == ["no-new-privileges:true"]
    assert container["capabilities"] == {"drops": ["ALL"]}
    assert container["image"].startswith("sha256:")
    assert {"label": "io.sentineliq.service", "value": "migrate"} in container["labels"]


@pytest.mark.parametrize(
    ("flag", "rule"),
    [
        ("--cap-drop=ALL", "drop-capabilities"),
        ("--security-opt=no-new-privileges:true", "no-new-privileges"),
        ("--network=sentineliq-prod-network", "stack-network"),
        ("--memory=1g", "memory-limit"),
        ("--cpus=1", "cpu-limit"),
        ("--pids-limit=512", "pids-limit"),
    ],
)
def test_dropping_a_hardening_flag_from_a_real_one_shot_line_fails(prod: Deployment, flag: str, rule: str) -> None:
    for name in ("migrate-command", "elastic-setup-command"):
        command = copy.deepcopy(prod.named(name))
        line = unwrap(command.inputs)["create"]
        assert flag in line
        command.inputs = {**unwrap(command.inputs), "create": line.replace(flag, "", 1)}
        assert rule in violations(command), name


# --- each rule, each branch ------------------------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], None]


def _volume(source: str, **extra: Any) -> Mutation:
    return lambda p: p.setdefault("volumes", []).append({"hostPath": source, "containerPath": "/x", **extra})


def _named(source: str) -> Mutation:
    return lambda p: p.setdefault("volumes", []).append({"volumeName": source, "containerPath": "/x"})


def _mount(**mount: Any) -> Mutation:
    return lambda p: p.setdefault("mounts", []).append({"target": "/x", **mount})


def _set(**values: Any) -> Mutation:
    return lambda p: p.update(values)


def _ports(*ports: dict[str, Any]) -> Mutation:
    return lambda p: p.update(ports=list(ports))


def _opts(*opts: str) -> Mutation:
    return lambda p: p.update(securityOpts=list(opts))


def _caps(drops: Any = ("ALL",), adds: Any = None) -> Mutation:
    return lambda p: p.update(capabilities={"drops": list(drops), **({} if adds is None else {"adds": adds})})


# (rule, case, service the container is, mutation, fires)
CONTAINER_CASES: list[tuple[str, str, str, Mutation, bool]] = [
    # service-identity
    ("service-identity", "no label", "postgres", _set(labels=[]), True),
    (
        "service-identity",
        "another service's label",
        "postgres",
        _set(labels=[{"label": "io.sentineliq.service", "value": "client"}]),
        True,
    ),
    ("service-identity", "renamed", "postgres", _set(name="sentineliq-prod-other"), True),
    ("service-identity", "named after its label", "edge", lambda p: None, False),
    ("service-identity", "autonamed, its logical name says it", "client", lambda p: None, False),
    ("service-identity", "a replica", "server-2", lambda p: None, False),
    (
        "service-identity",
        "autonamed with another label",
        "client",
        _set(labels=[{"label": "io.sentineliq.service", "value": "edge"}]),
        True,
    ),
    # no-privileged
    ("no-privileged", "true", "postgres", _set(privileged=True), True),
    ("no-privileged", "'true' as text", "postgres", _set(privileged="true"), True),
    ("no-privileged", "unreadable", "postgres", _set(privileged="yes"), True),
    ("no-privileged", "false", "postgres", _set(privileged=False), False),
    # no-host-namespaces: each namespace, host and another container's
    ("no-host-namespaces", "network host", "postgres", _set(networkMode="host"), True),
    ("no-host-namespaces", "network of a container", "postgres", _set(networkMode="container:x"), True),
    ("no-host-namespaces", "network bridge", "postgres", _set(networkMode="bridge"), False),
    ("no-host-namespaces", "pid host", "postgres", _set(pidMode="host"), True),
    ("no-host-namespaces", "pid of a container", "postgres", _set(pidMode="container:x"), True),
    ("no-host-namespaces", "ipc host", "postgres", _set(ipcMode="host"), True),
    ("no-host-namespaces", "ipc private", "postgres", _set(ipcMode="private"), False),
    ("no-host-namespaces", "uts host", "postgres", _set(utsMode="host"), True),
    ("no-host-namespaces", "userns host", "postgres", _set(usernsMode="host"), True),
    ("no-host-namespaces", "cgroupns host", "postgres", _set(cgroupnsMode="host"), True),
    ("no-host-namespaces", "cgroupns private", "postgres", _set(cgroupnsMode="private"), False),
    # no-sensitive-mounts: every list entry, normalised, prefix matching, the exact-only folders
    *[
        ("no-sensitive-mounts", f"hostPath {path}", "postgres", _volume(path), True)
        for path in (
            "/",
            "/etc",
            "/./etc",
            "//etc",
            "/etc/",
            "/srv/../etc",
            "/../etc",
            "/etc/ssl",
            "/var/lib",
            "/var/lib/docker",
            "/var/lib/docker/volumes",
            "/lib64",
            "/usr/lib",
            "/proc/self/root",
            "/run/containerd/containerd.sock",
            "/var/run/docker.sock",
            "/srv/docker.sock",
            "/srv/app/agent.sock",
            "/home/deploy/.ssh",
            "/home",
            "/var",
            "/var/backups",
            "/tmp/sentineliq",
            "/root",
        )
    ],
    *[
        ("no-sensitive-mounts", f"hostPath {path}", "postgres", _volume(path), False)
        for path in ("/var/backups/sentineliq-prod", "/srv/backups/sentineliq", "/home/deploy/backups", "/etcetera")
    ],
    ("no-sensitive-mounts", "volumeName that is a path", "postgres", _named("/etc"), True),
    ("no-sensitive-mounts", "volumeName through //", "postgres", _named("//etc/"), True),
    ("no-sensitive-mounts", "volumeName relative path", "postgres", _named("../../etc"), True),
    ("no-sensitive-mounts", "volumeName", "postgres", _named("sentineliq-prod-postgres-data"), False),
    ("no-sensitive-mounts", "a ':' in a hostPath", "postgres", _volume("/srv/a:b"), True),
    (
        "no-sensitive-mounts",
        "a ':' in a containerPath",
        "postgres",
        lambda p: p["volumes"].append({"volumeName": "v", "containerPath": "/x:ro"}),
        True,
    ),
    (
        "no-sensitive-mounts",
        "volumes from a container",
        "postgres",
        lambda p: p["volumes"].append({"fromContainer": "other"}),
        True,
    ),
    (
        "no-sensitive-mounts",
        "selinuxRelabel that sets propagation",
        "postgres",
        _volume("/srv/x", selinuxRelabel="shared"),
        True,
    ),
    ("no-sensitive-mounts", "selinuxRelabel z", "postgres", _volume("/srv/x", selinuxRelabel="z"), False),
    ("no-sensitive-mounts", "bind mount /", "postgres", _mount(type="bind", source="/"), True),
    ("no-sensitive-mounts", "bind mount /./etc", "postgres", _mount(type="bind", source="/./etc"), True),
    ("no-sensitive-mounts", "bind mount relative", "postgres", _mount(type="bind", source="etc"), True),
    (
        "no-sensitive-mounts",
        "bind mount a dedicated folder",
        "postgres",
        _mount(type="bind", source="/srv/data"),
        False,
    ),
    ("no-sensitive-mounts", "volume mount with a path", "postgres", _mount(type="volume", source="/etc"), True),
    (
        "no-sensitive-mounts",
        "local volume o=bind device=/etc",
        "postgres",
        _mount(
            type="volume", source="v", volumeOptions={"driverOptions": {"type": "none", "o": "bind", "device": "/etc"}}
        ),
        True,
    ),
    (
        "no-sensitive-mounts",
        "local volume o=bind device=/./etc/",
        "postgres",
        _mount(
            type="volume",
            source="v",
            volumeOptions={"driverName": "local", "driverOptions": {"o": "bind", "device": "/./etc/"}},
        ),
        True,
    ),
    (
        "no-sensitive-mounts",
        "local volume o=bind relative device",
        "postgres",
        _mount(type="volume", source="v", volumeOptions={"driverOptions": {"o": "bind", "device": "etc"}}),
        True,
    ),
    (
        "no-sensitive-mounts",
        "local volume of a dedicated folder",
        "postgres",
        _mount(type="volume", source="v", volumeOptions={"driverOptions": {"o": "bind", "device": "/srv/data"}}),
        False,
    ),
    (
        "no-sensitive-mounts",
        "third-party volume driver",
        "postgres",
        _mount(type="volume", source="v", volumeOptions={"driverName": "local-persist"}),
        True,
    ),
    ("no-sensitive-mounts", "npipe mount", "postgres", _mount(type="npipe", source="x"), True),
    ("no-sensitive-mounts", "tmpfs mount", "postgres", _mount(type="tmpfs"), False),
    # mount-propagation
    (
        "mount-propagation",
        "shared",
        "postgres",
        _mount(type="bind", source="/srv/x", bindOptions={"propagation": "shared"}),
        True,
    ),
    (
        "mount-propagation",
        "rshared",
        "postgres",
        _mount(type="bind", source="/srv/x", bindOptions={"propagation": "rshared"}),
        True,
    ),
    (
        "mount-propagation",
        "rslave",
        "postgres",
        _mount(type="bind", source="/srv/x", bindOptions={"propagation": "rslave"}),
        False,
    ),
    # no-devices
    ("no-devices", "a device", "postgres", _set(devices=[{"hostPath": "/dev/sda"}]), True),
    ("no-devices", "a device request", "postgres", _set(deviceRequests=[{"driver": "nvidia"}]), True),
    ("no-devices", "gpus", "postgres", _set(gpus="all"), True),
    ("no-devices", "a device cgroup rule", "postgres", _set(deviceCgroupRules=["c 1:3 mr"]), True),
    ("no-devices", "empty lists", "postgres", _set(devices=[], deviceRequests=[]), False),
    # default-cgroup
    ("default-cgroup", "a cgroup parent", "postgres", _set(cgroupParent="/system.slice"), True),
    ("default-cgroup", "empty", "postgres", _set(cgroupParent=""), False),
    # drop-capabilities
    ("drop-capabilities", "nothing dropped", "postgres", _caps(drops=()), True),
    ("drop-capabilities", "one dropped", "postgres", _caps(drops=("NET_RAW",)), True),
    ("drop-capabilities", "drop all (lower case)", "postgres", _caps(drops=("all",)), False),
    ("drop-capabilities", "add ALL", "postgres", _caps(adds=["ALL"]), True),
    ("drop-capabilities", "add SYS_ADMIN", "postgres", _caps(adds=["SYS_ADMIN"]), True),
    ("drop-capabilities", "add cap_sys_admin", "postgres", _caps(adds=["cap_sys_admin"]), True),
    ("drop-capabilities", "add NET_ADMIN", "postgres", _caps(adds=["NET_ADMIN"]), True),
    ("drop-capabilities", "add DAC_READ_SEARCH", "postgres", _caps(adds=["DAC_READ_SEARCH"]), True),
    ("drop-capabilities", "unreadable adds", "postgres", _caps(adds="SYS_ADMIN"), True),
    ("drop-capabilities", "add a default one", "postgres", _caps(adds=["CHOWN", "CAP_SETUID"]), False),
    # capabilities (advisory): the documented adds of the verified service
    ("capabilities", "undocumented add", "postgres", _caps(adds=["NET_BIND_SERVICE"]), True),
    ("capabilities", "documented adds", "postgres", _caps(adds=["CHOWN", "FOWNER"]), False),
    ("capabilities", "documented for another service only", "server", _caps(adds=["CHOWN"]), True),
    # security-profiles
    *[
        ("security-profiles", option, "postgres", _opts("no-new-privileges:true", option), True)
        for option in (
            "seccomp=unconfined",
            "seccomp:unconfined",
            'seccomp={"defaultAction": "SCMP_ACT_ALLOW"}',
            "seccomp=/etc/docker/profile.json",
            "apparmor=unconfined",
            "apparmor:unconfined",
            "label=disable",
            "label:disable",
            "disable",
            "label=type:spc_t",
            "label=type:unconfined_t",
            "systempaths=unconfined",
            "writable-cgroups",
            "writable-cgroups=true",
            "mystery=1",
        )
    ],
    *[
        ("security-profiles", option, "postgres", _opts("no-new-privileges:true", option), False)
        for option in (
            "apparmor=docker-default",
            "label=level:s0:c100,c200",
            "seccomp=builtin",
            'seccomp={"defaultAction": "SCMP_ACT_ERRNO"}',
        )
    ],
    # no-new-privileges: absent, every spelling, the last-wins trap
    ("no-new-privileges", "absent", "postgres", _opts(), True),
    (
        "no-new-privileges",
        "true then false",
        "postgres",
        _opts("no-new-privileges:true", "no-new-privileges:false"),
        True,
    ),
    (
        "no-new-privileges",
        "false then true",
        "postgres",
        _opts("no-new-privileges=false", "no-new-privileges=true"),
        True,
    ),
    ("no-new-privileges", "unreadable", "postgres", _opts("no-new-privileges:yes"), True),
    ("no-new-privileges", "bare", "postgres", _opts("no-new-privileges"), False),
    ("no-new-privileges", "=1", "postgres", _opts("no-new-privileges=1"), False),
    # memory-limit
    ("memory-limit", "absent", "postgres", lambda p: p.pop("memory"), True),
    ("memory-limit", "0", "postgres", _set(memory=0), True),
    ("memory-limit", "negative", "postgres", _set(memory=-1), True),
    ("memory-limit", "unreadable", "postgres", _set(memory="lots"), True),
    ("memory-limit", "unlimited swap", "postgres", _set(memorySwap=-1), True),
    ("memory-limit", "256 as a float", "postgres", _set(memory=256.0, memorySwap=256.0), False),
    # cpu-limit
    ("cpu-limit", "absent", "postgres", lambda p: p.pop("cpus"), True),
    ("cpu-limit", "'0'", "postgres", _set(cpus="0"), True),
    ("cpu-limit", "'0.0'", "postgres", _set(cpus="0.0"), True),
    ("cpu-limit", "'0' with a quota the provider then ignores", "postgres", _set(cpus="0", cpuQuota=50000), True),
    ("cpu-limit", "'-1'", "postgres", _set(cpus="-1"), True),
    ("cpu-limit", "unreadable", "postgres", _set(cpus="1/2"), True),
    ("cpu-limit", "shares only", "postgres", lambda p: (p.pop("cpus"), p.update(cpuShares=512)), True),
    ("cpu-limit", "'0.05'", "postgres", _set(cpus="0.05"), False),
    ("cpu-limit", "quota without cpus", "postgres", lambda p: (p.pop("cpus"), p.update(cpuQuota=50000)), False),
    # healthcheck
    ("healthcheck", "NONE", "postgres", _set(healthcheck={"tests": ["NONE"]}), True),
    ("healthcheck", "absent", "postgres", lambda p: p.pop("healthcheck"), True),
    ("healthcheck", "CMD without a command", "postgres", _set(healthcheck={"tests": ["CMD"]}), True),
    ("healthcheck", "unknown kind", "postgres", _set(healthcheck={"tests": ["SHELL", "true"]}), True),
    ("healthcheck", "CMD with a command", "postgres", _set(healthcheck={"tests": ["CMD", "pg_isready"]}), False),
    # restart-policy
    ("restart-policy", "always", "postgres", _set(restart="always"), True),
    ("restart-policy", "no", "postgres", _set(restart="no"), True),
    ("restart-policy", "absent", "postgres", lambda p: p.pop("restart"), True),
    ("restart-policy", "on-failure, retries unset", "postgres", _set(restart="on-failure"), True),
    ("restart-policy", "on-failure 0", "postgres", _set(restart="on-failure", maxRetryCount=0), True),
    ("restart-policy", "on-failure 6", "postgres", _set(restart="on-failure", maxRetryCount=6), True),
    ("restart-policy", "on-failure 'abc'", "postgres", _set(restart="on-failure", maxRetryCount="abc"), True),
    ("restart-policy", "on-failure 1", "postgres", _set(restart="on-failure", maxRetryCount=1), False),
    ("restart-policy", "on-failure 5.0", "postgres", _set(restart="on-failure", maxRetryCount=5.0), False),
    ("restart-policy", "unless-stopped", "postgres", _set(restart="unless-stopped"), False),
    # explicit-port-address
    ("explicit-port-address", "no ip", "postgres", _ports({"internal": 5432, "external": 5432}), True),
    (
        "explicit-port-address",
        "localhost",
        "postgres",
        _ports({"internal": 5432, "external": 5432, "ip": "localhost"}),
        True,
    ),
    (
        "explicit-port-address",
        "scoped IPv6",
        "postgres",
        _ports({"internal": 5432, "external": 5432, "ip": "fe80::1%eth0"}),
        True,
    ),
    (
        "explicit-port-address",
        "127.0.0.1",
        "postgres",
        _ports({"internal": 5432, "external": 5432, "ip": "127.0.0.1"}),
        False,
    ),
    # public-ports: loopback only counts when literal; only the allowed service and port
    *[
        ("public-ports", f"5432 on {ip}", "postgres", _ports({"internal": 5432, "external": 5432, "ip": ip}), fires)
        for ip, fires in (
            ("0.0.0.0", True),
            ("::", True),
            ("10.0.0.5", True),
            ("localhost", True),
            ("not an address", True),
            ("::ffff:127.0.0.1", True),
            ("127.0.0.1", False),
            ("127.0.0.2", False),
            ("::1", False),
        )
    ],
    ("public-ports", "no ip", "postgres", _ports({"internal": 5432, "external": 5432}), True),
    (
        "public-ports",
        "postgres on the edge's 8443",
        "postgres",
        _ports({"internal": 8443, "external": 443, "ip": "0.0.0.0"}),
        True,
    ),
    (
        "public-ports",
        "server publishing 3001",
        "server",
        _ports({"internal": 3001, "external": 3001, "ip": "0.0.0.0"}),
        True,
    ),
    (
        "public-ports",
        "client publishing 3000",
        "client",
        _ports({"internal": 3000, "external": 3000, "ip": "0.0.0.0"}),
        True,
    ),
    (
        "public-ports",
        "edge publishing 5432",
        "edge",
        _ports({"internal": 5432, "external": 5432, "ip": "0.0.0.0"}),
        True,
    ),
    (
        "public-ports",
        "edge publishing 8443",
        "edge",
        _ports({"internal": 8443.0, "external": 443.0, "ip": "0.0.0.0"}),
        False,
    ),
    ("public-ports", "edge publishing 8001", "edge", _ports({"internal": 8001, "external": 3001, "ip": "::"}), False),
    ("public-ports", "publish all ports", "postgres", _set(publishAllPorts=True), True),
    (
        "public-ports",
        "a label borrowing the edge's ports",
        "postgres",
        lambda p: (
            p.update(labels=[{"label": "io.sentineliq.service", "value": "edge"}]),
            p.update(ports=[{"internal": 8443, "external": 443, "ip": "0.0.0.0"}]),
        ),
        True,
    ),
    # privileged-ports
    ("privileged-ports", "host port 80", "kibana", _ports({"internal": 5601, "external": 80, "ip": "127.0.0.1"}), True),
    (
        "privileged-ports",
        "host port 1023",
        "kibana",
        _ports({"internal": 5601, "external": 1023, "ip": "127.0.0.1"}),
        True,
    ),
    (
        "privileged-ports",
        "host port 1024",
        "kibana",
        _ports({"internal": 5601, "external": 1024, "ip": "127.0.0.1"}),
        False,
    ),
    ("privileged-ports", "no host port", "kibana", _ports({"internal": 5601, "ip": "127.0.0.1"}), False),
    ("privileged-ports", "edge on 443", "edge", _ports({"internal": 8443, "external": 443, "ip": "0.0.0.0"}), False),
    ("privileged-ports", "edge on 22", "edge", _ports({"internal": 8443, "external": 22, "ip": "0.0.0.0"}), True),
    # rolling-app-deploys
    (
        "rolling-app-deploys",
        "server publishing a port",
        "server",
        _ports({"internal": 3001, "external": 3001, "ip": "127.0.0.1"}),
        True,
    ),
    ("rolling-app-deploys", "client as deployed", "client", lambda p: None, False),
    # read-only-root (advisory)
    ("read-only-root", "writable postgres", "postgres", lambda p: p.pop("readOnly", None), True),
    ("read-only-root", "writable server (exempt)", "server", lambda p: p.pop("readOnly", None), False),
    (
        "read-only-root",
        "a label borrowing server's exemption",
        "postgres",
        lambda p: (
            p.pop("readOnly", None),
            p.update(labels=[{"label": "io.sentineliq.service", "value": "server"}]),
        ),
        True,
    ),
    # log-rotation
    ("log-rotation", "no options", "postgres", _set(logOpts={}), True),
    ("log-rotation", "max-size -1", "postgres", _set(logOpts={"max-size": "-1"}), True),
    ("log-rotation", "max-size 0", "postgres", _set(logOpts={"max-size": "0"}), True),
    ("log-rotation", "max-size unreadable", "postgres", _set(logOpts={"max-size": "big"}), True),
    ("log-rotation", "syslog", "postgres", _set(logDriver="syslog"), True),
    ("log-rotation", "local 20m", "postgres", _set(logDriver="local", logOpts={"max-size": "20m"}), False),
    # stack-network
    ("stack-network", "default bridge", "postgres", _set(networksAdvanced=[{"name": "bridge"}]), True),
    ("stack-network", "a second network", "postgres", lambda p: p["networksAdvanced"].append({"name": "other"}), True),
    ("stack-network", "no network", "postgres", _set(networksAdvanced=[]), True),
    (
        "stack-network",
        "another stack's network",
        "postgres",
        _set(networksAdvanced=[{"name": "sentineliq-dev-network"}]),
        True,
    ),
    ("stack-network", "network mode none", "postgres", _set(networkMode="none"), True),
    ("stack-network", "network mode bridge besides it", "postgres", _set(networkMode="bridge"), False),
    # pinned-container-image
    ("pinned-container-image", "latest", "postgres", _set(image="postgres:latest"), True),
    ("pinned-container-image", "no tag", "postgres", _set(image="postgres"), True),
    ("pinned-container-image", "registry port, no tag", "postgres", _set(image="registry:5000/team/app"), True),
    ("pinned-container-image", "a tag", "postgres", _set(image="postgres:16.4"), False),
    ("pinned-container-image", "a digest", "postgres", _set(image="postgres@sha256:" + "a" * 64), False),
]


EXPECTED_TEXT = {
    "volumeName that is a path": "a sensitive host directory (/etc)",
    "volumeName through //": "a sensitive host directory (/etc)",
    "local volume o=bind device=/./etc/": "a sensitive host directory (/etc)",
    "hostPath /srv/docker.sock": "the Docker socket",
    "hostPath /srv/app/agent.sock": "a host socket",
    "hostPath /home/deploy/.ssh": "a credentials folder",
    "label=disable": "disables SELinux separation",
    "label:disable": "disables SELinux separation",
    "disable": "disables SELinux separation",
    "label=type:spc_t": "disables SELinux separation",
    "seccomp=unconfined": "disables seccomp",
    'seccomp={"defaultAction": "SCMP_ACT_ALLOW"}': "allows every system call",
    "apparmor:unconfined": "disables AppArmor",
    "true then false": "to false",
}
"""Where a rule can fire for two reasons, the reason the case must be caught by."""


@pytest.fixture(scope="module")
def prod() -> Deployment:
    return deploy_stack("prod")


@pytest.fixture(scope="module")
def prod_containers(prod: Deployment) -> dict[str, Registration]:
    return prod.containers()


@pytest.mark.parametrize(
    ("rule_name", "case", "service", "mutate", "fires"),
    CONTAINER_CASES,
    ids=[f"{rule}: {case}" for rule, case, _service, _mutate, _fires in CONTAINER_CASES],
)
def test_each_branch_of_each_container_rule(
    prod: Deployment, rule_name: str, case: str, service: str, mutate: Mutation, fires: bool
) -> None:
    good = prod.named(f"{service}-container")
    props = unwrap(copy.deepcopy(good.inputs))
    mutate(props)
    found = run(args_for(good, props=props))
    assert (rule_name in found) is fires, (case, found)
    if fires:
        assert EXPECTED_TEXT.get(case, "") in " ".join(found[rule_name]), found[rule_name]
        for message in found[rule_name]:
            assert message.startswith(f"{good.name} ("), message
            assert "Fix:" in message
            for secret in TEST_SECRETS.values():
                assert secret not in message


def test_every_rule_has_a_failing_and_a_passing_case() -> None:
    covered = {(rule, fires) for rule, _case, _service, _mutate, fires in CONTAINER_CASES}
    covered |= {(rule, fires) for rule, _kind, _props, fires in OTHER_CASES}
    covered |= {(rule, fires) for _line, rule, fires in COMMAND_CASES}
    covered |= {("protected-volumes", True), ("protected-volumes", False)}  # test_protected_volumes_by_stack
    for rule in RULES:
        assert (rule.name, True) in covered, rule.name
        if rule.name != "containers-only":
            assert (rule.name, False) in covered, rule.name


# (rule, resource type, props, fires)
OTHER_CASES: list[tuple[str, str, dict[str, Any], bool]] = [
    (
        "no-sensitive-mounts",
        VOLUME,
        {"driver": "local", "driverOpts": {"type": "none", "o": "bind", "device": "/etc"}},
        True,
    ),
    ("no-sensitive-mounts", VOLUME, {"driverOpts": {"o": "rbind", "device": "/var/./lib"}}, True),
    ("no-sensitive-mounts", VOLUME, {"driver": "nfs-plugin"}, True),
    ("no-sensitive-mounts", VOLUME, {"driver": "local", "driverOpts": {"o": "bind", "device": "/srv/data"}}, False),
    ("no-sensitive-mounts", VOLUME, {"name": "sentineliq-prod-postgres-data"}, False),
    ("no-sensitive-mounts", "command:remote:CopyToRemote", {"remotePath": "/./etc/sudoers.d/x"}, True),
    ("no-sensitive-mounts", "command:remote:CopyFile", {"remotePath": "/root/.ssh/authorized_keys"}, True),
    ("no-sensitive-mounts", "command:remote:CopyToRemote", {"remotePath": "/srv/sentineliq/kibana.yml"}, False),
    ("no-sensitive-mounts", "command:remote:CopyToRemote", {"remotePath": "sentineliq/kibana.yml"}, False),
    ("pinned-images", IMAGE, {"name": "postgres"}, True),
    ("pinned-images", IMAGE, {"name": "postgres:latest"}, True),
    ("pinned-images", IMAGE, {"name": "registry:5000/team/app"}, True),
    ("pinned-images", IMAGE, {"name": "postgres@sha256:" + "a" * 64}, False),
    ("pinned-images", IMAGE, {"name": "postgres:16.4-alpine"}, False),
    ("containers-only", SWARM_SERVICE, {"name": "x"}, True),
    ("containers-only", PLUGIN, {"name": "vieux/sshfs"}, True),
    ("one-shot-commands", LOCAL_COMMAND, {"create": "true", "interpreter": ["python3", "-c"]}, True),
    ("one-shot-commands", LOCAL_COMMAND, {"create": "true", "interpreter": ["/bin/bash", "-c"]}, False),
]


@pytest.mark.parametrize(("rule_name", "resource_type", "props", "fires"), OTHER_CASES)
def test_each_branch_of_the_other_rules(rule_name: str, resource_type: str, props: dict[str, Any], fires: bool) -> None:
    found = run(args_of(resource_type, props, protect=True), {rule_name})
    assert (rule_name in found) is fires, found


def test_protected_volumes_by_stack(prod: Deployment) -> None:
    volume = copy.deepcopy(prod.named("sentineliq-postgres-data"))
    assert violations(volume) == {}
    volume.protect = False
    assert violations(volume) == {
        "protected-volumes": [
            "sentineliq-postgres-data (sentineliq-postgres-data): can be deleted by `pulumi destroy`. "
            "Fix: sentineliq:protectData true (protect and retainOnDelete)"
        ]
    }
    dev = copy.deepcopy(deploy_stack("dev").named("sentineliq-postgres-data"))
    assert not dev.protect and violations(dev) == {}


RUN = (
    "docker run --rm --interactive --network=sentineliq-prod-network --security-opt=no-new-privileges:true "
    "--cap-drop=ALL --memory=1g --memory-swap=1g --cpus=1 --pids-limit=512"
)
IMAGE_ID = "sha256:" + "ab" * 32

# (command line, rule, fires)
COMMAND_CASES: list[tuple[str, str, bool]] = [
    (f"{RUN} {IMAGE_ID} -c 'echo ok'", "one-shot-commands", False),
    (f"{RUN} --privileged {IMAGE_ID}", "no-privileged", True),
    (f"{RUN} --privileged=false {IMAGE_ID}", "no-privileged", False),
    (f"{RUN} --pid=host {IMAGE_ID}", "no-host-namespaces", True),
    (f"{RUN} --userns host {IMAGE_ID}", "no-host-namespaces", True),
    (f"{RUN} --uts=host {IMAGE_ID}", "no-host-namespaces", True),
    (f"{RUN} --network=host {IMAGE_ID}", "no-host-namespaces", True),
    (f"{RUN} -v /./etc:/host {IMAGE_ID}", "no-sensitive-mounts", True),
    (f"{RUN} -v/var/run/docker.sock:/s {IMAGE_ID}", "no-sensitive-mounts", True),
    (f"{RUN} --volume=../../etc:/host {IMAGE_ID}", "no-sensitive-mounts", True),
    (f"{RUN} --mount type=bind,source=//etc,target=/h {IMAGE_ID}", "no-sensitive-mounts", True),
    (
        f"{RUN} --mount type=volume,src=v,dst=/h,volume-opt=o=bind,volume-opt=device=/etc {IMAGE_ID}",
        "no-sensitive-mounts",
        True,
    ),
    (f"{RUN} --use-api-socket {IMAGE_ID}", "no-sensitive-mounts", True),
    (f"{RUN} --volumes-from other {IMAGE_ID}", "no-sensitive-mounts", True),
    (f"{RUN} -v /srv/backups/x:/backups:ro {IMAGE_ID}", "no-sensitive-mounts", False),
    (f"{RUN} -v /srv/x:/x:rshared {IMAGE_ID}", "mount-propagation", True),
    (f"{RUN} --mount type=bind,src=/srv/x,dst=/x,bind-propagation=shared {IMAGE_ID}", "mount-propagation", True),
    (f"{RUN} --device /dev/sda {IMAGE_ID}", "no-devices", True),
    (f"{RUN} --gpus all {IMAGE_ID}", "no-devices", True),
    (f"{RUN} --cgroup-parent=/x {IMAGE_ID}", "default-cgroup", True),
    (f"{RUN} --cap-add=SYS_ADMIN {IMAGE_ID}", "drop-capabilities", True),
    (f"{RUN} --cap-add ALL {IMAGE_ID}", "drop-capabilities", True),
    (f"{RUN} --cap-add=CHOWN,SETUID {IMAGE_ID}", "drop-capabilities", False),
    (
        f"docker run --rm --network=sentineliq-prod-network --security-opt=no-new-privileges:true {IMAGE_ID}",
        "drop-capabilities",
        True,
    ),
    (f"{RUN} --security-opt seccomp=unconfined {IMAGE_ID}", "security-profiles", True),
    (f"{RUN} --security-opt=apparmor=unconfined {IMAGE_ID}", "security-profiles", True),
    (f"{RUN} --security-opt label=disable {IMAGE_ID}", "security-profiles", True),
    (f"{RUN} --security-opt=no-new-privileges:false {IMAGE_ID}", "no-new-privileges", True),
    (f"docker run --rm --network=sentineliq-prod-network --cap-drop=ALL {IMAGE_ID}", "no-new-privileges", True),
    (f"{RUN} {IMAGE_ID}", "memory-limit", False),
    (f"{RUN.replace(' --memory=1g', '')} {IMAGE_ID}", "memory-limit", True),
    (f"{RUN} -m 0 {IMAGE_ID}", "memory-limit", True),
    (f"{RUN} --memory-swap=-1 {IMAGE_ID}", "memory-limit", True),
    (f"{RUN} {IMAGE_ID}", "cpu-limit", False),
    (f"{RUN.replace(' --cpus=1', '')} {IMAGE_ID}", "cpu-limit", True),
    (f"{RUN} --cpus=0 {IMAGE_ID}", "cpu-limit", True),
    (f"{RUN} {IMAGE_ID}", "pids-limit", False),
    (f"{RUN.replace(' --pids-limit=512', '')} {IMAGE_ID}", "pids-limit", True),
    (f"{RUN} --pids-limit=-1 {IMAGE_ID}", "pids-limit", True),
    (f"{RUN} --restart=always {IMAGE_ID}", "restart-policy", True),
    (f"{RUN} --restart=no {IMAGE_ID}", "restart-policy", False),
    (f"{RUN} -p 127.0.0.1:8080:80 {IMAGE_ID}", "public-ports", True),
    (f"{RUN} -P {IMAGE_ID}", "public-ports", True),
    (f"{RUN} -p 8080:80 {IMAGE_ID}", "explicit-port-address", True),
    (f"{RUN} -p [::1]:8080:80 {IMAGE_ID}", "explicit-port-address", False),
    (f"{RUN} --network=bridge {IMAGE_ID}", "stack-network", True),
    (f"docker run --rm --security-opt=no-new-privileges:true --cap-drop=ALL {IMAGE_ID}", "stack-network", True),
    (f"{RUN} postgres:latest", "pinned-container-image", True),
    (f"{RUN} postgres", "pinned-container-image", True),
    (
        f"{RUN} -it -e X=1 -w /app --entrypoint=/bin/sh --label=io.sentineliq.service=x {IMAGE_ID} -c 'exit 0'",
        "one-shot-commands",
        False,
    ),
    # what the pack cannot read fails closed
    (f"{RUN} --frobnicate {IMAGE_ID}", "one-shot-commands", True),
    (f"{RUN} -Z {IMAGE_ID}", "one-shot-commands", True),
    (f"{RUN} $EXTRA {IMAGE_ID}", "one-shot-commands", True),
    (f'{RUN} "$(cat flags)" {IMAGE_ID}', "one-shot-commands", True),
    (f"{RUN} `cat flags` {IMAGE_ID}", "one-shot-commands", True),
    (f"{RUN} {IMAGE_ID} -c 'echo $HOME'", "one-shot-commands", False),
    (f"{RUN} '{IMAGE_ID}", "one-shot-commands", True),
    ("sh -c 'docker run --privileged x'", "one-shot-commands", True),
    ("eval docker run --privileged x", "one-shot-commands", True),
    ("docker compose up", "one-shot-commands", True),
    ("docker --frobnicate run x", "one-shot-commands", True),
    (f"{RUN} -v /srv/a:b:/x:ro {IMAGE_ID}", "one-shot-commands", True),
    (f"{RUN} -v /srv/a:/x:weird {IMAGE_ID}", "one-shot-commands", True),
    (f"{RUN} --mount type=bind,source=/srv,target=/x,evil=1 {IMAGE_ID}", "one-shot-commands", True),
    # docker exec (CIS 5.23, 5.24)
    ("docker exec --interactive sentineliq-prod-postgres psql", "one-shot-commands", False),
    ("docker exec --privileged sentineliq-prod-postgres sh", "one-shot-commands", True),
    ("docker exec -u root sentineliq-prod-postgres sh", "one-shot-commands", True),
    ("docker exec --user=0:0 sentineliq-prod-postgres sh", "one-shot-commands", True),
    ("docker exec --user=postgres sentineliq-prod-postgres sh", "one-shot-commands", False),
    # the guard the stack uses, and a second container hidden behind it
    (
        "if docker container inspect x >/dev/null 2>&1; then docker exec --interactive x /bin/sh -c 'true'; "
        "else echo 'no container x yet: nothing to do'; fi",
        "one-shot-commands",
        False,
    ),
    (f"if docker container inspect x >/dev/null 2>&1; then {RUN} --privileged {IMAGE_ID}; fi", "no-privileged", True),
    (f"true && {RUN} --pid=host {IMAGE_ID}", "no-host-namespaces", True),
    (f"{RUN} {IMAGE_ID}\n{RUN} --privileged {IMAGE_ID}", "no-privileged", True),
    (f"{RUN} \\\n --privileged {IMAGE_ID}", "no-privileged", True),
    (f"X=1 docker --host ssh://u@h container run --privileged {IMAGE_ID}", "no-privileged", True),
    (f"/usr/bin/docker create --privileged {IMAGE_ID}", "no-privileged", True),
    (f"env DOCKER_HOST=unix:///run/docker.sock {RUN} --privileged {IMAGE_ID}", "no-privileged", True),
    (f"env DOCKER_HOST=unix:///run/docker.sock {RUN} {IMAGE_ID}", "one-shot-commands", False),
    ("env -i sh -c 'docker run --privileged x'", "one-shot-commands", True),
    ("env", "one-shot-commands", True),
]


@pytest.mark.parametrize(("line", "rule_name", "fires"), COMMAND_CASES)
@pytest.mark.parametrize("resource_type", COMMANDS)
def test_each_rule_on_one_shot_command_lines(resource_type: str, line: str, rule_name: str, fires: bool) -> None:
    found = run(args_of(resource_type, {"create": line}, "step-command"))
    assert (rule_name in found) is fires, found
    if not fires and rule_name == "one-shot-commands":
        assert "one-shot-commands" not in found


def test_the_update_and_delete_lines_are_read_too() -> None:
    for key in ("update", "delete"):
        props = {"create": "true", key: f"{RUN} --privileged {IMAGE_ID}"}
        assert "no-privileged" in run(args_of(LOCAL_COMMAND, props, "step-command"))


# --- paths, identity, totality ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "clean"),
    [
        ("/./etc", "/etc"),
        ("//etc", "/etc"),
        ("/etc/", "/etc"),
        ("/srv/../etc", "/etc"),
        ("/../..", "/"),
        ("/a//b/./c/", "/a/b/c"),
    ],
)
def test_paths_are_normalised_as_the_kernel_resolves_them(path: str, clean: str) -> None:
    assert normalise(path) == clean


def test_every_sensitive_tree_and_its_subfolders_and_parents_are_refused() -> None:
    for tree in SENSITIVE_TREES:
        assert sensitive(tree) and sensitive(tree + "/x/y") and sensitive(tree.rsplit("/", 1)[0] or "/"), tree
        assert sensitive(tree + "x") is None or tree + "x" in SENSITIVE_TREES, tree
    for directory in SENSITIVE_DIRECTORIES:
        assert sensitive(directory) and sensitive(directory + "/") and sensitive(directory + "/./"), directory
        assert sensitive(directory + "/sentineliq-backups") is None, directory


def test_a_check_that_raises_reports_a_violation_and_unknowns_pass_through() -> None:
    [rule] = [r for r in RULES if r.name == "no-privileged"]

    def broken(_subject: Any) -> Any:
        raise RuntimeError("bug")

    rule = dataclasses.replace(rule, checks={CONTAINER: broken})
    assert rule.problems(args_of(CONTAINER, {})) == ["thing: could not be checked (RuntimeError). Fix: report this"]
    # During a preview an unknown value raises the framework's UnknownValueError: it must reach the framework,
    # which reports "cannot run during preview" and checks again at `pulumi up`.
    [pinned] = [r for r in RULES if r.name == "pinned-container-image"]
    with pytest.raises(UnknownValueError):
        pinned.problems(args_of(CONTAINER, unknown_checking_proxy({"image": UNKNOWN_STRING_VALUE})))


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


CONTAINER_PROPS = {
    _camel(name) for name in inspect.signature(docker.ContainerArgs.__init__).parameters if name[0] != "_"
}
PROP_NAMES = sorted(CONTAINER_PROPS | {"driver", "driverOpts", "create", "update", "delete", "interpreter"})

scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | st.text(max_size=30)
keys = st.sampled_from(PROP_NAMES) | st.text(max_size=12)
shapes = st.recursive(
    scalars | st.sampled_from(["/etc", "host", "ALL", "on-failure", "0", "-1", "127.0.0.1", "bind", ":", "sha256:"]),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=6),
    max_leaves=20,
)
flag_words = st.sampled_from(
    sorted(
        {f"--{name}" for name in docker_cli.RUN_VALUE | docker_cli.RUN_BOOLEAN}
        | {f"-{k}" for k in docker_cli.RUN_SHORT}
    )
)
words = (
    flag_words
    | st.sampled_from(
        [
            "=",
            "/etc:/x",
            "host",
            "a:b:c:d",
            "type=bind,src=/etc",
            "'",
            '"',
            "\\",
            ";",
            "&&",
            "|",
            ">",
            "2>&1",
            "$x",
            "`",
        ]
    )
    | st.text(max_size=8)
)
command_lines = st.lists(words, max_size=12).map(lambda parts: "docker run " + " ".join(parts)) | st.text(max_size=80)


def _all_checks(resource_type: str, props: Any) -> None:
    """Every check of every rule on these props, without the validator's safety net: none may raise."""
    for rule in RULES:
        for subject, check in rule.subjects(args_of(resource_type, props, config={"allowed": props, "exempt": props})):
            list(check(subject))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    props=st.dictionaries(keys, shapes, max_size=10),
    resource_type=st.sampled_from([CONTAINER, VOLUME, IMAGE, *COMMANDS, SWARM_SERVICE]),
)
def test_no_shape_of_props_makes_a_check_raise(props: dict[str, Any], resource_type: str) -> None:
    _all_checks(resource_type, props)
    _all_checks(resource_type, unknown_checking_proxy(props))


@settings(max_examples=400, deadline=None)
@given(line=command_lines)
def test_no_command_line_makes_a_check_raise(line: str) -> None:
    for resource_type in COMMANDS:
        _all_checks(resource_type, {"create": line, "update": line})


@settings(max_examples=200, deadline=None)
@given(props=shapes)
def test_no_top_level_shape_makes_a_validator_raise(props: Any) -> None:
    for resource_type in (CONTAINER, VOLUME, LOCAL_COMMAND):
        for policy in pack.policies()[: len(pack.RULES)]:
            policy.validate(args_of(resource_type, props), lambda _message, _urn: None)


# --- documentation and configuration ---------------------------------------------------------------------------


def test_every_rule_cites_its_cis_control_or_is_a_project_rule() -> None:
    for rule in RULES:
        assert re.match(r"(CIS 5\.\d+[:,]|Project rule:)", rule.description), rule.name
    assert len({rule.name for rule in RULES}) == len(RULES)
    advisory = {rule.name for rule in RULES if rule.enforcement == EnforcementLevel.ADVISORY}
    assert advisory == {"capabilities", "read-only-root"}


def test_the_readme_maps_every_cis_section_5_control_and_every_rule() -> None:
    """Each CIS Docker 1.6 §5 control is a rule or a documented exception; each rule is in the table."""
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| CIS 1.6 §5 control |") :].split("\n\n", 1)[0]
    rows = [row for row in table.splitlines()[2:] if row.startswith("| 5.")]
    assert [row.split("|")[1].strip().split(" ")[0] for row in rows] == [f"5.{n}" for n in range(1, 33)]
    for rule in RULES:
        assert f"`{rule.name}`" in readme, rule.name
    names = {rule.name for rule in RULES}
    for row in rows:
        _, _control, enforcement, how, _ = row.split("|")
        cited = re.findall(r"`([a-z-]+)`", how)
        assert enforcement.strip() == "exception" or (cited and set(cited) <= names), row


def test_the_documented_capabilities_are_the_specs() -> None:
    settings_ = Settings.model_validate({**TEST_SECRETS, "serverTag": "main", "clientTag": "main"})
    specs = {spec.name: list(spec.cap_add) for spec in (postgres(settings_), redis(settings_), client(settings_))}
    assert specs == DOCUMENTED_CAPABILITIES


def test_an_operator_can_relax_an_advisory_rule_per_service(prod_containers: dict[str, Registration]) -> None:
    server = prod_containers["server"]
    [read_only] = [rule for rule in RULES if rule.name == "read-only-root"]
    assert read_only.problems(args_for(server, read_only.defaults())) == []
    strict = read_only.problems(args_for(server, {"exempt": []}))
    assert strict and "writable root filesystem" in strict[0]


def test_an_operator_can_grant_a_service_a_port(prod_containers: dict[str, Registration]) -> None:
    props = unwrap(copy.deepcopy(prod_containers["client"].inputs))
    props["ports"] = [{"internal": 3000, "external": 443, "ip": "0.0.0.0"}]
    urn = prod_containers["client"].urn
    assert "privileged-ports" in run(args_of(CONTAINER, props, "client-container", urn))
    granted = args_of(CONTAINER, props, "client-container", urn, config={"allowed": {"client": [443]}})
    assert run(granted, {"privileged-ports"}) == {}


def test_messages_never_print_a_secret_property(prod_containers: dict[str, Registration]) -> None:
    props = unwrap(copy.deepcopy(prod_containers["server"].inputs))
    for _rule, _case, _service, mutate, fires in CONTAINER_CASES:
        if fires:
            mutate(props)
    found = run(args_of(CONTAINER, props, "server-container", prod_containers["server"].urn))
    assert len(found) >= 15
    for secret in TEST_SECRETS.values():
        assert secret not in str(found)
    line = f"{RUN} --frobnicate-{TEST_SECRETS['jwtSecret']} -e TOKEN={TEST_SECRETS['jwtSecret']} {IMAGE_ID}"
    assert TEST_SECRETS["jwtSecret"] not in str(run(args_of(LOCAL_COMMAND, {"create": line})))


def test_the_pack_entry_point_only_builds_the_pack() -> None:
    tree = ast.parse((ROOT / "policy" / "__main__.py").read_text())
    statements = [node for node in tree.body if not isinstance(node, ast.Expr | ast.Import | ast.ImportFrom)]
    assert statements == []
    calls = [node for node in tree.body if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)]
    assert [ast.unparse(call.value.func) for call in calls if isinstance(call.value, ast.Call)] == ["PolicyPack"]


def test_the_example_policy_config_is_the_default_config() -> None:
    """policy/config.example.json shows operators the defaults they relax; it must not drift from them."""
    example = json.loads((ROOT / "policy" / "config.example.json").read_text())
    defaults = {rule.name: rule.defaults() for rule in RULES if rule.config}
    assert example == defaults


def test_the_rules_read_the_providers_property_names() -> None:
    """The container props the checks read are pulumi-docker's input names (camelCase), so a misspelt property
    in a rule cannot silently read nothing."""
    source = (ROOT / "policy" / "sentineliq_policy" / "rules.py").read_text()
    read = set(re.findall(r'props\.get\("([A-Za-z]+)"\)', source)) | {prop for prop, _ns, _ok in NAMESPACE_MODES}
    others = {"driver", "driverOpts", "interpreter", "remotePath"}  # of a Volume, a Command, a remote copy
    # utsMode and pidsLimit are no docker.Container inputs: only `docker run --uts`, `--pids-limit` set them.
    assert read - others - {"utsMode", "pidsLimit"} <= CONTAINER_PROPS, read - CONTAINER_PROPS
    assert {"privileged", "securityOpts", "capabilities", "mounts", "volumes", "ports"} <= read
    assert set(re.findall(r'"(device[A-Z]\w*|devices|gpus)"', source)) == {
        "devices",
        "deviceCgroupRules",
        "deviceRequests",
        "gpus",
    }


# --- the edge and rolling app deploys ------------------------------------------------------------------------


def test_only_the_edge_may_publish_off_loopback() -> None:
    prod = deploy_stack("prod")
    edge = prod.containers()["edge"]
    assert [p["ip"] for p in edge.plain("ports")] == ["0.0.0.0", "0.0.0.0"]
    assert violations(edge) == {}
    kibana = copy.deepcopy(prod.containers()["kibana"])
    props = unwrap(kibana.inputs)
    props["ports"][0]["ip"] = "0.0.0.0"
    kibana.inputs = props
    assert "public-ports" in violations(kibana)


@pytest.mark.parametrize("service", ["server", "server-2", "client"])
def test_an_app_container_must_roll(service: str) -> None:
    good = deploy_stack("prod").containers()[service]
    assert violations(good) == {}
    for defined, value in ((False, True), (True, True)):
        # Unset (the provider's choice) and an explicit True both delete the running container first.
        bad = copy.deepcopy(good)
        bad.delete_before_replace, bad.delete_before_replace_defined = value, defined
        assert list(violations(bad)) == ["rolling-app-deploys"], (defined, value)
        assert "delete-before-replace" in violations(bad)["rolling-app-deploys"][0]
    published = copy.deepcopy(good)
    published.inputs = {**unwrap(good.inputs), "ports": [{"internal": 3001, "external": 3001, "ip": "127.0.0.1"}]}
    assert list(violations(published)) == ["rolling-app-deploys"]
    assert "publishes port 3001" in violations(published)["rolling-app-deploys"][0]


def test_data_services_are_not_held_to_rolling_deploys() -> None:
    postgres_container = deploy_stack("prod").containers()["postgres"]
    assert postgres_container.delete_before_replace and postgres_container.plain("ports") is None
    assert "rolling-app-deploys" not in violations(postgres_container)


# --- through pulumi_policy's own analyzer -------------------------------------------------------------------------


def _engine_value(value: Any) -> Any:
    """An input as the engine sends it to an analyzer: JSON, with secrets under Pulumi's secret signature."""
    if isinstance(value, Secret):
        return {rpc._special_sig_key: rpc._special_secret_sig, "value": _engine_value(value.value)}
    if isinstance(value, dict):
        return {k: _engine_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_engine_value(v) for v in value]
    return value


def analyze(resource: Registration, inputs: dict[str, Any] | None = None) -> list[Any]:
    """The diagnostics of pulumi_policy's analyzer servicer (what `pulumi preview --policy-pack` runs behind gRPC)
    for one resource: the real deserialisation, unknown-value proxy, config and enforcement levels."""
    servicer = _PolicyAnalyzerServicer("sentineliq", "1", pack.policies(), EnforcementLevel.MANDATORY)
    properties = struct_pb2.Struct()
    json_format.ParseDict(_engine_value(resource.inputs if inputs is None else inputs), properties)
    options = analyzer_pb2.AnalyzerResourceOptions(
        protect=resource.protect,
        deleteBeforeReplace=bool(resource.delete_before_replace),
        deleteBeforeReplaceDefined=resource.delete_before_replace_defined,
    )
    request = analyzer_pb2.AnalyzeRequest(
        type=resource.type, properties=properties, urn=resource.urn, name=resource.name, options=options
    )
    return list(servicer.Analyze(request, None).diagnostics)


def test_the_stack_through_the_analyzer(prod: Deployment) -> None:
    for resource in prod.resources:
        assert analyze(resource) == [], resource.name


def test_violations_and_unknowns_through_the_analyzer(prod: Deployment) -> None:
    postgres_container = prod.named("postgres-container")
    bad = {
        **postgres_container.inputs,
        "privileged": "true",
        "volumes": [{"hostPath": "//etc/", "containerPath": "/h"}],
    }
    mandatory = {d.policyName for d in analyze(postgres_container, bad) if d.enforcementLevel == analyzer_pb2.MANDATORY}
    assert mandatory == {"no-privileged", "no-sensitive-mounts"}
    # During a preview the image id is not known yet: the rule reports that it cannot run, it does not block.
    unknown = analyze(postgres_container, {**postgres_container.inputs, "image": UNKNOWN_STRING_VALUE})
    assert [(d.policyName, d.enforcementLevel) for d in unknown] == [("pinned-container-image", analyzer_pb2.ADVISORY)]
    assert "during preview" in unknown[0].message
    migrate = prod.named("migrate-command")
    line = unwrap(migrate.inputs)["create"].replace("--cap-drop=ALL", "--cap-drop=ALL --privileged", 1)
    found = analyze(migrate, {**migrate.inputs, "create": line})
    assert [(d.policyName, d.enforcementLevel) for d in found] == [("no-privileged", analyzer_pb2.MANDATORY)]
