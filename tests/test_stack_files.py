"""Committed stack files: encrypted `secure:` values are allowed (Pulumi's convention), plain-text secrets are not.

`pulumi config set --secret` writes a secret into `Pulumi.<stack>.yaml` as `key: {secure: <ciphertext>}`; the
engine decrypts it and marks the key secret. Offline, the plaintext is unknown: the value counts as a set secret
with a stand-in that passes the key's rules, so a stack file that commits its secrets evaluates like one whose
secrets live elsewhere.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from harness import PROJECT, ROOT, SSH_HOST_KEY

from sentinel_infra.ops.cli import required_secrets
from sentinel_infra.ops.evaluate import evaluate
from sentinel_infra.ops.graph import graph
from sentinel_infra.ops.stack_file import PLACEHOLDER_KEY, plain_text_secrets, stack_file_config

# The shape `pulumi config set --secret` writes with the passphrase provider.
CIPHERTEXT = "v1:c2FsdHNhbHQ=:Zm9vYmFyYmF6cXV4cXV1eA=="


def write_stack_file(tmp_path: Path, config: dict[str, object]) -> Path:
    path = tmp_path / "Pulumi.ci.yaml"
    path.write_text(yaml.safe_dump({"encryptionsalt": CIPHERTEXT, "config": config}))
    return path


def committed(**extra: object) -> dict[str, object]:
    plain = yaml.safe_load((ROOT / "Pulumi.prod.yaml").read_text())["config"]
    secure = {f"{PROJECT}:{key}": {"secure": CIPHERTEXT} for key in required_secrets().split()}
    return {**plain, **secure, **extra}


@pytest.mark.parametrize("path", sorted(ROOT.glob("Pulumi.*.yaml")), ids=lambda p: p.name)
def test_no_committed_stack_file_holds_a_plain_text_secret(path: Path) -> None:
    assert plain_text_secrets(path) == []


def test_secure_values_count_as_set_secrets(tmp_path: Path) -> None:
    path = write_stack_file(tmp_path, committed())
    config = stack_file_config(path)
    expected = {f"{PROJECT}:{key}" for key in required_secrets().split()}
    assert config.secret_keys == expected
    assert CIPHERTEXT not in config.values(), "the ciphertext is never handed to the program as the secret"
    # The program accepts them as set secrets (no "is required" or "stored in plain text" problem) and deploys.
    evaluation = evaluate(config, config.secret_keys, "ci")
    assert evaluation.containers().keys() >= {"postgres", "server"}


def test_optional_secrets_get_stand_ins_that_pass_their_rules(tmp_path: Path) -> None:
    path = write_stack_file(
        tmp_path,
        committed(
            **{
                f"{PROJECT}:dockerHost": "ssh://deploy@docker-1.example.com",
                f"{PROJECT}:sshHostKey": SSH_HOST_KEY,
                f"{PROJECT}:sshPrivateKey": {"secure": CIPHERTEXT},
                f"{PROJECT}:sentryDsn": {"secure": CIPHERTEXT},
            }
        ),
    )
    config = stack_file_config(path)
    assert config[f"{PROJECT}:sshPrivateKey"] == PLACEHOLDER_KEY
    evaluation = evaluate(config, config.secret_keys, "ci")
    assert evaluation.of_type("command:remote:Command"), "the ssh:// host and its key were accepted"


def test_the_graph_command_draws_a_stack_file_with_secure_values(tmp_path: Path) -> None:
    write_stack_file(tmp_path, committed())
    assert graph(tmp_path, "ci").startswith("Stack `ci`")


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        ("pg-Secret-0001-xyz", True),  # a password typed into the file
        ({"secure": ""}, True),  # an empty ciphertext
        ({"secure": 42}, True),
        ({"secure": CIPHERTEXT}, False),
    ],
)
def test_plain_text_secrets_are_refused(tmp_path: Path, value: object, refused: bool) -> None:
    path = write_stack_file(tmp_path, committed(**{f"{PROJECT}:postgresPassword": value}))
    assert (plain_text_secrets(path) == [f"{PROJECT}:postgresPassword"]) is refused


def test_a_plain_key_may_be_set_either_way(tmp_path: Path) -> None:
    # A plain key is not a secret; encrypting it anyway is harmless and is not reported.
    path = write_stack_file(tmp_path, committed(**{f"{PROJECT}:appUrl": {"secure": CIPHERTEXT}}))
    assert plain_text_secrets(path) == []
