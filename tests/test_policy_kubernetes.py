"""The policy pack's Kubernetes rules: the hand-written good stack (tests/fixtures/kubernetes/good) passes them;
each branch of each rule fires on its bad value and stays quiet on its good one, on every kind of Pod template;
the stack rules through pulumi_policy's own analyzer; no shape of input makes a check raise."""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from google.protobuf import json_format, struct_pb2
from harness import ROOT, deploy_stack, unwrap
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes_manifests import FIXTURES, Manifest, policy_problems, validation_args
from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy import EnforcementLevel
from pulumi_policy.policy import _PolicyAnalyzerServicer
from pulumi_policy.proxy import unknown_checking_proxy
from sentineliq_policy import kubernetes, pack
from sentineliq_policy.kubernetes import POD_SPECS, RULES, STACK_RULES, resource_type, secret_name
from sentineliq_policy.rules import StackResource

DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def _good_stack() -> dict[str, dict[str, Any]]:
    return {path.name: yaml.safe_load(path.read_text()) for path in sorted((FIXTURES / "good").glob("*.yaml"))}


GOOD = _good_stack()


def run(kind: str, props: Any, name: str = "server") -> dict[str, list[str]]:
    """{rule: messages} of the Kubernetes resource rules, each through the validator the pack builds."""
    args = validation_args(kind, props, name)
    found: dict[str, list[str]] = {}
    for rule, policy in zip(pack.RULES, pack.policies()[: len(pack.RULES)], strict=True):
        if rule in RULES:
            messages: list[str] = []
            policy.validate(args, lambda message, _urn, out=messages: out.append(message))
            if messages:
                found[rule.name] = messages
    return found


# --- each resource rule, each branch ------------------------------------------------------------------------------

Mutation = Callable[[dict[str, Any]], None]
"""Edits the good server Deployment's Pod spec."""


def _container(**context: Any) -> Mutation:
    return lambda pod: pod["containers"][0]["securityContext"].update(context)


def _pod(**context: Any) -> Mutation:
    return lambda pod: pod["securityContext"].update(context)


def _spec(**values: Any) -> Mutation:
    return lambda pod: pod.update(values)


def _without(where: str, key: str) -> Mutation:
    def mutate(pod: dict[str, Any]) -> None:
        owner = pod if where == "pod" else pod["containers"][0]
        owner["securityContext"].pop(key)

    return mutate


def _init(**context: Any) -> Mutation:
    """An init container, hardened as the good container is, with these securityContext changes."""

    def mutate(pod: dict[str, Any]) -> None:
        init = copy.deepcopy(pod["containers"][0])
        init["name"] = "init"
        init["securityContext"].update(context)
        init["securityContext"] = {k: v for k, v in init["securityContext"].items() if v is not None}
        pod["initContainers"] = [init]

    return mutate


def _env(name: str, **variable: Any) -> Mutation:
    return lambda pod: pod["containers"][0]["env"].append({"name": name, **variable})


def _replace_env(name: str, **variable: Any) -> Mutation:
    def mutate(pod: dict[str, Any]) -> None:
        env = pod["containers"][0]["env"]
        env[:] = [({"name": name, **variable} if v["name"] == name else v) for v in env]

    return mutate


def _volume(**volume: Any) -> Mutation:
    return lambda pod: pod["volumes"].append({"name": "extra", **volume})


SECRET_REF = {"valueFrom": {"secretKeyRef": {"name": "server", "key": "x"}}}

# (rule, case, mutation, fires)
CASES: list[tuple[str, str, Mutation, bool]] = [
    # k8s-run-as-non-root: the pod's setting or each container's, the container's winning; never uid 0
    ("k8s-run-as-non-root", "pod true", lambda p: None, False),
    ("k8s-run-as-non-root", "unset everywhere", _without("pod", "runAsNonRoot"), True),
    (
        "k8s-run-as-non-root",
        "container true, pod unset",
        lambda p: (_without("pod", "runAsNonRoot")(p), _container(runAsNonRoot=True)(p)),
        False,
    ),
    ("k8s-run-as-non-root", "container false over pod true", _container(runAsNonRoot=False), True),
    (
        "k8s-run-as-non-root",
        "pod false, container true",
        lambda p: (_pod(runAsNonRoot=False)(p), _container(runAsNonRoot=True)(p)),
        True,
    ),
    (
        "k8s-run-as-non-root",
        "an init container unset, pod unset",
        lambda p: (_container(runAsNonRoot=True)(p), _without("pod", "runAsNonRoot")(p), _init(runAsNonRoot=None)(p)),
        True,
    ),
    ("k8s-run-as-non-root", "pod runAsUser 0", _pod(runAsUser=0), True),
    ("k8s-run-as-non-root", "container runAsUser 0", _container(runAsUser=0), True),
    ("k8s-run-as-non-root", "container runAsUser 0.0", _container(runAsUser=0.0), True),
    ("k8s-run-as-non-root", "container runAsUser 70", _container(runAsUser=70), False),
    # k8s-no-privilege-escalation: explicitly false in every container
    ("k8s-no-privilege-escalation", "false", lambda p: None, False),
    ("k8s-no-privilege-escalation", "unset", _without("container", "allowPrivilegeEscalation"), True),
    ("k8s-no-privilege-escalation", "true", _container(allowPrivilegeEscalation=True), True),
    ("k8s-no-privilege-escalation", "unreadable", _container(allowPrivilegeEscalation="no"), True),
    ("k8s-no-privilege-escalation", "an init container unset", _init(allowPrivilegeEscalation=None), True),
    ("k8s-no-privilege-escalation", "an init container false", _init(), False),
    (
        "k8s-no-privilege-escalation",
        "an ephemeral container unset",
        lambda p: p.update(ephemeralContainers=[{"name": "debug", "image": "busybox:1.36"}]),
        True,
    ),
    # k8s-drop-capabilities: drop ALL, add nothing but NET_BIND_SERVICE
    ("k8s-drop-capabilities", "drop ALL", lambda p: None, False),
    ("k8s-drop-capabilities", "no capabilities", _without("container", "capabilities"), True),
    ("k8s-drop-capabilities", "drop NET_RAW only", _container(capabilities={"drop": ["NET_RAW"]}), True),
    ("k8s-drop-capabilities", "drop all (lower case)", _container(capabilities={"drop": ["all"]}), True),
    (
        "k8s-drop-capabilities",
        "add NET_BIND_SERVICE",
        _container(capabilities={"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}),
        False,
    ),
    ("k8s-drop-capabilities", "add CHOWN", _container(capabilities={"drop": ["ALL"], "add": ["CHOWN"]}), True),
    ("k8s-drop-capabilities", "add unreadable", _container(capabilities={"drop": ["ALL"], "add": "SYS_ADMIN"}), True),
    # k8s-seccomp: RuntimeDefault for every container, through the pod or its own
    ("k8s-seccomp", "pod RuntimeDefault", lambda p: None, False),
    ("k8s-seccomp", "unset", _without("pod", "seccompProfile"), True),
    ("k8s-seccomp", "container Unconfined over the pod's", _container(seccompProfile={"type": "Unconfined"}), True),
    ("k8s-seccomp", "pod Localhost", _pod(seccompProfile={"type": "Localhost", "localhostProfile": "x.json"}), True),
    (
        "k8s-seccomp",
        "container RuntimeDefault, pod unset",
        lambda p: (_without("pod", "seccompProfile")(p), _container(seccompProfile={"type": "RuntimeDefault"})(p)),
        False,
    ),
    # k8s-no-privileged
    ("k8s-no-privileged", "privileged", _container(privileged=True), True),
    ("k8s-no-privileged", "privileged 'true'", _container(privileged="true"), True),
    ("k8s-no-privileged", "privileged false", _container(privileged=False), False),
    ("k8s-no-privileged", "procMount Unmasked", _container(procMount="Unmasked"), True),
    ("k8s-no-privileged", "procMount Default", _container(procMount="Default"), False),
    ("k8s-no-privileged", "container hostProcess", _container(windowsOptions={"hostProcess": True}), True),
    ("k8s-no-privileged", "pod hostProcess", _pod(windowsOptions={"hostProcess": True}), True),
    ("k8s-no-privileged", "pod hostProcess false", _pod(windowsOptions={"hostProcess": False}), False),
    # k8s-no-host-namespaces
    *[
        ("k8s-no-host-namespaces", f"{key} true", _spec(**{key: True}), True)
        for key in ("hostNetwork", "hostPID", "hostIPC")
    ],
    *[
        ("k8s-no-host-namespaces", f"{key} false", _spec(**{key: False}), False)
        for key in ("hostNetwork", "hostPID", "hostIPC")
    ],
    ("k8s-no-host-namespaces", "a hostPort", lambda p: p["containers"][0]["ports"][0].update(hostPort=3001), True),
    ("k8s-no-host-namespaces", "hostPort 0", lambda p: p["containers"][0]["ports"][0].update(hostPort=0), False),
    (
        "k8s-no-host-namespaces",
        "a probe on another host",
        lambda p: p["containers"][0]["readinessProbe"]["httpGet"].update(host="10.0.0.1"),
        True,
    ),
    # k8s-volume-types
    ("k8s-volume-types", "hostPath", _volume(hostPath={"path": "/var/lib"}), True),
    ("k8s-volume-types", "nfs", _volume(nfs={"server": "nas", "path": "/x"}), True),
    ("k8s-volume-types", "two types in one", _volume(emptyDir={}, hostPath={"path": "/x"}), True),
    ("k8s-volume-types", "no type", _volume(), True),
    ("k8s-volume-types", "a PVC", _volume(persistentVolumeClaim={"claimName": "data"}), False),
    ("k8s-volume-types", "a Secret", _volume(secret={"secretName": "server"}), False),
    # k8s-security-profiles
    ("k8s-security-profiles", "pod AppArmor Unconfined", _pod(appArmorProfile={"type": "Unconfined"}), True),
    (
        "k8s-security-profiles",
        "container AppArmor Unconfined",
        _container(appArmorProfile={"type": "Unconfined"}),
        True,
    ),
    ("k8s-security-profiles", "AppArmor RuntimeDefault", _container(appArmorProfile={"type": "RuntimeDefault"}), False),
    ("k8s-security-profiles", "SELinux spc_t", _container(seLinuxOptions={"type": "spc_t"}), True),
    ("k8s-security-profiles", "SELinux user", _pod(seLinuxOptions={"user": "system_u"}), True),
    ("k8s-security-profiles", "SELinux level", _pod(seLinuxOptions={"level": "s0:c123,c456"}), False),
    ("k8s-security-profiles", "a sysctl", _pod(sysctls=[{"name": "net.ipv4.ip_forward", "value": "1"}]), True),
    # k8s-service-account-token
    ("k8s-service-account-token", "false", lambda p: None, False),
    ("k8s-service-account-token", "unset", lambda p: p.pop("automountServiceAccountToken"), True),
    ("k8s-service-account-token", "true", _spec(automountServiceAccountToken=True), True),
    # k8s-secret-env
    ("k8s-secret-env", "secretKeyRef", _env("REDIS_PASSWORD", **SECRET_REF), False),
    ("k8s-secret-env", "a password literally", _env("REDIS_PASSWORD", value="hunter2hunter2"), True),
    ("k8s-secret-env", "REDISCLI_AUTH literally", _env("REDISCLI_AUTH", value="hunter2hunter2"), True),
    ("k8s-secret-env", "an encryption key literally", _env("KIBANA_ENCRYPTION_KEY", value="k" * 32), True),
    ("k8s-secret-env", "a DSN literally", _env("SENTRY_DSN", value="https://k@o0.ingest.sentry.io/1"), True),
    ("k8s-secret-env", "an access key id literally", _env("S3_ACCESS_KEY_ID", value="sentineliq-app"), False),
    ("k8s-secret-env", "an empty password", _env("REDIS_PASSWORD", value=""), False),
    (
        "k8s-secret-env",
        "a password from a ConfigMap",
        _env("REDIS_PASSWORD", valueFrom={"configMapKeyRef": {"name": "x", "key": "y"}}),
        True,
    ),
    ("k8s-secret-env", "a URL with $(secret)", lambda p: None, False),
    (
        "k8s-secret-env",
        "a URL with a literal password",
        _replace_env("DATABASE_URL", value="postgresql://sentineliq:pw123456@postgres:5432/db"),
        True,
    ),
    (
        "k8s-secret-env",
        "a URL with an empty user and a password",
        _env("REDIS_URL", value="redis://:pw123456@redis:6379"),
        True,
    ),
    (
        "k8s-secret-env",
        "a URL with $(a variable not from a Secret)",
        _replace_env("DATABASE_URL", value="postgresql://sentineliq:$(NODE_ENV)@postgres:5432/db"),
        True,
    ),
    (
        "k8s-secret-env",
        "a URL with $(a secret defined after it)",
        lambda p: p["containers"][0]["env"].append(p["containers"][0]["env"].pop(3)),
        True,
    ),
    ("k8s-secret-env", "a URL without credentials", _env("S3_ENDPOINT", value="http://minio:9000"), False),
    (
        "k8s-secret-env",
        "a password in the args",
        lambda p: p["containers"][0].update(args=["--db", "postgresql://u:pw123456@postgres/db"]),
        True,
    ),
]


@pytest.mark.parametrize(("rule_name", "case", "mutate", "fires"), CASES, ids=[f"{r}: {c}" for r, c, _m, _f in CASES])
def test_each_branch_of_each_rule(rule_name: str, case: str, mutate: Mutation, fires: bool) -> None:
    deployment = copy.deepcopy(GOOD["deployment-server.yaml"])
    mutate(deployment["spec"]["template"]["spec"])
    found = run(DEPLOYMENT, deployment)
    assert (rule_name in found) is fires, (case, found)
    if fires:
        for message in found[rule_name]:
            assert message.startswith("server (server): ") and "Fix:" in message, message
    else:
        assert found == {}, case


def test_every_rule_has_a_failing_and_a_passing_case() -> None:
    covered = {(rule, fires) for rule, _case, _mutate, fires in CASES}
    covered |= {(rule, fires) for rule, _case, _mutate, fires in STACK_CASES}
    for rule in (*RULES, *STACK_RULES):
        assert {(rule.name, True), (rule.name, False)} <= covered, rule.name


@pytest.mark.parametrize("kind", sorted(POD_SPECS))
def test_every_kind_of_pod_template_is_checked(kind: str) -> None:
    """The same Pod spec inside each kind: quiet when hardened, caught when privileged (the path to the spec is
    each kind's own)."""
    pod = copy.deepcopy(GOOD["deployment-server.yaml"]["spec"]["template"])
    path = POD_SPECS[kind]

    def wrap(spec: dict[str, Any]) -> dict[str, Any]:
        props: dict[str, Any] = {"metadata": {"name": "server", "namespace": "sentineliq-test"}}
        owner = props
        for key in path[:-1]:
            owner = owner.setdefault(key, {})
        owner[path[-1]] = spec
        if path != ("spec",):
            owner["metadata"] = pod["metadata"]
        return props

    assert run(kind, wrap(pod["spec"])) == {}
    bad = copy.deepcopy(pod["spec"])
    bad["containers"][0]["securityContext"]["privileged"] = True
    assert list(run(kind, wrap(bad))) == ["k8s-no-privileged"]
    _provider, group_version, name = kind.split(":")
    assert resource_type({"apiVersion": group_version.removeprefix("core/"), "kind": name}) == kind


def test_the_apparmor_annotation_is_read_where_the_pod_has_it() -> None:
    deployment = copy.deepcopy(GOOD["deployment-server.yaml"])
    key = "container.apparmor.security.beta.kubernetes.io/server"
    deployment["spec"]["template"]["metadata"]["annotations"] = {key: "unconfined"}
    assert list(run(DEPLOYMENT, deployment)) == ["k8s-security-profiles"]
    deployment["spec"]["template"]["metadata"]["annotations"] = {key: "runtime/default"}
    assert run(DEPLOYMENT, deployment) == {}


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("POSTGRES_PASSWORD", True),
        ("LOGSTASH_WRITER_PASSWORD", True),
        ("JWT_SECRET", True),
        ("S3_SECRET_ACCESS_KEY", True),
        ("REDISCLI_AUTH", True),
        ("GITHUB_TOKEN", True),
        ("KIBANA_ENCRYPTION_KEY", True),
        ("MC_HOST_source", False),  # a URL: its password is checked as one
        ("S3_ACCESS_KEY_ID", False),
        ("NODE_ENV", False),
        ("KEYCLOAK_URL", False),
        ("AUTHOR", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    assert secret_name(name) is secret


# --- the stack rules ----------------------------------------------------------------------------------------------

StackMutation = Callable[[dict[str, dict[str, Any]]], None]


def _policy(**spec: Any) -> StackMutation:
    return lambda s: s["networkpolicy-default-deny.yaml"]["spec"].update(spec)


def _configmap(value: str) -> StackMutation:
    return lambda s: s.update(
        {"cm.yaml": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"x": value}}}
    )


def _secret(**values: Any) -> StackMutation:
    return lambda s: s["secret-server.yaml"].update(values)


STACK_CASES: list[tuple[str, str, StackMutation, bool]] = [
    ("k8s-namespace-restricted", "labelled restricted", lambda s: None, False),
    (
        "k8s-namespace-restricted",
        "not labelled",
        lambda s: s["namespace-sentineliq-test.yaml"]["metadata"].pop("labels"),
        True,
    ),
    (
        "k8s-namespace-restricted",
        "baseline",
        lambda s: s["namespace-sentineliq-test.yaml"]["metadata"]["labels"].update(
            {"pod-security.kubernetes.io/enforce": "baseline"}
        ),
        True,
    ),
    (
        "k8s-namespace-restricted",
        "a workload in a namespace the stack does not create",
        lambda s: s["deployment-server.yaml"]["metadata"].update(namespace="default"),
        True,
    ),
    (
        "k8s-namespace-restricted",
        "a workload without a namespace",
        lambda s: s["cronjob-backup-postgres.yaml"]["metadata"].pop("namespace"),
        True,
    ),
    ("k8s-default-deny", "deny all", lambda s: None, False),
    ("k8s-default-deny", "none", lambda s: s.pop("networkpolicy-default-deny.yaml"), True),
    ("k8s-default-deny", "ingress only", _policy(policyTypes=["Ingress"]), True),
    ("k8s-default-deny", "some pods", _policy(podSelector={"matchLabels": {"a": "b"}}), True),
    (
        "k8s-default-deny",
        "some pods by expression",
        _policy(podSelector={"matchExpressions": [{"key": "a", "operator": "Exists"}]}),
        True,
    ),
    (
        "k8s-default-deny",
        "no pod selector",
        lambda s: s["networkpolicy-default-deny.yaml"]["spec"].pop("podSelector"),
        True,
    ),
    ("k8s-default-deny", "allows all ingress", _policy(ingress=[{}]), True),
    ("k8s-default-deny", "allows some egress", _policy(egress=[{"to": [{"podSelector": {}}]}]), True),
    ("k8s-default-deny", "empty rule lists", _policy(ingress=[], egress=[]), False),
    (
        "k8s-default-deny",
        "in another namespace",
        lambda s: s["networkpolicy-default-deny.yaml"]["metadata"].update(namespace="other"),
        True,
    ),
    ("k8s-secret-values", "redacted", lambda s: None, False),
    (
        "k8s-secret-values",
        "a value in a ConfigMap",
        lambda s: (_secret(stringData={"k": "s3cr3t-value!"})(s), _configmap("x=s3cr3t-value!")(s)),
        True,
    ),
    (
        "k8s-secret-values",
        "a data value (base64) in an env literal",
        lambda s: (
            _secret(data={"k": "czNjcjN0LXZhbHVlIQ=="})(s),
            s["deployment-server.yaml"]["spec"]["template"]["spec"]["containers"][0]["env"].append(
                {"name": "X", "value": "s3cr3t-value!"}
            ),
        ),
        True,
    ),
    (
        "k8s-secret-values",
        "an undecodable data value",
        lambda s: (_secret(data={"k": "not base64!"})(s), _configmap("not base64!")(s)),
        True,
    ),
    (
        "k8s-secret-values",
        "a non-ASCII data value (no base64)",
        lambda s: (_secret(data={"k": "pässwörd-ünicode"})(s), _configmap("pässwörd-ünicode")(s)),
        True,
    ),
    (
        "k8s-secret-values",
        "a short value found by chance",
        lambda s: (_secret(stringData={"k": "true"})(s), _configmap("true")(s)),
        False,
    ),
]


def _stack(mutate: StackMutation) -> list[StackResource]:
    stack = copy.deepcopy(GOOD)
    mutate(stack)
    return [StackResource(resource_type(d), str(d["metadata"].get("name")), d) for d in stack.values()]


@pytest.mark.parametrize(
    ("rule_name", "case", "mutate", "fires"), STACK_CASES, ids=[f"{r}: {c}" for r, c, _m, _f in STACK_CASES]
)
def test_each_branch_of_each_stack_rule(rule_name: str, case: str, mutate: StackMutation, fires: bool) -> None:
    resources = _stack(mutate)
    found = {rule.name: rule.problems(resources) for rule in STACK_RULES}
    found = {name: messages for name, messages in found.items() if messages}
    assert (rule_name in found) is fires, (case, found)
    if fires:
        assert all("Fix:" in message and "could not be checked" not in message for message in found[rule_name])
        assert "s3cr3t" not in str(found)  # a message names the Secret, never its value
    else:
        assert found == {}, case


def _engine_resource(resource: StackResource) -> analyzer_pb2.AnalyzerResource:
    properties = struct_pb2.Struct()
    json_format.ParseDict(dict(resource.props), properties)
    return analyzer_pb2.AnalyzerResource(type=resource.resource_type, properties=properties, name=resource.name)


def test_the_stack_rules_through_the_analyzer() -> None:
    """What `pulumi preview --policy-pack` runs over gRPC once every resource is registered (AnalyzeStack)."""
    servicer = _PolicyAnalyzerServicer("sentineliq", "1", pack.policies(), EnforcementLevel.MANDATORY)

    def analyze(mutate: StackMutation) -> set[str]:
        request = analyzer_pb2.AnalyzeStackRequest(resources=[_engine_resource(r) for r in _stack(mutate)])
        return {d.policyName for d in servicer.AnalyzeStack(request, None).diagnostics}

    assert analyze(lambda s: None) == set()
    assert analyze(lambda s: s.pop("networkpolicy-default-deny.yaml")) == {"k8s-default-deny"}
    # the resource rules run on each object through Analyze
    deployment = _stack(lambda s: s["deployment-server.yaml"]["spec"]["template"]["spec"].update(hostPID=True))
    [server] = [r for r in deployment if r.resource_type == DEPLOYMENT]
    request = analyzer_pb2.AnalyzeRequest(
        type=DEPLOYMENT, properties=_engine_resource(server).properties, urn="urn:x", name="server"
    )
    found = [(d.policyName, d.enforcementLevel) for d in servicer.Analyze(request, None).diagnostics]
    assert found == [("k8s-no-host-namespaces", analyzer_pb2.MANDATORY)]


def test_a_docker_stack_meets_no_kubernetes_rule(prod: Any) -> None:
    resources = [StackResource(r.type, r.name, r.inputs) for r in prod.resources]
    assert [problem for rule in STACK_RULES for problem in rule.problems(resources)] == []


def test_the_good_manifests_pass_as_files() -> None:
    manifests = [Manifest(Path(name), document) for name, document in GOOD.items()]
    assert policy_problems(manifests) == {}


# --- totality, documentation ------------------------------------------------------------------------------------

KEYS = sorted(
    {"spec", "template", "jobTemplate", "metadata", "securityContext", "containers", "initContainers", "env", "value"}
    | {"valueFrom", "secretKeyRef", "capabilities", "drop", "add", "volumes", "hostPath", "ports", "hostPort", "name"}
    | {"runAsNonRoot", "runAsUser", "seccompProfile", "type", "privileged", "podSelector", "policyTypes", "labels"}
    | {"namespace", "stringData", "data", "args", "readinessProbe", "httpGet", "host", "annotations", "sysctls"}
)
scalars = st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=True) | st.text(max_size=20)
shapes = st.recursive(
    scalars | st.sampled_from(["ALL", "RuntimeDefault", "restricted", "Ingress", "a://u:p@h", "$(X)", "PASSWORD"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6), children, max_size=6)
    ),
    max_leaves=30,
)
KINDS = [*POD_SPECS, kubernetes.NAMESPACE, kubernetes.NETWORK_POLICY, kubernetes.SECRET, "kubernetes:core/v1:ConfigMap"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    props=st.dictionaries(st.sampled_from(KEYS), shapes, max_size=6),
    kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=4),
)
def test_no_shape_of_props_makes_a_check_raise(props: dict[str, Any], kinds: list[str]) -> None:
    """Every check, without the validators' safety net, on arbitrary shapes: none may raise."""
    for kind in kinds:
        args = validation_args(kind, props, "x")
        for rule in RULES:
            for subject, check in rule.subjects(args):
                list(check(subject))
                list(check(dataclasses.replace(subject, props=unknown_checking_proxy(props))))
    resources = [StackResource(kind, "x", props) for kind in kinds]
    for stack_rule in STACK_RULES:
        list(stack_rule.check(resources))


def test_every_rule_cites_its_standard_and_is_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    names = [rule.name for rule in (*RULES, *STACK_RULES)]
    assert len(set(names)) == len(names) and not set(names) & {rule.name for rule in pack.RULES if rule not in RULES}
    for rule in (*RULES, *STACK_RULES):
        assert re.match(r"(Pod Security Standard restricted|Project rule):", rule.description), rule.name
        assert rule.enforcement == EnforcementLevel.MANDATORY, rule.name
        assert f"`{rule.name}`" in readme, rule.name


# --- the Kubernetes stack as registered ---------------------------------------------------------------------------


def test_the_kubernetes_stack_passes_every_rule() -> None:
    """Every object the committed Kubernetes stack registers (with the test secrets, unredacted: the values
    themselves), through each resource rule and the stack rules."""
    deployment = deploy_stack("k8s")
    objects = [r for r in deployment.resources if r.type.startswith("kubernetes:")]
    assert len(objects) > 40
    checked = 0
    for resource in objects:
        assert run(resource.type, unwrap(resource.inputs), resource.name) == {}, resource.name
        checked += resource.type in POD_SPECS
    assert checked >= 12  # the four StatefulSets, four Deployments, the Jobs, the backup CronJobs
    resources = [StackResource(r.type, r.name, unwrap(r.inputs)) for r in deployment.resources]
    assert {rule.name: rule.problems(resources) for rule in STACK_RULES} == {rule.name: [] for rule in STACK_RULES}
