"""The policy pack's rules: the stacks as registered pass them; a crafted bad resource trips each one."""

from __future__ import annotations

import ast
import contextlib
import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from harness import ROOT, TEST_SECRETS, Deployment, Registration, deploy_stack, unwrap
from pulumi_policy import EnforcementLevel, PolicyCustomTimeouts, PolicyResourceOptions, ResourceValidationArgs
from sentineliq_policy.rules import CONTAINER, DOCUMENTED_CAPABILITIES, IMAGE, RULES, VOLUME, Rule, policies

from sentinel_infra.application import client
from sentinel_infra.data_services import postgres, redis
from sentinel_infra.settings import Settings


def args_for(resource: Registration, config: dict[str, Any] | None = None) -> ResourceValidationArgs:
    """What the engine hands a validator: camelCase props, secrets unwrapped, the resource options."""
    opts = PolicyResourceOptions(
        protect=resource.protect,
        ignore_changes=[],
        delete_before_replace=resource.delete_before_replace if resource.delete_before_replace_defined else None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=resource.additional_secret_outputs,
        parent=resource.parent,
    )
    return ResourceValidationArgs(
        resource_type=resource.type,
        props=unwrap(resource.inputs),
        urn=resource.urn,
        name=resource.name,
        opts=opts,
        provider=None,
        config=config,
    )


def violations(resource: Registration, rules: list[Rule] | None = None) -> dict[str, list[str]]:
    """{rule name: messages} for the rules a resource breaks (each rule with its default config)."""
    found: dict[str, list[str]] = {}
    for rule, policy in zip(RULES, policies(), strict=True):
        if rules is not None and rule not in rules:
            continue
        messages: list[str] = []
        policy.validate(args_for(resource, rule.defaults()), lambda message, _urn, out=messages: out.append(message))
        if messages:
            found[rule.name] = messages
    return found


@pytest.fixture(scope="module", params=["dev", "prod"])
def deployment(request: pytest.FixtureRequest) -> Deployment:
    return deploy_stack(request.param)


def test_the_stacks_pass_every_rule(deployment: Deployment) -> None:
    checked = 0
    for resource in deployment.resources:
        assert violations(resource) == {}, resource.name
        checked += resource.type in (CONTAINER, VOLUME, IMAGE)
    assert checked >= 8 + 4 + 8


def test_every_container_rule_cites_its_cis_control_or_is_a_project_rule() -> None:
    project_rules = {"public-ports", "rolling-app-deploys", "log-rotation", "stack-network", "pinned-container-image"}
    for rule in RULES:
        if rule.resource_type == CONTAINER and rule.name not in project_rules:
            assert rule.description.startswith("CIS 5."), rule.name
    assert len({rule.name for rule in RULES}) == len(RULES)
    advisory = {rule.name for rule in RULES if rule.enforcement == EnforcementLevel.ADVISORY}
    assert advisory == {"capabilities", "read-only-root"}


def test_the_documented_capabilities_are_the_specs() -> None:
    settings = Settings.model_validate({**TEST_SECRETS, "serverTag": "main", "clientTag": "main"})
    specs = {spec.name: list(spec.cap_add) for spec in (postgres(settings), redis(settings), client(settings))}
    assert specs == DOCUMENTED_CAPABILITIES


Mutation = Callable[[dict[str, Any]], None]

BAD_CONTAINERS: dict[str, Mutation] = {
    "no-privileged": lambda p: p.update(privileged=True),
    "no-host-namespaces": lambda p: p.update(pidMode="host"),
    "no-sensitive-mounts": lambda p: p["volumes"].append(
        {"hostPath": "/var/run/docker.sock", "containerPath": "/var/run/docker.sock"}
    ),
    "memory-limit": lambda p: p.pop("memory"),
    "cpu-limit": lambda p: p.pop("cpus"),
    "no-new-privileges": lambda p: p.update(securityOpts=[]),
    "healthcheck": lambda p: p.update(healthcheck={"tests": ["NONE"]}),
    "restart-policy": lambda p: p.update(restart="always"),
    "explicit-port-address": lambda p: p.update(ports=[{"internal": 3000, "external": 3000}]),
    "capabilities": lambda p: p.update(capabilities={"drops": ["ALL"], "adds": ["SYS_ADMIN"]}),
    "read-only-root": lambda p: p.pop("readOnly"),
    "public-ports": lambda p: p.update(ports=[{"internal": 5432, "external": 5432, "ip": "0.0.0.0"}]),
    "log-rotation": lambda p: p.update(logOpts={}),
    "stack-network": lambda p: p.update(networksAdvanced=[{"name": "bridge"}]),
    "pinned-container-image": lambda p: p.update(image="postgres:latest"),
}


@pytest.mark.parametrize("rule_name", sorted(BAD_CONTAINERS))
def test_each_container_rule_fires_on_a_bad_container(rule_name: str) -> None:
    good = deploy_stack("prod").containers()["postgres"]
    assert violations(good) == {}
    bad = copy.deepcopy(good)
    props = unwrap(bad.inputs)
    BAD_CONTAINERS[rule_name](props)
    bad.inputs = props
    found = violations(bad)
    assert rule_name in found, found
    for message in found[rule_name]:
        assert message.startswith("postgres-container (postgres): ")
        assert "Fix:" in message
        assert TEST_SECRETS["postgresPassword"] not in message


def test_more_ways_to_break_the_container_rules() -> None:
    good = deploy_stack("prod").containers()["postgres"]
    cases: list[tuple[str, Mutation]] = [
        ("no-host-namespaces", lambda p: p.update(networkMode="host")),
        ("no-host-namespaces", lambda p: p.update(ipcMode="host")),
        ("no-sensitive-mounts", lambda p: p["volumes"].append({"hostPath": "/etc", "containerPath": "/host"})),
        ("no-sensitive-mounts", lambda p: p.update(mounts=[{"type": "bind", "source": "/", "target": "/host"}])),
        ("restart-policy", lambda p: p.update(restart="on-failure", maxRetryCount=10)),
        ("capabilities", lambda p: p.update(capabilities={"adds": ["CHOWN"]})),
        ("log-rotation", lambda p: p.update(logDriver="syslog")),
        ("public-ports", lambda p: p.update(ports=[{"internal": 5601, "external": 5601, "ip": "::"}])),
    ]
    for rule_name, mutate in cases:
        bad = copy.deepcopy(good)
        props = unwrap(bad.inputs)
        mutate(props)
        bad.inputs = props
        assert rule_name in violations(bad), rule_name


def test_the_image_and_volume_rules_fire() -> None:
    prod = deploy_stack("prod")
    image = copy.deepcopy(prod.named("images-postgres"))
    for reference in ("postgres", "postgres:latest", "registry:5000/team/app"):
        image.inputs = {**image.inputs, "name": reference}
        assert "pinned-images" in violations(image), reference
    image.inputs = {**image.inputs, "name": "postgres@sha256:" + "a" * 64}
    assert violations(image) == {}
    volume = copy.deepcopy(prod.named("sentineliq-postgres-data"))
    volume.protect = False
    assert violations(volume) == {
        "protected-volumes": [
            "sentineliq-postgres-data (sentineliq-postgres-data): can be deleted by `pulumi destroy`. "
            "Fix: sentineliq:protectData true (protect and retainOnDelete)"
        ]
    }


def test_an_operator_can_relax_an_advisory_rule_per_service() -> None:
    server = deploy_stack("prod").containers()["server"]
    [read_only] = [rule for rule in RULES if rule.name == "read-only-root"]
    assert violations(server, [read_only]) == {}
    strict: list[str] = []
    read_only.policy().validate(args_for(server, {"exempt": []}), lambda message, _urn: strict.append(message))
    assert strict and "writable root filesystem" in strict[0]


def test_messages_never_print_a_secret_property() -> None:
    server = copy.deepcopy(deploy_stack("prod").containers()["server"])
    props = unwrap(server.inputs)
    for mutate in BAD_CONTAINERS.values():
        with contextlib.suppress(KeyError, AttributeError):
            mutate(props)
    server.inputs = props
    text = str(violations(server))
    assert len(violations(server)) >= 10
    for secret in TEST_SECRETS.values():
        assert secret not in text


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


# --- the edge and rolling app deploys -----------------------------------------------------------------------------


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
