"""Secret hygiene across the whole program: every value derived from a secret is a secret output.

For each secret the program receives, every form it takes (as set, URL-encoded, inside an HTTP basic-auth
token, as a derived key) is searched in every registered input of every resource, every command line, every
label and every stack output: it may appear only under a secret marker.
"""

from __future__ import annotations

import pytest
from harness import (
    PROJECT,
    SSH_HOST_KEY,
    TEST_SECRETS,
    Deployment,
    deploy,
    plain_strings,
    secret_forms,
    stack_config,
    with_secrets,
)

SSH_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA-secret-key\n-----END OPENSSH PRIVATE KEY-----\n"
)
EXTRA_SECRETS = {
    "sentryDsn": "https://sentrykey123@o1.ingest.sentry.io/42",
    "registryToken": "ghp_registry-token-value",
    "sshPrivateKey": SSH_KEY,
}
# Characters that change under URL-encoding, so the encoded form differs from the raw one.
SPECIAL = {key: f"{value}/@:?#%" for key, value in TEST_SECRETS.items()}


def everything(remote: bool, stack: str) -> tuple[Deployment, dict[str, str]]:
    secrets = {**SPECIAL, **EXTRA_SECRETS}
    if not remote:
        secrets.pop("sshPrivateKey")
    config, secret_keys = with_secrets(stack_config(stack), secrets)
    config[f"{PROJECT}:registryUsername"] = "ci-bot"
    if remote:
        config[f"{PROJECT}:dockerHost"] = "ssh://deploy@docker-1.example.com"
        config[f"{PROJECT}:sshHostKey"] = SSH_HOST_KEY
    return deploy(config, secret_keys, stack=stack), secrets


@pytest.mark.parametrize(("remote", "stack"), [(False, "prod"), (True, "prod"), (False, "dev"), (False, "k8s")])
def test_no_form_of_any_secret_outside_a_secret_marker(remote: bool, stack: str) -> None:
    deployment, secrets = everything(remote, stack)
    needles = {form: key for key, value in secrets.items() for form in secret_forms(key, value)}
    for resource in deployment.resources:
        for text in plain_strings(resource.inputs):
            for needle, key in needles.items():
                assert needle not in text, f"{resource.name}: a form of {key} outside a secret"
    for text in plain_strings(deployment.outputs):
        for needle, key in needles.items():
            assert needle not in text, f"a stack output shows a form of {key}"
    assert deployment.secret_outputs == set(), "no output derives from a secret"


def test_the_secrets_do_reach_the_resources_that_need_them() -> None:
    """The search above would pass trivially if the secrets never arrived: they do, under markers."""
    deployment, secrets = everything(remote=True, stack="prod")
    hidden = " ".join(str(resource.inputs) for resource in deployment.resources)
    for key, value in secrets.items():
        assert any(form in hidden for form in secret_forms(key, value)), key


@pytest.mark.parametrize("stack", ["prod", "k8s"])
def test_no_plain_value_depends_on_a_secret(stack: str) -> None:
    """Not only no form of a secret: nothing derived from one either (a digest in a name confirms a guessed password
    offline). With every secret's value changed, every plain string registered, names included, is the same."""

    def plain(secrets: dict[str, str]) -> dict[str, list[str]]:
        config, secret_keys = with_secrets(stack_config(stack), secrets)
        deployment = deploy(config, secret_keys, stack=stack)
        return {resource.name: sorted(plain_strings(resource.inputs)) for resource in deployment.resources}

    changed = {key: f"{value}-changed" for key, value in TEST_SECRETS.items()}
    before, after = plain(dict(TEST_SECRETS)), plain(changed)
    assert before.keys() == after.keys()
    assert [name for name in before if before[name] != after[name]] == []
