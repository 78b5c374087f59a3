"""The tests' side of the offline evaluation (`sentinel_infra.ops.evaluate`): stack files, test secrets, helpers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from sentinel_infra.ops.evaluate import (  # noqa: F401 - re-exported for the tests
    Evaluation,
    Registration,
    Secret,
    evaluate,
    registry_digest,
    unwrap,
)
from sentinel_infra.ops.stack_file import StackConfig, plain_text_secrets, stack_file_config
from sentinel_infra.settings import Settings, collect_problems

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "sentineliq"

Deployment = Evaluation

# Values for the secrets a committed stack file never holds.
TEST_SECRETS: dict[str, str] = {
    "postgresPassword": "pg-Secret-0001-xyz",
    "redisPassword": "redis-Secret-0002-xyz",
    "minioRootPassword": "minio-Secret-0003-xyz",
    "minioAppPassword": "minio-app-Secret-0009-xyz",
    "elasticPassword": "elastic-Secret-0004-xyz",
    "kibanaSystemPassword": "kibana-Secret-0005-xyz",
    "logstashPassword": "logstash-Secret-0006-xyz",
    "kibanaEncryptionKey": "kibana-encryption-key-0007-0123456789abcdef",
    "jwtSecret": "jwt-signing-secret-0008-0123456789abcdefgh",
}

SSH_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOpqfhfsW2a+VDTSi5SZdDrN9peZrKaKqYlCis2L08ya"
"""A real ed25519 public key (made by ssh-keygen) standing for an ssh:// Docker host's key."""

LAST_REGISTRATIONS: list[Registration] = []
"""What the latest `deploy` registered, kept even when the program failed."""


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


def secret_forms(key: str, value: str) -> dict[str, str]:
    """Every form a secret's value can take in what the program registers, each with a redacted description.

    As set, URL-encoded (in connection strings), inside an HTTP basic-auth token, as one of Kibana's derived keys,
    the body of a private key, the key of a Sentry DSN. A search for a secret searches all of them.
    """
    found = {quote(value, safe=""): f"<secret:{key} url-encoded>", value: f"<secret:{key}>"}
    found[base64.b64encode(f"elastic:{value}".encode()).decode()] = f"<base64 of 'elastic:<secret:{key}>'>"
    if key == "kibanaEncryptionKey":
        for purpose in ("security", "reporting"):
            digest = hmac.new(value.encode(), purpose.encode(), hashlib.sha256).hexdigest()
            found[digest] = f"<hmac-sha256 of secret:{key} for {purpose!r}>"
    if key == "sshPrivateKey":
        for line in value.splitlines():
            if line and not line.startswith("-----"):
                found[line] = f"<a line of secret:{key}>"
    if key == "sentryDsn":
        found[str(urlsplit(value).username)] = f"<the key in secret:{key}>"
    return found


def stack_config(stack: str) -> StackConfig:
    """A committed stack file's config; a secret in plain text fails the test (an encrypted `secure:` value is
    Pulumi's convention for committed secrets: it counts as set, with a stand-in value)."""
    path = ROOT / f"Pulumi.{stack}.yaml"
    assert not plain_text_secrets(path), f"Pulumi.{stack}.yaml holds secrets in plain text: {plain_text_secrets(path)}"
    return stack_file_config(path)


def with_secrets(
    config: Mapping[str, str], secrets: Mapping[str, str] | None = None
) -> tuple[dict[str, str], set[str]]:
    """A config plus the test secrets (namespaced), and the set of keys stored as secrets."""
    values = dict(config)
    chosen = TEST_SECRETS if secrets is None else secrets
    for key, value in chosen.items():
        values[f"{PROJECT}:{key}"] = value
    committed = config.secret_keys if isinstance(config, StackConfig) else set()
    return values, committed | {f"{PROJECT}:{key}" for key in chosen}


def stack_settings(stack: str, **overrides: str) -> Settings:
    """The validated settings of a committed stack file (plus test secrets and overrides of plain keys)."""
    config, secret_keys = with_secrets(stack_config(stack))
    config.update({f"{PROJECT}:{k}": v for k, v in overrides.items()})
    prefix = f"{PROJECT}:"
    values = {k.removeprefix(prefix): v for k, v in config.items() if k.startswith(prefix)}
    problems, settings = collect_problems(values, {k.removeprefix(prefix) for k in secret_keys})
    assert settings is not None, problems
    return settings


def deploy(
    config: Mapping[str, str],
    secret_keys: set[str],
    stack: str = "dev",
    program: Callable[[], Mapping[str, Any]] | None = None,
    registry_digests: Mapping[str, str] | None = None,
) -> Deployment:
    """Evaluate the program under mocks with this config and return what it registered."""
    global LAST_REGISTRATIONS
    LAST_REGISTRATIONS = []
    return evaluate(
        config, secret_keys, stack, program, registrations=LAST_REGISTRATIONS, registry_digests=registry_digests
    )


def deploy_stack(stack: str, **overrides: str) -> Deployment:
    """Evaluate a committed stack file (plus test secrets and overrides of plain keys)."""
    config, secret_keys = with_secrets(stack_config(stack))
    config.update({f"{PROJECT}:{k}": v for k, v in overrides.items()})
    return deploy(config, secret_keys, stack=stack)


def deploy_new_build(stack: str, image: str, digest: str) -> Deployment:
    """A committed stack file evaluated after a new build was pushed to one of its tags (`image`, with its tag):
    the registry answers `digest` for it, and the configuration is unchanged."""
    return deploy(*with_secrets(stack_config(stack)), stack=stack, registry_digests={image: digest})


def deploy_with(stack: str = "prod", plain: Mapping[str, str] | None = None, **secrets: str) -> Deployment:
    """A committed stack file with some secrets replaced and some plain keys set."""
    config, secret_keys = with_secrets(stack_config(stack), {**TEST_SECRETS, **secrets})
    config.update({f"{PROJECT}:{k}": v for k, v in (plain or {}).items()})
    return deploy(config, secret_keys, stack=stack)


def changed(before: Deployment, after: Deployment) -> set[str]:
    """The logical names of the resources whose registered inputs differ between two evaluations."""
    old = {r.name: r.inputs for r in before.resources}
    new = {r.name: r.inputs for r in after.resources}
    assert old.keys() == new.keys(), "the two evaluations register different resources"
    return {name for name in old if old[name] != new[name]}


SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
ADOPTED_VOLUMES = {
    "postgresData": "sentineliq_postgres-data",
    "redisData": "sentineliq_redis-data",
    "minioData": "sentineliq_minio-data",
    "elasticsearchData": "sentineliq_elasticsearch-data",
}
"""A docker-compose deployment's volume names, as `volumeNames` adopts them."""

STACK_VARIANTS: dict[str, Callable[[], Deployment]] = {
    "dev": lambda: deploy_stack("dev"),
    "prod": lambda: deploy_stack("prod"),
    "dev with backups": lambda: deploy_stack("dev", backup='{"enabled": true}'),
    "prod adopting compose volumes": lambda: deploy_stack("prod", volumeNames=json.dumps(ADOPTED_VOLUMES)),
    "prod on a remote host, private registry": lambda: deploy_with(
        "prod",
        plain={
            "dockerHost": "ssh://deploy@docker-1.example.com",
            "sshHostKey": SSH_HOST_KEY,
            "registryUsername": "ci-bot",
        },
        sshPrivateKey=SSH_KEY,
        registryToken="ghp-token-0123456789",
    ),
}
"""The configurations the guard rails (read-back, schemas) run over: every kind of resource and option the program
registers appears in at least one."""
