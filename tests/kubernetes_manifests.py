"""The checks every Kubernetes manifest must pass (what `python -m sentinel_infra render` writes, and the
hand-written ones in tests/fixtures/kubernetes/ that prove each check can fail):

1. the OpenAPI schemas of the oldest and the newest Kubernetes version we support, strictly (an unknown field is an
   error), with `kubernetes-validate`; a kind without a schema (a custom resource) is an error unless
   CUSTOM_RESOURCES names it with its reason;
2. checkov's Kubernetes checks and its secrets scan (checkov lives in its own virtualenv, which scripts/test
   creates), 0 failures but the skip list tests/fixtures/kubernetes/checkov-skips.yaml;
3. the policy pack's Kubernetes rules, the resource rules on each manifest and the stack rules on all of them (a
   manifest is what pulumi-kubernetes registers: the same props).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import yaml
from local_servers import require
from pulumi_policy import PolicyCustomTimeouts, PolicyResourceOptions, ResourceValidationArgs
from sentineliq_policy.kubernetes import RULES, STACK_RULES, resource_type
from sentineliq_policy.rules import StackResource

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "kubernetes"
SKIPS_FILE = FIXTURES / "checkov-skips.yaml"

KUBERNETES_VERSIONS = ("1.30", "1.34")
"""The oldest Kubernetes the README supports and the newest we check against: a field removed since 1.30 or added
after it fails one of them. kubernetes-validate (requirements-dev.txt) ships both versions' schemas."""

CUSTOM_RESOURCES: dict[tuple[str, str], Path] = {
    ("traefik.io/v1alpha1", "Middleware"): ROOT / "tests/fixtures/schemas/traefik-middlewares.traefik.io.yaml",
}
"""The custom resources the manifests may hold (the edge's headers and rate limits with `ingressClass: traefik`),
each with its CustomResourceDefinition: the Kubernetes OpenAPI schemas do not know them."""

CHECKOV = Path(os.environ.get("SENTINELIQ_CHECKOV") or ROOT / ".cache" / "checkov" / "bin" / "checkov")
"""checkov, installed by scripts/test in its own virtualenv (its many pins stay out of the program's venv)."""


@dataclass(frozen=True)
class Manifest:
    path: Path
    document: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.document.get("kind"))

    @property
    def name(self) -> str:
        return str((self.document.get("metadata") or {}).get("name"))

    def __str__(self) -> str:
        return f"{self.kind}/{self.name} ({self.path.name})"


def load(directory: Path) -> list[Manifest]:
    """Every document of every YAML file under a folder; a document that is not an object is an error."""
    manifests = []
    for path in sorted(directory.rglob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document is None:
                continue
            if not isinstance(document, dict):
                raise ValueError(f"{path}: a document that is not a Kubernetes object")
            manifests.append(Manifest(path, document))
    return manifests


def strict(schema: Any) -> Any:
    """A CRD's OpenAPI schema with unknown fields refused, as the API server's strict field validation refuses them
    (where the schema does not preserve unknown fields)."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {key: strict(value) for key, value in schema.items()}
    if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        closed.setdefault("additionalProperties", False)
    return closed


def custom_resource_problems(manifest: Manifest, definition: Path) -> list[str]:
    """What a custom resource's definition (its version's openAPIV3Schema, strictly) refuses; the metadata that
    the definition leaves to the API server must name the object and its namespace."""
    crd = yaml.safe_load(definition.read_text())
    version = str(manifest.document.get("apiVersion")).rsplit("/", 1)[-1]
    [schema] = [v["schema"]["openAPIV3Schema"] for v in crd["spec"]["versions"] if v["name"] == version]
    schema = strict(schema)
    schema["properties"]["metadata"] = {
        "type": "object",
        "required": ["name", "namespace"],
        "properties": {"name": {"type": "string"}, "namespace": {"type": "string"}, "labels": {"type": "object"}},
        "additionalProperties": False,
    }
    schema["properties"] |= {"apiVersion": {"type": "string"}, "kind": {"type": "string"}}
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{manifest}: {'.'.join(str(p) for p in error.path) or '(top)'}: {error.message} ({definition.name})"
        for error in validator.iter_errors(manifest.document)
    ]


def schema_problems(manifest: Manifest) -> list[str]:
    """What the OpenAPI schemas of each supported version refuse in a manifest (strict: no unknown field)."""
    api = (str(manifest.document.get("apiVersion")), manifest.kind)
    if api in CUSTOM_RESOURCES:
        return custom_resource_problems(manifest, CUSTOM_RESOURCES[api])
    problems = []
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(manifest.document, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            where = ".".join(str(part) for part in error.path) or "(top)"
            problems.append(f"{manifest}: {where}: {error.message} (Kubernetes {version})")
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(f"{manifest}: Kubernetes {version} has no {api[0]} {api[1]} (a custom resource?)")
    return problems


@dataclass(frozen=True)
class Failure:
    check: str
    resource: str
    """checkov's name: Kind.namespace.name."""
    path: str
    """The file, relative to the scanned folder, with a leading /."""

    @property
    def object(self) -> str:
        """`Kind/name`: checkov names an object Kind.namespace.name (a namespace has no dot; a name may)."""
        kind, _namespace, name = [*self.resource.split(".", 2), "", ""][:3]
        return f"{kind}/{name}"


@dataclass(frozen=True)
class CheckovReport:
    failed: list[Failure]
    passed: int
    resources: int
    parsing_errors: int


def checkov(directory: Path) -> CheckovReport:
    """checkov's Kubernetes checks and its secrets scan over a folder, offline, every check (the skip list is
    applied by `unskipped`, so that a test can tell a skip that is no longer needed)."""
    require(CHECKOV.exists(), f"checkov ({CHECKOV}; scripts/test installs it)")
    command = [str(CHECKOV), "--directory", str(directory), "--framework", "kubernetes", "secrets"]
    result = subprocess.run(
        [*command, "--skip-download", "--output", "json"], capture_output=True, text=True, check=False, timeout=600
    )
    if result.returncode not in (0, 1):
        raise RuntimeError(f"checkov failed ({result.returncode}): {result.stderr[-2000:]}")
    output = json.loads(result.stdout)
    # One report per framework that found something to scan; with nothing to scan, an empty summary instead.
    reports = {report.get("check_type"): report for report in (output if isinstance(output, list) else [output])}
    if "kubernetes" not in reports:
        raise RuntimeError(f"checkov scanned no Kubernetes object in {directory}: {result.stdout[:500]}")
    failed = [
        Failure(item["check_id"], item["resource"], item["file_path"])
        for report in reports.values()
        for item in report["results"]["failed_checks"]
    ]
    summary = reports["kubernetes"]["summary"]
    return CheckovReport(failed, summary["passed"], summary["resource_count"], summary["parsing_errors"])


@dataclass(frozen=True)
class Skip:
    check: str
    reason: str
    resources: frozenset[str] | None
    """`Kind/name` of the only objects it applies to; None: every object."""

    def covers(self, failure: Failure) -> bool:
        return failure.check == self.check and (self.resources is None or failure.object in self.resources)


def skips() -> list[Skip]:
    """The committed skip list."""
    return [
        Skip(entry["id"], entry["reason"], frozenset(entry["resources"]) if "resources" in entry else None)
        for entry in yaml.safe_load(SKIPS_FILE.read_text())
    ]


def unskipped(report: CheckovReport) -> list[Failure]:
    allowed = skips()
    return [failure for failure in report.failed if not any(skip.covers(failure) for skip in allowed)]


def validation_args(kind: str, props: Any, name: str) -> ResourceValidationArgs:
    """What the engine hands a resource validator for a Kubernetes object (no options matter to these rules)."""
    options = PolicyResourceOptions(
        protect=False,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=None,
    )
    urn = f"urn:pulumi:test::sentineliq::{kind}::{name}"
    return ResourceValidationArgs(kind, props, urn, name, options, None, {})


def policy_problems(manifests: Iterable[Manifest]) -> dict[str, list[str]]:
    """{rule: messages} of the policy pack's Kubernetes rules that the manifests break."""
    manifests = list(manifests)
    found: dict[str, list[str]] = {}
    for rule in RULES:
        for manifest in manifests:
            args = validation_args(resource_type(manifest.document), manifest.document, manifest.name)
            found.setdefault(rule.name, []).extend(rule.problems(args))
    stack = [StackResource(resource_type(m.document), m.name, m.document) for m in manifests]
    for stack_rule in STACK_RULES:
        found[stack_rule.name] = stack_rule.problems(stack)
    return {rule: messages for rule, messages in found.items() if messages}


def write(directory: Path, manifests: Mapping[str, dict[str, Any]]) -> None:
    """Write manifests as render does: one object per file."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, document in manifests.items():
        (directory / name).write_text(yaml.safe_dump(document, sort_keys=False))
