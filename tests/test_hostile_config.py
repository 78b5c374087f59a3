"""Hostile configuration: whatever the stack config holds, the program ends in one clean RunError or runs.

Random, malformed, wrongly typed, oversized and unicode values for every key (and unknown keys) must produce
either valid settings or exactly one `pulumi.RunError` that names the keys, never another exception (a
traceback), never a secret's value, and never a registered resource.
"""

from __future__ import annotations

import json
import posixpath
import re
import subprocess
from typing import Any
from urllib.parse import urlsplit

import harness
import pulumi
from harness import PROJECT, deploy, stack_config, with_secrets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentinel_infra.settings import (
    SYSTEM_DIRECTORIES,
    SYSTEM_PARENTS,
    HostPorts,
    Problem,
    Settings,
    collect_problems,
    is_secret,
    load_settings,
)

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
    # Every problem has a fix: a pulumi config command, or for a key no command line can carry (a NUL), the edit.
    fixes = re.findall(r"^      fix: (.*)$", message, flags=re.M)
    assert len(fixes) == len(keys)
    assert all(f.startswith(("pulumi config ", "delete the key from the stack's file")) for f in fixes), fixes
    for key in keys:
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


# --- the classes of hostile values: each property holds for every value hypothesis finds ---------------------------

VALID_PLAIN = {
    "serverTag": "sha-a1b2c3d",
    "clientTag": "1.2.0",
    "imageRegistry": "ghcr.io/killsearch",
    "dockerHost": "unix:///var/run/docker.sock",
    "publicBindAddress": "127.0.0.1",
    "minioRootUser": "sentineliq",
    "appUrl": "https://app.example.com",
    "apiUrl": "https://api.example.com",
    "s3Bucket": "sentineliq",
}
CONTROL = st.sampled_from(["\n", "\r", "\t", "\x00", "\x1b", "\x7f", "\x85", "\u2028"])


def outcome(**changes: str) -> tuple[list[Problem], Settings | None]:
    base, secret_keys = with_secrets(stack_config("prod"))
    values = {k.removeprefix(f"{PROJECT}:"): v for k, v in base.items()}
    values.update(changes)
    secrets = {k.removeprefix(f"{PROJECT}:") for k in secret_keys} | (set(changes) & SECRET_KEYS)
    return collect_problems(values, secrets)


def test_the_valid_plain_values_are_valid() -> None:
    assert outcome(**VALID_PLAIN) == ([], outcome(**VALID_PLAIN)[1])
    assert outcome(**VALID_PLAIN)[1] is not None


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(sorted(VALID_PLAIN)), st.data())
def test_a_control_character_in_any_plain_value_is_refused(key: str, data: st.DataObject) -> None:
    value = VALID_PLAIN[key]
    at = data.draw(st.integers(0, len(value)))
    problems, settings_ = outcome(**{key: value[:at] + data.draw(CONTROL) + value[at:]})
    assert settings_ is None
    assert [p.key for p in problems] == [key]


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(sorted(SECRET_KEYS - {"sshPrivateKey", "sentryDsn", "kubeconfig"})), CONTROL, st.integers(0, 40))
def test_a_control_character_in_any_secret_is_refused(key: str, control: str, at: int) -> None:
    value = "A-valid-looking-secret-value-0123456789abcdef"
    problems, _ = outcome(**{key: value[:at] + control + value[at:]})
    assert [(p.key, p.rule) for p in problems if p.key == key] == [
        (key, "must not contain control characters (newlines, tabs, ...)")
    ]


SEGMENTS = st.sampled_from(["", ".", "..", "etc", "var", "lib", "lib64", "srv", "backups", "docker", "run", "usr"])


def docker_resolved(path: str) -> str:
    """How the engine resolves a bind source, independently of the program: posix normalisation, '//' collapsed."""
    return "/" + posixpath.normpath(path).lstrip("/") if path.startswith("/") else path


@settings(max_examples=300, deadline=None)
@given(st.lists(SEGMENTS, min_size=1, max_size=5), st.booleans())
def test_an_accepted_backup_path_never_resolves_into_the_system(segments: list[str], trailing: bool) -> None:
    raw = "/" + "/".join(segments) + ("/" if trailing else "")
    _, settings_ = outcome(backup=json.dumps({"path": raw}))
    if settings_ is None:
        return
    resolved = docker_resolved(raw)
    assert settings_.backup.path == resolved
    assert resolved not in SYSTEM_PARENTS
    assert not any(resolved == d or resolved.startswith(d + "/") for d in SYSTEM_DIRECTORIES), raw


def test_the_path_generator_reaches_accepted_paths() -> None:
    assert outcome(backup=json.dumps({"path": "/srv/./backups//"}))[1] is not None


PORT_KEYS = [str(f.alias) for f in HostPorts.model_fields.values()]


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(PORT_KEYS), st.sampled_from([3000, 3001, 5601, 9001, 8080]), max_size=4))
def test_accepted_host_ports_are_all_distinct(ports: dict[str, int]) -> None:
    problems, settings_ = outcome(hostPorts=json.dumps(ports))
    if settings_ is None:
        assert problems
        assert all(p.key.startswith("hostPorts.") and p.key.removeprefix("hostPorts.") in ports for p in problems)
        return
    used = [getattr(settings_.host_ports, name) for name in HostPorts.model_fields]
    assert len(set(used)) == len(used)


@settings(max_examples=200, deadline=None)
@given(st.ip_addresses(), st.one_of(st.none(), st.sampled_from(["eth0", "1", "lo"])))
def test_an_accepted_bind_address_is_one_docker_binds_as_written(address: Any, zone: str | None) -> None:
    text = f"{address}%{zone}" if zone and address.version == 6 else str(address)
    _, settings_ = outcome(publicBindAddress=text)
    if settings_ is not None:
        assert "%" not in settings_.public_bind_address
        assert not (address.is_link_local or address.is_multicast)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["http", "https", "ftp"]),
    st.one_of(st.none(), st.sampled_from(["admin", "admin:Zq7pw", ":Zq7pw"])),
    st.text(alphabet="ab.-\n\x00 %:", min_size=1, max_size=12),
)
def test_an_accepted_public_url_carries_no_credentials_or_controls(scheme: str, user: str | None, host: str) -> None:
    url = f"{scheme}://{user + '@' if user else ''}{host}"
    problems, settings_ = outcome(appUrl=url)
    assert all("Zq7pw" not in p.render() for p in problems)
    if settings_ is not None:
        parts = urlsplit(settings_.app_url)
        assert parts.scheme in ("http", "https")
        assert parts.username is None
        assert not any(ch in settings_.app_url for ch in "\n\x00 ")


NUMERIC = [("backup", "retentionDays"), ("hostPorts", "client"), ("resources", "cpus"), ("resources", "memoryMb")]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(NUMERIC), st.booleans())
def test_a_boolean_is_never_a_number(where: tuple[str, str], flag: bool) -> None:
    key, field = where
    value = {"redis": {field: flag}} if key == "resources" else {field: flag}
    problems, settings_ = outcome(**{key: json.dumps(value)})
    assert settings_ is None
    assert len(problems) == 1


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.integers(-2, 2), st.sampled_from(["1", "0", "yes", "no", "on", "off", "True", "t"])))
def test_a_boolean_key_takes_only_true_or_false(value: int | str) -> None:
    assert outcome(protectData=str(value))[1] is None
    assert outcome(backup=json.dumps({"enabled": value}))[1] is None


# The fix hints are pasted into a shell: running one must pass pulumi exactly the key it names, and nothing else.
STAND_IN_PULUMI = """#!/usr/bin/env python3
import json, os, sys
with open(os.environ["ARGV_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
"""


def run_hint(hint: str, workdir: Any) -> list[list[str]]:
    bin_dir = workdir / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "pulumi").write_text(STAND_IN_PULUMI)
    (bin_dir / "pulumi").chmod(0o755)
    log = workdir / "argv.log"
    log.write_text("")
    # bash: the shell operators paste into (ANSI-C quoting `$'...'` is bash's, zsh's and POSIX.1-2024's).
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "ARGV_LOG": str(log)}
    subprocess.run(["bash", "-c", hint], cwd=workdir, env=env, check=False, timeout=20)
    return [json.loads(line) for line in log.read_text().splitlines()]


HOSTILE_KEYS = st.one_of(
    st.text(min_size=1, max_size=25),
    st.sampled_from(
        [
            "x'; touch pwned; echo '",
            "$(touch pwned)",
            "nul\x00; touch pwned",
            "`touch pwned`",
            "a\nb",
            "a'\"b",
            "*",
            "-rf",
        ]
    ),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(HOSTILE_KEYS, st.sampled_from(["", "resources.redis.", "backup.", "hostPorts.", "volumeNames."]))
def test_a_fix_hint_runs_as_exactly_the_command_it_names(tmp_path_factory: Any, name: str, where: str) -> None:
    workdir = tmp_path_factory.mktemp("hint")
    if where:
        top, *inner = where.rstrip(".").split(".")
        nested: dict[str, Any] = {name: 1}
        for part in reversed(inner):
            nested = {part: nested}
        problems, _ = outcome(**{top: json.dumps(nested)})
    else:
        problems, _ = outcome(**{name: "x"})
    hints = [p for p in problems if p.key == f"{where}{name}"]
    if not hints:  # a name that is a known key or field is no unknown key
        return
    [problem] = hints
    assert "\n" not in problem.fix
    calls = run_hint(problem.fix, workdir)
    flag = ["--path"] if where else []
    if "\x00" in name:  # no command line can carry a NUL: the hint says to edit the stack file instead
        assert calls == []
        assert problem.fix.startswith("delete the key from the stack's file")
    else:
        assert calls == [["config", "rm", *flag, f"{PROJECT}:{where}{name}"]]
    assert sorted(p.name for p in workdir.iterdir()) == ["argv.log", "bin"]


VOLUME_KEYS = ["postgresData", "redisData", "minioData", "elasticsearchData"]
VOLUME_NAMES = st.sampled_from(
    ["shared", "sentineliq_postgres-data", "sentineliq-prod-postgres-data", "sentineliq-dev-redis-data", "old-minio"]
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(VOLUME_KEYS), VOLUME_NAMES, min_size=1, max_size=4))
def test_an_accepted_volume_name_belongs_to_no_stack_and_one_service(names: dict[str, str]) -> None:
    _, settings_ = outcome(volumeNames=json.dumps(names))
    if settings_ is None:
        return
    adopted = [
        settings_.volume_names.of(key) for key in ("postgres-data", "redis-data", "minio-data", "elasticsearch-data")
    ]
    chosen = [name for name in adopted if name is not None]
    assert len(set(chosen)) == len(chosen)
    assert not any(re.fullmatch(r"sentineliq-.+-(postgres|redis|minio|elasticsearch)-data", n) for n in chosen)
