"""Hostile configuration: whatever the stack config holds, the program ends in one clean RunError or runs.

Random, malformed, wrongly typed, oversized and unicode values for every key (and unknown keys) must produce
either valid settings or exactly one `pulumi.RunError` that names the keys, never another exception (a
traceback), never a secret's value, and never a registered resource.
"""

from __future__ import annotations

import json
import re
from typing import Any

import harness
import pulumi
from harness import PROJECT, deploy, stack_config, with_secrets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentinel_infra.settings import Settings, is_secret, load_settings

KEYS = [str(f.alias) for f in Settings.model_fields.values()]
SECRET_KEYS = {str(f.alias) for f in Settings.model_fields.values() if is_secret(f)}
MARK = "Zq7-secret-mark"
"""Every generated secret value starts with this, so a leak of any part of it is easy to spot."""

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
raw_values = st.one_of(
    st.text(max_size=64),
    st.text(min_size=200, max_size=3000),
    st.integers().map(str),
    st.floats().map(str),
    st.sampled_from(["true", "false", "", " ", "null", "{}", "[]", "{", "0", "-1", "65536", "\u202e", "\x00x"]),
    json_values.map(json.dumps),
    st.just("[" * 5000 + "]" * 5000),
    st.just("9" * 5000),
)


@st.composite
def hostile_configs(draw: st.DrawFn) -> tuple[dict[str, str], set[str]]:
    base, secret_keys = with_secrets(stack_config("prod"))
    config = dict(base) if draw(st.booleans()) else {}
    chosen = draw(st.lists(st.sampled_from(KEYS), max_size=6, unique=True))
    for key in chosen:
        value = draw(raw_values)
        config[f"{PROJECT}:{key}"] = MARK + value if key in SECRET_KEYS else value
    for key in draw(st.lists(st.text(min_size=1, max_size=30), max_size=2)):
        config[f"{PROJECT}:{key}"] = draw(raw_values)
    # Some secrets stored as plain text, some plain keys stored as secret.
    flipped = set(draw(st.lists(st.sampled_from(sorted(config)), max_size=3))) if config else set()
    return config, secret_keys ^ flipped


def problem_keys(message: str) -> list[str]:
    found = re.findall(rf'^  - {PROJECT}:("(?:[^"\\]|\\.)*"|[^\s"]+?): ', message, flags=re.M)
    return [json.loads(key) if key.startswith('"') else key for key in found]


def check_outcome(config: dict[str, str], secret_keys: set[str]) -> str | None:
    """The RunError's message, or None when the configuration was valid."""
    pulumi.runtime.set_all_config(config, sorted(secret_keys))
    try:
        load_settings()
    except pulumi.RunError as error:
        return str(error)
    return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_configs())
def test_any_config_ends_in_settings_or_one_clean_error(case: tuple[dict[str, str], set[str]]) -> None:
    config, secret_keys = case
    message = check_outcome(config, secret_keys)
    if message is None:
        return
    assert MARK not in message, "a secret's value reached the error message"
    keys = problem_keys(message)
    assert keys, message
    assert f"has {len(keys)} problem" in message
    for key in keys:
        assert "fix: pulumi config" in message
        top = key if f"{PROJECT}:{key}" in config else key.split(".", 1)[0]
        assert f"{PROJECT}:{top}" in config or top in KEYS, key


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_configs())
def test_a_bad_config_registers_nothing(case: tuple[dict[str, str], set[str]]) -> None:
    config, secret_keys = case
    if check_outcome(config, secret_keys) is None:
        return
    try:
        deploy(config, secret_keys, stack="prod")
    except pulumi.RunError:
        pass
    else:
        raise AssertionError("an invalid config deployed")
    assert harness.LAST_REGISTRATIONS == []


def test_the_generator_reaches_valid_and_invalid_configs() -> None:
    """Guard against a generator that only ever produces one outcome."""
    base, secret_keys = with_secrets(stack_config("prod"))
    assert check_outcome(base, secret_keys) is None
    broken: dict[str, Any] = {**base, f"{PROJECT}:resources": "[" * 5000 + "]" * 5000}
    message = check_outcome(broken, secret_keys)
    assert message is not None
    assert problem_keys(message) == ["resources"]
