"""`python -m sentinel_infra render --stack NAME --out DIR`: the Kubernetes objects a stack would apply, as manifests.

The program is evaluated offline under mocks (evaluate.py) with the stack file's config and placeholder secrets;
every `kubernetes:` resource it registers becomes one YAML document, `DIR/<kind>-<name>.yaml` (kind in lowercase),
exactly what the provider would send: apiVersion, kind, metadata (with its namespace), spec. Pulumi's own objects
(the provider, the components) are not manifests. Secrets are redacted: a Secret's `stringData` keeps its keys, each
value `<redacted>`, and any other value the program marked secret becomes `<redacted>` too, so the files can be
validated, scanned and committed without holding a secret. The layout is agreed with the manifest checks
(tests/kubernetes/, issue 11).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..settings import NAMESPACE
from .evaluate import Evaluation, Registration, Secret, auto_name, evaluate
from .graph import placeholder_secrets
from .stack_file import stack_file_config

REDACTED = "<redacted>"
KUBERNETES = "kubernetes:"


class NotKubernetesError(Exception):
    """The stack does not run on Kubernetes: it has no manifests."""


def redact(value: Any) -> Any:
    """A value with every secret replaced by `<redacted>` (the keys of a secret mapping are kept)."""
    if isinstance(value, Secret):
        inner = value.value
        if isinstance(inner, dict):
            return {key: REDACTED for key in inner}
        return REDACTED
    if isinstance(value, dict):
        return {key: redact(item) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item) for item in value]
    return value


def normalise(value: Any) -> Any:
    """Keys sorted; a whole number as an integer. The engine carries every number as a double (protobuf's Struct):
    `runAsUser: 70` arrives as 70.0, and the API server, like the OpenAPI schemas, wants an integer."""
    if isinstance(value, dict):
        return {key: normalise(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [normalise(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def manifest(resource: Registration) -> dict[str, Any]:
    """A registered Kubernetes object as its manifest: apiVersion, kind, metadata first."""
    body = normalise(redact(resource.inputs))
    if "name" not in body.get("metadata", {}):
        # Auto-named (a Secret): the name the evaluation gave it, which the objects that use it refer to.
        body["metadata"]["name"] = auto_name(resource.name)
    if body.get("kind") == "Secret":
        # Every value of a Secret, whether or not the program marked the whole map secret.
        for field in ("stringData", "data"):
            if isinstance(body.get(field), dict):
                body[field] = dict.fromkeys(body[field], REDACTED)
    head = {key: body.pop(key) for key in ("apiVersion", "kind", "metadata") if key in body}
    return {**head, **body}


def manifests(evaluation: Evaluation) -> dict[str, dict[str, Any]]:
    """`<kind>-<name>.yaml` -> manifest, for every Kubernetes object of an evaluation."""
    found: dict[str, dict[str, Any]] = {}
    for resource in evaluation.resources:
        if not (resource.custom and resource.type.startswith(KUBERNETES)):
            continue
        document = manifest(resource)
        file = f"{document['kind'].lower()}-{document['metadata']['name']}.yaml"
        if file in found:
            raise ValueError(f"two objects would be written to {file}")
        found[file] = document
    return found


def evaluate_stack(root: Path, stack: str) -> Evaluation:
    """The stack file `Pulumi.<stack>.yaml` evaluated offline, with placeholders for the secrets it does not hold."""
    path = root / f"Pulumi.{stack}.yaml"
    config = stack_file_config(path)
    if config.get(f"{NAMESPACE}:platform", "docker") != "kubernetes":
        raise NotKubernetesError(
            f"stack {stack} runs on Docker ({path.name} does not set {NAMESPACE}:platform kubernetes): "
            "it has no Kubernetes manifests"
        )
    secrets = placeholder_secrets(config)
    return evaluate({**config, **secrets}, config.secret_keys | set(secrets), stack)


def write_manifests(root: Path, stack: str, out: Path) -> list[Path]:
    """Write the stack's manifests into `out` (created if needed; stale `*.yaml` there are removed first)."""
    documents = manifests(evaluate_stack(root, stack))
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("*.yaml"):
        stale.unlink()
    written = []
    for file, document in sorted(documents.items()):
        path = out / file
        path.write_text(yaml.safe_dump(document, sort_keys=False, width=120, allow_unicode=True))
        written.append(path)
    return written
