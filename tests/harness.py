"""The one mock harness: evaluate the program for a stack's config and record what it registers.

`deploy(config)` runs `build_stack(load_settings())` under Pulumi's mocks with a monitor that records every
`RegisterResource` request as the engine would receive it: type, name, parent, inputs (with secret markers kept),
provider, dependencies and options (protect, retainOnDelete, replaceOnChanges, ...). Tests assert on that record.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import mocks, rpc

from sentinel_infra.settings import load_settings
from sentinel_infra.stack import build_stack

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "sentineliq"

# Values for the secrets a committed stack file never holds.
TEST_SECRETS: dict[str, str] = {
    "postgresPassword": "pg-Secret-0001-xyz",
    "redisPassword": "redis-Secret-0002-xyz",
    "minioRootPassword": "minio-Secret-0003-xyz",
    "elasticPassword": "elastic-Secret-0004-xyz",
    "kibanaSystemPassword": "kibana-Secret-0005-xyz",
    "logstashPassword": "logstash-Secret-0006-xyz",
    "kibanaEncryptionKey": "kibana-encryption-key-0007-0123456789abcdef",
    "jwtSecret": "jwt-signing-secret-0008-0123456789abcdefgh",
}

SECRET_SIG = rpc._special_sig_key
SECRET_VALUE = rpc._special_secret_sig


@dataclass
class Registration:
    """One resource as the engine sees it."""

    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    """Inputs with secrets kept as `Secret(value)`."""
    provider: str
    dependencies: set[str]
    property_dependencies: dict[str, set[str]]
    protect: bool
    retain_on_delete: bool
    delete_before_replace: bool
    replace_on_changes: list[str]
    additional_secret_outputs: list[str]
    replace_with: list[str]

    def plain(self, key: str) -> Any:
        """An input with every secret marker removed."""
        return unwrap(self.inputs.get(key))


@dataclass(frozen=True)
class Secret:
    value: Any


def _keep_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get(SECRET_SIG) == SECRET_VALUE:
            return Secret(_keep_secrets(value["value"]))
        return {k: _keep_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_keep_secrets(v) for v in value]
    return value


def unwrap(value: Any) -> Any:
    if isinstance(value, Secret):
        return unwrap(value.value)
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def plain_strings(value: Any) -> Iterator[str]:
    """Every string in a value that is not under a secret marker."""
    if isinstance(value, Secret):
        return
    if isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from plain_strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from plain_strings(v)
    elif isinstance(value, str):
        yield value


REGISTRY_DIGEST = f"sha256:{'cd' * 32}"
"""What the mocked registry answers for every tag."""

LAST_REGISTRATIONS: list[Registration] = []
"""What the latest `deploy` registered, kept even when the program failed."""


class _Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        outputs = dict(args.inputs)
        if args.typ == "docker:index/remoteImage:RemoteImage":
            outputs["imageId"] = "sha256:" + hashlib.sha256(args.inputs["name"].encode()).hexdigest()
            outputs["repoDigest"] = f"{args.inputs['name'].split(':')[0]}@sha256:{'ab' * 32}"
        if args.typ == "docker:index/container:Container":
            outputs.setdefault("name", args.name)
        return f"{args.name}-id", outputs

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def call(self, args: pulumi.runtime.MockCallArgs) -> dict[str, Any]:
        self.calls.append((args.token, dict(args.args)))
        if args.token == "docker:index/getRegistryImage:getRegistryImage":
            return {"name": args.args["name"], "sha256Digest": REGISTRY_DIGEST}
        return {}


class _RecordingMonitor(mocks.MockMonitor):
    mocks: _Mocks

    def __init__(self) -> None:
        super().__init__(_Mocks())
        self.registrations: list[Registration] = []

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the gRPC method name
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.registrations.append(
                Registration(
                    type=request.type,
                    name=request.name,
                    urn=response.urn,
                    parent=request.parent,
                    custom=request.custom,
                    inputs=_keep_secrets(rpc.deserialize_properties(request.object, keep_internal=True)),
                    provider=request.provider,
                    dependencies=set(request.dependencies),
                    property_dependencies={k: set(v.urns) for k, v in request.propertyDependencies.items()},
                    protect=request.protect,
                    retain_on_delete=request.retainOnDelete,
                    delete_before_replace=request.deleteBeforeReplace,
                    replace_on_changes=list(request.replaceOnChanges),
                    additional_secret_outputs=list(request.additionalSecretOutputs),
                    replace_with=list(request.replace_with),
                )
            )
        return response


@dataclass
class Deployment:
    """What one evaluation of the program registered, and its resolved stack outputs."""

    resources: list[Registration]
    calls: list[tuple[str, dict[str, Any]]]
    """Invokes (data sources) with their arguments."""
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: set[str] = field(default_factory=set)

    def of_type(self, token: str) -> list[Registration]:
        return [r for r in self.resources if r.type == token]

    def named(self, name: str) -> Registration:
        matches = [r for r in self.resources if r.name == name]
        assert len(matches) == 1, f"{len(matches)} resources named {name}"
        return matches[0]

    def by_urn(self, urn: str) -> Registration:
        return next(r for r in self.resources if r.urn == urn)

    def containers(self) -> dict[str, Registration]:
        """Containers by service name (the `io.sentineliq.service` label)."""
        result = {}
        for r in self.of_type("docker:index/container:Container"):
            labels = {item["label"]: item["value"] for item in r.plain("labels")}
            result[labels["io.sentineliq.service"]] = r
        return result

    def depends_on(self, resource: Registration) -> set[str]:
        """The logical names of the resources this one waits for."""
        return {self.by_urn(urn).name for urn in resource.dependencies}


def stack_config(stack: str) -> dict[str, str]:
    """A committed stack file's config, as the engine hands it to the program (strings; objects as JSON)."""
    document = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    config: dict[str, str] = {}
    for key, value in document.get("config", {}).items():
        if isinstance(value, dict) and "secure" in value:
            raise AssertionError(f"{key}: a secret is committed in Pulumi.{stack}.yaml")
        config[key] = _engine_string(value)
    return config


def _engine_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def with_secrets(
    config: Mapping[str, str], secrets: Mapping[str, str] | None = None
) -> tuple[dict[str, str], set[str]]:
    """A config plus the test secrets (namespaced), and the set of keys stored as secrets."""
    values = dict(config)
    chosen = TEST_SECRETS if secrets is None else secrets
    for key, value in chosen.items():
        values[f"{PROJECT}:{key}"] = value
    return values, {f"{PROJECT}:{key}" for key in chosen}


def deploy(
    config: Mapping[str, str],
    secret_keys: set[str],
    stack: str = "dev",
    program: Callable[[], Mapping[str, Any]] | None = None,
) -> Deployment:
    """Evaluate the program under mocks with this config and return what it registered."""
    global LAST_REGISTRATIONS
    monitor = _RecordingMonitor()
    LAST_REGISTRATIONS = monitor.registrations
    pulumi.runtime.settings.ROOT.set(None)
    pulumi.runtime.set_all_config(dict(config), sorted(secret_keys))
    pulumi.runtime.set_mocks(monitor.mocks, project=PROJECT, stack=stack, preview=False, monitor=monitor)
    deployment = Deployment(resources=monitor.registrations, calls=monitor.mocks.calls)

    @pulumi.runtime.test
    def run() -> pulumi.Output[Any]:
        outputs = (program or (lambda: build_stack(load_settings())))()

        def record(resolved: list[Any]) -> None:
            count = len(outputs)
            for name, value, secret in zip(outputs, resolved[:count], resolved[count:], strict=True):
                deployment.outputs[name] = value
                if secret:
                    deployment.secret_outputs.add(name)

        values = [pulumi.Output.from_input(v) for v in outputs.values()]
        secrets = [pulumi.Output.from_input(v.is_secret()) for v in values]
        return pulumi.Output.all(*values, *secrets).apply(record)

    run()
    return deployment


def deploy_stack(stack: str, **overrides: str) -> Deployment:
    """Evaluate a committed stack file (plus test secrets and overrides of plain keys)."""
    config, secret_keys = with_secrets(stack_config(stack))
    config.update({f"{PROJECT}:{k}": v for k, v in overrides.items()})
    return deploy(config, secret_keys, stack=stack)


def changed(before: Deployment, after: Deployment) -> set[str]:
    """The logical names of the resources whose registered inputs differ between two evaluations."""
    old = {r.name: r.inputs for r in before.resources}
    new = {r.name: r.inputs for r in after.resources}
    assert old.keys() == new.keys(), "the two evaluations register different resources"
    return {name for name in old if old[name] != new[name]}


def deploy_with(stack: str = "prod", plain: Mapping[str, str] | None = None, **secrets: str) -> Deployment:
    """A committed stack file with some secrets replaced and some plain keys set."""
    config, secret_keys = with_secrets(stack_config(stack), {**TEST_SECRETS, **secrets})
    config.update({f"{PROJECT}:{k}": v for k, v in (plain or {}).items()})
    return deploy(config, secret_keys, stack=stack)
