"""The manifest checks (tests/kubernetes_manifests.py) pass a hand-written good stack and fail each bad variant of
it for the right reason, so that they are proven able to fail before they vouch for what `render` writes."""

from __future__ import annotations

import copy
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_manifests import (
    FIXTURES,
    KUBERNETES_VERSIONS,
    CheckovReport,
    Manifest,
    checkov,
    load,
    policy_problems,
    schema_problems,
    skips,
    unskipped,
)

GOOD = FIXTURES / "good"
SERVER = "deployment-server.yaml"

Mutation = Callable[[dict[str, dict[str, Any]]], None]
"""Edits the good stack: {file name: object}."""


def _server_pod(stack: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return stack[SERVER]["spec"]["template"]["spec"]


def _server(stack: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return _server_pod(stack)["containers"][0]


def _env(stack: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    return next(variable for variable in _server(stack)["env"] if variable["name"] == name)


def _misspell_privilege_escalation(stack: dict[str, dict[str, Any]]) -> None:
    context = _server(stack)["securityContext"]
    context["allowPrivilegeEscalaton"] = context.pop("allowPrivilegeEscalation")


def _secret_literal(stack: dict[str, dict[str, Any]]) -> None:
    variable = _env(stack, "JWT_SECRET")
    del variable["valueFrom"]
    variable["value"] = "9f8e7d6c5b4a39281706f5e4d3c2b1a0ffeeddccbbaa"


def _password_in_url(stack: dict[str, dict[str, Any]]) -> None:
    _env(stack, "DATABASE_URL")["value"] = "postgresql://sentineliq:Zq8uY2nVb3kLx7Pw@postgres:5432/sentineliq"


def _no_security_context(stack: dict[str, dict[str, Any]]) -> None:
    del _server_pod(stack)["securityContext"], _server(stack)["securityContext"]


def _host_path(stack: dict[str, dict[str, Any]]) -> None:
    _server_pod(stack)["volumes"][0] = {"name": "tmp", "hostPath": {"path": "/tmp"}}


# (case, mutation, what the schemas say, checkov's checks that must fail, the pack's rules that must fail)
BAD: list[tuple[str, Mutation, str | None, set[str], set[str]]] = [
    (
        "an unknown field",
        _misspell_privilege_escalation,
        "'allowPrivilegeEscalaton' was unexpected",
        {"CKV_K8S_20"},
        {"k8s-no-privilege-escalation"},
    ),
    (
        "a privileged pod",
        lambda s: _server(s)["securityContext"].update(privileged=True),
        None,
        {"CKV_K8S_16"},
        {"k8s-no-privileged"},
    ),
    (
        "no securityContext",
        _no_security_context,
        None,
        {"CKV_K8S_20", "CKV_K8S_23", "CKV_K8S_28", "CKV_K8S_31", "CKV_K8S_37"},
        {"k8s-run-as-non-root", "k8s-no-privilege-escalation", "k8s-drop-capabilities", "k8s-seccomp"},
    ),
    # checkov has no check for a literal secret in env (its secrets scan misses this hex value): the pack catches it.
    ("a secret literal in env", _secret_literal, None, set(), {"k8s-secret-env"}),
    ("a password in a URL in env", _password_in_url, None, {"CKV_SECRET_4"}, {"k8s-secret-env"}),
    (
        "the node's network",
        lambda s: _server_pod(s).update(hostNetwork=True),
        None,
        {"CKV_K8S_19"},
        {"k8s-no-host-namespaces"},
    ),
    ("a hostPath volume", _host_path, None, set(), {"k8s-volume-types"}),
    (
        "a service-account token",
        lambda s: _server_pod(s).update(automountServiceAccountToken=True),
        None,
        {"CKV_K8S_38"},
        {"k8s-service-account-token"},
    ),
    (
        "no default deny",
        lambda s: s.pop("networkpolicy-default-deny.yaml"),
        None,
        {"CKV2_K8S_6"},
        {"k8s-default-deny"},
    ),
    (
        "a namespace that does not enforce restricted",
        lambda s: s["namespace-sentineliq-test.yaml"]["metadata"]["labels"].pop("pod-security.kubernetes.io/enforce"),
        None,
        set(),
        {"k8s-namespace-restricted"},
    ),
    (
        "a field newer than 1.30",
        lambda s: _server_pod(s).update(resources={"limits": {"cpu": "2"}}),  # pod-level limits: 1.34 beta
        "Additional properties are not allowed ('resources' was unexpected) (Kubernetes 1.30)",
        set(),
        set(),
    ),
    (
        "an unknown custom resource",
        lambda s: s.update({"certificate-x.yaml": {"apiVersion": "cert-manager.io/v1", "kind": "Certificate"}}),
        "Kubernetes 1.30 has no cert-manager.io/v1 Certificate",
        set(),
        set(),
    ),
    (
        "a Middleware field Traefik does not know",
        lambda s: s["middleware-api-rate-limit.yaml"]["spec"]["rateLimit"].update(averge=50),
        "Additional properties are not allowed ('averge' was unexpected) (traefik-middlewares.traefik.io.yaml)",
        set(),
        set(),
    ),
    (
        "a Middleware of the wrong type",
        lambda s: s["middleware-security-headers.yaml"]["spec"]["headers"].update(frameDeny="yes"),
        "'yes' is not of type 'boolean'",
        set(),
        set(),
    ),
]


def _good() -> dict[str, dict[str, Any]]:
    return {path.name: yaml.safe_load(path.read_text()) for path in sorted(GOOD.glob("*.yaml"))}


def _slug(case: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", case.lower()).strip("-")


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CheckovReport]:
    """The good stack and every bad variant, each in its own folder, scanned by checkov: at once, but for the
    variants whose failure is a graph check (CKV2_*), each scanned alone, since checkov's graph links objects across
    the whole scan, namespaces ignored (its NetworkPolicyEdgeBuilder): another folder's policy would cover them."""
    root = tmp_path_factory.mktemp("manifests")
    scans = {root / "scan-together"}
    shutil.copytree(GOOD, root / "scan-together" / "good")
    for case, mutate, _schema, checks, _rules in BAD:
        stack = copy.deepcopy(_good())
        mutate(stack)
        graph = any(check.startswith("CKV2_") for check in checks)
        scan = root / (f"scan-{_slug(case)}" if graph else "scan-together")
        scans.add(scan)
        (scan / _slug(case)).mkdir(parents=True)
        for name, document in stack.items():
            (scan / _slug(case) / name).write_text(yaml.safe_dump(document, sort_keys=False))
    reports = [checkov(scan) for scan in sorted(scans)]
    for scan in scans:
        for folder in scan.iterdir():
            folder.rename(root / folder.name)
    return root, CheckovReport(
        [failure for report in reports for failure in report.failed],
        sum(r.passed for r in reports),
        sum(r.resources for r in reports),
        sum(r.parsing_errors for r in reports),
    )


def _failed_in(report: CheckovReport, folder: str) -> set[str]:
    return {failure.check for failure in unskipped(report) if failure.path.startswith(f"/{folder}/")}


def test_the_good_stack_passes_every_check(scanned: tuple[Path, CheckovReport]) -> None:
    root, report = scanned
    manifests = load(root / "good")
    kinds = {"Namespace", "NetworkPolicy", "Secret", "Deployment", "Service", "CronJob", "Middleware"}
    assert {m.kind for m in manifests} >= kinds
    assert [problem for m in manifests for problem in schema_problems(m)] == []
    assert _failed_in(report, "good") == set()
    assert policy_problems(manifests) == {}
    assert report.parsing_errors == 0 and report.resources >= len(manifests)
    assert report.passed > 100  # checkov ran its checks, it did not merely find nothing to check


@pytest.mark.parametrize(
    ("case", "schema", "checks", "rules"),
    [(case, schema, checks, rules) for case, _mutate, schema, checks, rules in BAD],
    ids=[case for case, *_ in BAD],
)
def test_each_bad_stack_fails_for_its_reason(
    scanned: tuple[Path, CheckovReport], case: str, schema: str | None, checks: set[str], rules: set[str]
) -> None:
    root, report = scanned
    manifests = load(root / _slug(case))
    problems = [problem for m in manifests for problem in schema_problems(m)]
    if schema is None:
        assert problems == []
    else:
        assert problems and any(schema in problem for problem in problems), problems
    assert checks <= _failed_in(report, _slug(case)), case
    found = policy_problems(m for m in manifests if m.kind != "Certificate")
    assert set(found) == rules, found
    assert schema is not None or checks or rules, "a bad case that nothing catches proves nothing"


def test_a_secret_value_copied_into_another_object_fails() -> None:
    stack = _good()
    stack["secret-server.yaml"]["stringData"]["jwtSecret"] = "a-jwt-secret-of-some-length"
    stack["configmap-x.yaml"] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "x", "namespace": "sentineliq-test"},
        "data": {"app.env": "JWT=a-jwt-secret-of-some-length"},
    }
    manifests = [Manifest(Path(name), document) for name, document in stack.items()]
    assert set(policy_problems(manifests)) == {"k8s-secret-values"}
    assert "a-jwt-secret" not in str(policy_problems(manifests))


def test_the_skip_list_is_short_and_every_skip_has_its_reason(scanned: tuple[Path, CheckovReport]) -> None:
    listed = skips()
    assert 0 < len(listed) <= 6 and len({skip.check for skip in listed}) == len(listed)
    for skip in listed:
        assert re.fullmatch(r"CKV2?_K8S_[0-9]+", skip.check), skip.check
        assert len(skip.reason.split()) >= 15, skip.check
        assert skip.resources is None or all(re.fullmatch(r"[A-Z][A-Za-z]+/[a-z0-9.-]+", r) for r in skip.resources)
    # Each skip of every object is still needed: the good stack, written as render writes, fails it.
    _root, report = scanned
    assert {f.check for f in report.failed if f.path.startswith("/good/")} == {
        skip.check for skip in listed if skip.resources is None
    }


def test_the_supported_versions_are_pinned_and_at_least_1_30() -> None:
    assert KUBERNETES_VERSIONS[0] == "1.30"
    assert all(tuple(map(int, v.split("."))) >= (1, 30) for v in KUBERNETES_VERSIONS)
