"""Committed stack files (`Pulumi.<stack>.yaml`) read as the engine would hand their config to the program, with
stand-ins for the secrets only the deploy knows."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ..settings import NAMESPACE, Settings, is_secret

PLACEHOLDER_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nplaceholder\n-----END OPENSSH PRIVATE KEY-----\n"
PLACEHOLDER_HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
"""A well-formed ed25519 public key (all zeros) for a stack file that names an ssh:// host but not its key."""
PLACEHOLDERS = {
    f"{NAMESPACE}:sshPrivateKey": PLACEHOLDER_KEY,
    f"{NAMESPACE}:sshHostKey": PLACEHOLDER_HOST_KEY,
    f"{NAMESPACE}:sentryDsn": "https://placeholder@sentry.invalid/0",
}
"""Valid stand-ins for the secrets whose rule is a format; any other secret gets `PLACEHOLDER`."""
PLACEHOLDER = "placeholder-secret-0123456789abcdefghij"


def placeholder(key: str) -> str:
    """A value that passes the rules of the secret key `key` (a stand-in for a value the evaluation cannot know)."""
    return PLACEHOLDERS.get(key, PLACEHOLDER)


class StackConfig(dict[str, str]):
    """A stack file's config as the engine hands it to the program (strings; objects as JSON text).

    A `secure:` value is ciphertext (Pulumi's convention for committed secrets): it counts as a set secret, with a
    stand-in value (`placeholder`), since its plaintext is unknown offline. `secret_keys` lists those keys.
    """

    def __init__(self, values: Mapping[str, str], secret_keys: set[str]) -> None:
        super().__init__(values)
        self.secret_keys = secret_keys


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"}


def _document_config(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text()) or {}
    return dict(document.get("config") or {})


def stack_file_config(path: Path) -> StackConfig:
    """A stack file's config: plain values as the engine passes them, and a stand-in for each `secure:` value."""
    config: dict[str, str] = {}
    secret_keys: set[str] = set()
    for key, value in _document_config(path).items():
        if _is_secure(value):
            config[key] = placeholder(key)
            secret_keys.add(key)
        elif isinstance(value, bool):
            config[key] = "true" if value else "false"
        elif isinstance(value, dict | list):
            config[key] = json.dumps(value)
        else:
            config[key] = str(value)
    return StackConfig(config, secret_keys)


def plain_text_secrets(path: Path) -> list[str]:
    """The secret keys a stack file holds in plain text, or as a `secure:` value that is not ciphertext text."""
    secret_fields = {f"{NAMESPACE}:{field.alias}" for field in Settings.model_fields.values() if is_secret(field)}
    problems = []
    for key, value in _document_config(path).items():
        if _is_secure(value):
            if not isinstance(value["secure"], str) or not value["secure"].strip():
                problems.append(key)
        elif key in secret_fields:
            problems.append(key)
    return problems
