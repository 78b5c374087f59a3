"""Snapshots of every registration: the offline preview of what a change deploys.

For each variant below (a committed stack file, plus the keys that make it SSH, private-registry, ...), the program
is evaluated under mocks and everything the engine would receive is rendered as YAML: each resource's type, name,
parent, provider, dependencies, options and inputs, the invokes and the stack outputs. The file is committed under
`tests/snapshots/` and compared here, so a pull request that changes what is deployed changes a snapshot, and its
diff is the review of that change (AWS CDK's testing guidance: fine-grained assertions in the other tests, plus
snapshot tests that catch everything else).

After an intended change, regenerate and read the diff:

    venv/bin/python -m pytest tests/test_snapshots.py --snapshot-update

Secrets: values marked secret are tagged `!secret`, and every form of every secret value (as set, URL-encoded,
in a basic-auth token, derived) is replaced by a marker such as `<secret:postgresPassword>`: the snapshot shows
where a secret goes, never the value.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import (
    PROJECT,
    SSH_HOST_KEY,
    TEST_SECRETS,
    Deployment,
    Secret,
    deploy,
    secret_forms,
    stack_config,
    with_secrets,
)
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.single_file import SingleFileSnapshotExtension, WriteMode
from syrupy.location import PyTestLocation

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
UPDATE = "venv/bin/python -m pytest tests/test_snapshots.py --snapshot-update"

SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA-snapshot\n-----END OPENSSH PRIVATE KEY-----\n"
KUBECONFIG = (
    "apiVersion: v1\nkind: Config\nclusters:\n- name: prod\n  cluster: {server: 'https://k8s.example.com'}\n"
    "contexts:\n- name: prod-cluster\n  context: {cluster: prod, user: deploy}\n"
    "users:\n- name: deploy\n  user: {token: kubeconfig-token-0011}\n"
)


@dataclass(frozen=True)
class Variant:
    """A committed stack file, with plain keys and secrets added to the test secrets."""

    stack: str
    plain: Mapping[str, str] = field(default_factory=dict)
    secrets: Mapping[str, str] = field(default_factory=dict)


# Adding a variant is adding a line; then run the update command above and review the new file. The edge's TLS
# modes: selfSigned in dev, acme in prod, external here.
VARIANTS: dict[str, Variant] = {
    "dev": Variant("dev"),
    "prod": Variant("prod"),
    "prod-ssh": Variant(
        "prod",
        {"dockerHost": "ssh://deploy@docker-1.example.com", "sshHostKey": SSH_HOST_KEY},
        {"sshPrivateKey": SSH_KEY},
    ),
    "prod-private-registry": Variant(
        "prod", {"registryUsername": "ci-bot"}, {"registryToken": "ghp_registry-token-0009"}
    ),
    "prod-edge-external": Variant("prod", {"edge": json.dumps({"tls": "external", "trustedProxies": ["10.0.0.0/8"]})}),
    # The Kubernetes target (issue 11): the example cluster stack, and Traefik with a private registry, a
    # kubeconfig and the seed step.
    "k8s": Variant("k8s"),
    "k8s-traefik-private-registry": Variant(
        "k8s",
        {
            "kubernetes": json.dumps(
                {"context": "prod-cluster", "ingressClass": "traefik", "storageClass": "fast-ssd"}
            ),
            "registryUsername": "ci-bot",
            "seedData": "true",
        },
        {"registryToken": "ghp_registry-token-0010", "kubeconfig": KUBECONFIG},
    ),
}

IGNORED_OPTIONS = {
    # The SDK's version of each provider plugin: it follows whatever requirements.txt's range installs, so it
    # would make the snapshot depend on the day the virtualenv was built.
    "version",
}


def secrets_of(variant: Variant) -> dict[str, str]:
    return {**TEST_SECRETS, **variant.secrets}


def evaluate(variant: Variant) -> Deployment:
    config, secret_keys = with_secrets(stack_config(variant.stack), secrets_of(variant))
    config.update({f"{PROJECT}:{key}": value for key, value in variant.plain.items()})
    return deploy(config, secret_keys, stack=variant.stack)


# --- rendering ---------------------------------------------------------------------------------------------------

BASE64_TOKEN = re.compile(r"[A-Za-z0-9+/]{12,}={0,2}")


class Redactor:
    """Replaces every known form of every secret value in a string by its marker."""

    def __init__(self, secrets: Mapping[str, str]) -> None:
        forms = {form: mark for key, value in secrets.items() for form, mark in secret_forms(key, value).items()}
        # Longest first, so that a form containing another is replaced whole.
        self.forms = sorted(forms.items(), key=lambda item: (-len(item[0]), item[0]))
        self.values = list(secrets.values())

    def __call__(self, text: str) -> str:
        text = BASE64_TOKEN.sub(self._base64, text)
        for form, mark in self.forms:
            text = text.replace(form, mark)
        return text

    def _base64(self, match: re.Match[str]) -> str:
        """A base64 token that decodes to text holding a secret (an `Authorization: Basic` header, ...)."""
        try:
            decoded = base64.b64decode(match.group(0), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return match.group(0)
        if not any(value in decoded for value in self.values):
            return match.group(0)
        redacted = decoded
        for form, mark in self.forms:
            redacted = redacted.replace(form, mark)
        return f"<base64 of {redacted!r}>"


class SecretValue:
    """A value the program marked secret, rendered with the `!secret` tag."""

    def __init__(self, value: Any) -> None:
        self.value = value


def render_value(value: Any, redact: Redactor, names: Mapping[str, str]) -> Any:
    """A registered value, made plain data: secrets tagged and redacted, keys sorted, URNs shown as names."""
    if isinstance(value, Secret):
        return SecretValue(render_value(value.value, redact, names))
    if isinstance(value, dict):
        return {str(k): render_value(value[k], redact, names) for k in sorted(value)}
    if isinstance(value, list | tuple):
        return [render_value(item, redact, names) for item in value]
    if isinstance(value, str):
        return names.get(value, redact(value))
    return value


def render(deployment: Deployment, secrets: Mapping[str, str], title: str) -> str:
    """The snapshot document of one evaluation."""
    redact = Redactor(secrets)
    names = {r.urn: r.name for r in deployment.resources}
    assert len(set(names.values())) == len(names), "two resources share a logical name"

    def name_of(reference: str) -> str | None:
        # A provider reference is "<urn>::<id>"; the stack itself is nobody's name here.
        urn = reference.rsplit("::", 1)[0] if reference not in names else reference
        return names.get(urn)

    resources = []
    for resource in sorted(deployment.resources, key=lambda r: (r.type, r.name)):
        entry: dict[str, Any] = {"type": resource.type, "name": resource.name}
        if (parent := name_of(resource.parent)) is not None:
            entry["parent"] = parent
        if (provider := name_of(resource.provider)) is not None:
            entry["provider"] = provider
        if resource.dependencies:
            entry["dependencies"] = sorted(names[urn] for urn in resource.dependencies)
        options = {k: v for k, v in resource.options.items() if k not in IGNORED_OPTIONS and v not in ({}, [])}
        if options:
            entry["options"] = render_value(options, redact, names)
        entry["inputs"] = render_value(resource.inputs, redact, names)
        resources.append(entry)
    invokes = sorted(
        ({"token": token, "args": render_value(args, redact, names)} for token, args in deployment.calls),
        key=lambda call: json.dumps(call, sort_keys=True, default=str),
    )
    document = {
        "resources": resources,
        "invokes": invokes,
        "outputs": render_value(deployment.outputs, redact, names),
        "secretOutputs": sorted(deployment.secret_outputs),
    }
    header = (
        f"# What the program registers for {title}, evaluated offline under mocks.\n"
        f"# Generated: review its diff as the preview of a change; regenerate with `{UPDATE}`.\n"
    )
    return header + yaml.dump(document, Dumper=_Dumper, sort_keys=False, width=1_000_000, allow_unicode=True)


class _Dumper(yaml.SafeDumper):
    """Block style; multi-line strings as literal blocks; secrets tagged."""


def _represent_str(dumper: yaml.SafeDumper, text: str, tag: str = "tag:yaml.org,2002:str") -> yaml.Node:
    return dumper.represent_scalar(tag, text, style="|" if "\n" in text else None)


def _represent_secret(dumper: yaml.SafeDumper, secret: SecretValue) -> yaml.Node:
    value = secret.value
    if isinstance(value, dict):
        return dumper.represent_mapping("!secret", value)
    if isinstance(value, list):
        return dumper.represent_sequence("!secret", value)
    return _represent_str(dumper, str(value), "!secret")


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(SecretValue, _represent_secret)
# No anchors and aliases: each resource reads on its own.
_Dumper.ignore_aliases = lambda self, data: True  # type: ignore[method-assign]


class YamlSnapshot(SingleFileSnapshotExtension):
    """One YAML file per variant under tests/snapshots/."""

    _write_mode = WriteMode.TEXT
    file_extension = "yaml"

    @classmethod
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        return str(SNAPSHOTS)


@pytest.fixture
def snapshot_yaml(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(YamlSnapshot)


@functools.cache
def rendered(name: str) -> str:
    variant = VARIANTS[name]
    title = f"variant {name!r} (Pulumi.{variant.stack}.yaml"
    extras = [*variant.plain, *variant.secrets]
    title += f" with {', '.join(extras)})" if extras else ")"
    return render(evaluate(variant), secrets_of(variant), title)


# --- the tests ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_registrations(name: str, snapshot_yaml: SnapshotAssertion) -> None:
    """What the variant registers equals its committed snapshot (after an intended change: the update command)."""
    assert rendered(name) == snapshot_yaml, (
        f"the registrations changed: if intended, run `{UPDATE}` and review the diff"
    )


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_the_snapshot_holds_no_form_of_any_secret(name: str) -> None:
    """Neither the rendering nor the committed file holds a secret's value in any form, and the markers show
    that each secret did reach the resources (so the search is not vacuous)."""
    secrets = secrets_of(VARIANTS[name])
    text = rendered(name)
    committed = (SNAPSHOTS / f"test_registrations[{name}].yaml").read_text()
    for key, value in secrets.items():
        for form in secret_forms(key, value):
            assert form not in text, f"a form of {key} in the snapshot of {name}"
            assert form not in committed, f"a form of {key} in the committed snapshot of {name}"
        assert f"<secret:{key}" in text or f"secret:{key}>" in text, f"{key} reaches no resource in {name}"
    # Every base64 token, decoded, holds no secret either (a basic-auth header for any user).
    for token in BASE64_TOKEN.findall(text):
        try:
            decoded = base64.b64decode(token, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            continue
        assert not any(value in decoded for value in secrets.values()), f"a secret in base64 in {name}"


def test_the_renderer_redacts_every_form_and_tags_secrets() -> None:
    """The redaction itself, on values built here: a test of the tool, independent of the program."""
    secrets = {"postgresPassword": "p@ss/word:0001", "elasticPassword": "elastic-0002-abcdef"}
    basic = base64.b64encode(b"kibana_system:elastic-0002-abcdef").decode()
    deployment = Deployment(resources=[], calls=[], outputs={"url": "http://db", "token": Secret(f"Basic {basic}")})
    text = render(deployment, secrets, "a test")
    data = yaml.safe_load(text.replace("!secret", ""))
    assert data["outputs"]["url"] == "http://db"
    assert data["outputs"]["token"] == "Basic <base64 of 'kibana_system:<secret:elasticPassword>'>"
    assert "token: !secret 'Basic" in text
    redact = Redactor(secrets)
    assert redact("postgresql://u:p%40ss%2Fword%3A0001@h") == "postgresql://u:<secret:postgresPassword url-encoded>@h"
    assert redact("PGPASSWORD=p@ss/word:0001") == "PGPASSWORD=<secret:postgresPassword>"


def test_every_snapshot_file_belongs_to_a_variant() -> None:
    """A removed variant's file does not linger as if it were still checked."""
    files = {path.name for path in SNAPSHOTS.glob("*.yaml")}
    assert files == {f"test_registrations[{name}].yaml" for name in VARIANTS}, f"stale or missing: run `{UPDATE}`"
