"""Evaluate the program offline, under Pulumi's mocks: what it would register, as the engine would see it.

A recording monitor keeps every `RegisterResource` request: type, name, parent, inputs (with secret markers kept
as `Secret`), provider, dependencies and options. `python -m sentinel_infra graph` draws the architecture from
it without an engine or Docker, and the tests assert on it. This module is the one home of Pulumi's private
runtime APIs (`pulumi.runtime.mocks`, `rpc`, `settings.ROOT`) in the program.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from google.protobuf.json_format import MessageToDict
from pulumi.runtime import mocks, rpc

from ..settings import NAMESPACE, load_settings
from ..stack import build_stack

CONTAINER = "docker:index/container:Container"


def registry_digest(reference: str) -> str:
    """What the mocked registry answers for a tagged image (each tag its own build), unless an evaluation is
    given other `registry_digests`."""
    return "sha256:" + hashlib.sha256(f"registry {reference}".encode()).hexdigest()


LOCAL_DIGEST = f"sha256:{'ab' * 32}"
"""The repo digest the mocked engine records for an image pulled by tag."""


@dataclass(frozen=True)
class Secret:
    """An input value the program marked secret."""

    value: Any


def unwrap(value: Any) -> Any:
    """A value with every secret marker removed."""
    if isinstance(value, Secret):
        return unwrap(value.value)
    if isinstance(value, dict):
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def _keep_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return Secret(_keep_secrets(value["value"]))
        return {k: _keep_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_keep_secrets(v) for v in value]
    return value


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
    options: dict[str, Any] = field(default_factory=dict)
    """Every other field of the request that is set (aliases, ignoreChanges, customTimeouts, version, ...), by
    its protobuf name: what the resource options became on the wire."""
    delete_before_replace_defined: bool = False
    """Whether the program set `delete_before_replace` at all: unset leaves the provider's choice (for
    pulumi-docker's containers, delete first); an explicit False overrides it."""

    def plain(self, key: str) -> Any:
        """An input with every secret marker removed."""
        return unwrap(self.inputs.get(key))

    @property
    def service(self) -> str | None:
        """The `io.sentineliq.service` label of a container."""
        labels = {item["label"]: item["value"] for item in self.plain("labels") or []}
        return labels.get("io.sentineliq.service")


def _repo_digest(name: str) -> str:
    """What the engine records as the image's repo digest: the name itself when pulled by digest."""
    if "@" in name:
        return name
    head, slash, last = name.rpartition("/")
    return f"{head}{slash}{last.split(':', 1)[0]}@{LOCAL_DIGEST}"


def auto_name(logical: str) -> str:
    """What a provider names an object registered without a name: the logical name and a suffix (random for real,
    derived from the logical name here, so that an evaluation is repeatable)."""
    return f"{logical}-{hashlib.sha256(logical.encode()).hexdigest()[:7]}"


class _Mocks(pulumi.runtime.Mocks):
    def __init__(self, registry_digests: Mapping[str, str]) -> None:
        super().__init__()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.registry_digests = registry_digests

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        outputs = dict(args.inputs)
        if args.typ == "docker:index/remoteImage:RemoteImage":
            # An image id is a function of the build: of the name, which holds the digest when pulled by digest.
            outputs["imageId"] = "sha256:" + hashlib.sha256(args.inputs["name"].encode()).hexdigest()
            outputs["repoDigest"] = _repo_digest(args.inputs["name"])
        if args.typ == "docker:index/container:Container" and not args.inputs.get("name"):
            # pulumi-docker auto-names a container registered without a name (provider/resources.go:
            # SetAutonaming(255, "-")): its logical name and a random suffix, here a stable one.
            outputs["name"] = auto_name(args.name)
        if args.typ.startswith("kubernetes:") and not (args.inputs.get("metadata") or {}).get("name"):
            # pulumi-kubernetes auto-names an object registered without metadata.name the same way (its logical
            # name, '-', a random suffix; and replaces it, under a new name, when its data change).
            outputs["metadata"] = {**(args.inputs.get("metadata") or {}), "name": auto_name(args.name)}
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        invoked = args.token
        self.calls.append((invoked, dict(args.args)))
        if invoked == "docker:index/getRegistryImage:getRegistryImage":
            name = args.args["name"]
            digest = self.registry_digests.get(name) or registry_digest(name)
            return {"name": name, "sha256Digest": digest}, []
        # An empty list, not None: the mock monitor iterates the failures.
        return {}, []


_NOT_OPTIONS = {
    # Kept as fields of their own, or protocol details rather than options.
    *("type", "name", "parent", "custom", "object", "provider", "dependencies", "propertyDependencies"),
    *("acceptSecrets", "acceptResources", "supportsPartialValues", "supportsResultReporting", "remote"),
    *("accepts_byte_string", "sourcePosition", "stackTrace", "parentStackTraceHandle", "packageRef"),
    "deleteBeforeReplaceDefined",
}


def _options(request: Any) -> dict[str, Any]:
    """The options a request carries that differ from their defaults (protobuf leaves defaults out)."""
    fields = MessageToDict(request, preserving_proto_field_name=False)
    options = {key: value for key, value in fields.items() if key not in _NOT_OPTIONS}
    if fields.get("deleteBeforeReplaceDefined"):
        # An explicit False is an option too: it overrides the provider's own delete-before-replace.
        options["deleteBeforeReplace"] = bool(request.deleteBeforeReplace)
    return options


class _RecordingMonitor(mocks.MockMonitor):
    def __init__(self, mocked: _Mocks, registrations: list[Registration]) -> None:
        super().__init__(mocked)
        self.registrations = registrations

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the gRPC method's name
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
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
                    options=_options(request),
                    delete_before_replace_defined=request.deleteBeforeReplaceDefined,
                )
            )
        return response


@dataclass
class Evaluation:
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
        if len(matches) != 1:
            raise KeyError(f"{len(matches)} resources named {name}")
        return matches[0]

    def by_urn(self, urn: str) -> Registration:
        return next(r for r in self.resources if r.urn == urn)

    def containers(self) -> dict[str, Registration]:
        """Containers by the name of their component: the service's (`postgres`), or a replica's (`server-2`)."""
        return {r.name.removesuffix("-container"): r for r in self.of_type(CONTAINER)}

    def depends_on(self, resource: Registration) -> set[str]:
        """The logical names of the resources this one waits for."""
        return {self.by_urn(urn).name for urn in resource.dependencies}


def evaluate(
    config: Mapping[str, str],
    secret_keys: set[str],
    stack: str,
    program: Callable[[], Mapping[str, Any]] | None = None,
    *,
    registrations: list[Registration] | None = None,
    registry_digests: Mapping[str, str] | None = None,
) -> Evaluation:
    """Run the program (by default `build_stack(load_settings())`) under mocks with this stack config.

    `registrations` receives what is registered as it happens, so a caller keeps it when the program fails.
    `registry_digests` is what the registry answers for a tagged image (`registry_digest` of any other): two
    evaluations with different digests for one tag are a new build pushed to that tag.
    """
    mocked = _Mocks(registry_digests or {})
    monitor = _RecordingMonitor(mocked, [] if registrations is None else registrations)
    pulumi.runtime.settings.ROOT.set(None)
    pulumi.runtime.set_all_config(dict(config), sorted(secret_keys))
    pulumi.runtime.set_mocks(mocked, project=NAMESPACE, stack=stack, preview=False, monitor=monitor)
    evaluation = Evaluation(resources=monitor.registrations, calls=mocked.calls)

    @pulumi.runtime.test  # type: ignore[untyped-decorator]
    def run() -> pulumi.Output[None]:
        outputs = (program or (lambda: build_stack(load_settings())))()

        def record(resolved: list[Any]) -> None:
            count = len(outputs)
            for name, value, secret in zip(outputs, resolved[:count], resolved[count:], strict=True):
                evaluation.outputs[name] = value
                if secret:
                    evaluation.secret_outputs.add(name)

        values: list[pulumi.Output[Any]] = [pulumi.Output.from_input(v) for v in outputs.values()]
        secrets: list[pulumi.Output[Any]] = [pulumi.Output.from_input(v.is_secret()) for v in values]
        return pulumi.Output.all(*values, *secrets).apply(record)

    run()
    return evaluation
