"""The ports in `sentinel_infra.provider_forms`: upstream's own test cases, the whole `cpus` range, and the Go
originals themselves (`tests/fixtures/upstream/forms.go`, run with the Go toolchain that .ci/run installs)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import pytest
from harness import PROJECT, stack_config, with_secrets
from local_servers import require

from sentinel_infra.docker.provider_forms import cpus_input, go_duration, nano_cpus_string, parse_cpus, seconds
from sentinel_infra.settings import collect_problems

GO_PROGRAM = Path(__file__).parent / "fixtures" / "upstream" / "forms.go"

RANGE = [Fraction(hundredths, 100) for hundredths in range(5, 6401)]
"""Every value of the settings' range, 0.05 to 64 CPUs, in the settings' granularity (hundredths)."""

REFUSED = {Fraction(h, 100) for h in range(5, 10)} | {
    Fraction(tens * 1000 + h, 100) for tens in range(1, 7) for h in range(1, 10)
}
"""0.05-0.09 and N0.01-N0.09: their nine-decimal string holds exactly nine zeros, so the provider rounds them."""


def as_json_number(value: Fraction) -> float:
    """The value as the stack config holds it (a JSON number, a Python float once parsed)."""
    return float(value)


# --- nanoInt64ToDecimalString ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nano", "expected"),
    [
        # Upstream's TestNanoInt64ToDecimalString (internal/provider/helpers_test.go at 5074970c), all its cases.
        (0, "0"),
        (1_000_000_000, "1.0"),
        (1_500_000_000, "1.5"),
        (2_000_000_000, "2.0"),
        (2_250_000_000, "2.25"),
        # The quirks (provider-notes, "Read-back traps"), checked against Go below.
        (10_000_000_000, "10."),
        (50_000_000, "0.1"),
        (125_000_000, "0.125"),
        (10_050_000_000, "10.1"),
        (64_000_000_000, "64.0"),
        (1, "0.0"),  # nine zeros with the leading one: rounded to one decimal
    ],
)
def test_nano_cpus_string(nano: int, expected: str) -> None:
    assert nano_cpus_string(nano) == expected


@pytest.mark.parametrize(
    ("text", "nano"),
    [("2", 2 * 10**9), ("10.", 10 * 10**9), ("0.125", 125_000_000), ("1/4", 250_000_000), ("1e-1", 100_000_000)],
)
def test_parse_cpus(text: str, nano: int) -> None:
    assert parse_cpus(text) == nano


@pytest.mark.parametrize(("text", "error"), [("0.0000000001", "too precise"), ("two", "rational"), ("", "rational")])
def test_parse_cpus_errors(text: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        parse_cpus(text)


# --- the whole range -------------------------------------------------------------------------------------------


def test_every_value_of_the_range_is_sent_as_read_back_or_refused() -> None:
    refused = set()
    for value in RANGE:
        try:
            sent = cpus_input(as_json_number(value))
        except ValueError as error:
            refused.add(value)
            assert "is read back by the Docker provider as" in str(error)
            continue
        given = parse_cpus(sent)
        assert given == value * 10**9, f"{value}: Docker would be given {given} nano-CPUs for {sent!r}"
        assert nano_cpus_string(given) == sent, f"{value}: sent {sent!r}, read back {nano_cpus_string(given)!r}"
    assert refused == REFUSED


def test_a_value_between_hundredths_is_refused() -> None:
    with pytest.raises(ValueError, match=r"multiple of 0\.01"):
        cpus_input(0.125)


def problems_for(resources: str) -> dict[str, tuple[str, str]]:
    config, secret_keys = with_secrets(stack_config("prod"))
    config[f"{PROJECT}:resources"] = resources
    strip = len(PROJECT) + 1
    problems, _ = collect_problems({k[strip:]: v for k, v in config.items()}, {k[strip:] for k in secret_keys})
    return {p.key: (p.rule, p.fix) for p in problems}


@pytest.mark.parametrize(
    ("cpus", "rule"),
    [
        (
            "10.05",
            "10.05 is read back by the Docker provider as 10.1 (its nanoInt64ToDecimalString rounds it), so every "
            "pulumi up would replace the container; use 10 or 10.1",
        ),
        ("0.05", "0.05 is read back by the Docker provider as 0.1"),
        ("0.333", "must be a multiple of 0.01 CPU"),
    ],
)
def test_a_cpus_value_that_would_not_read_back_is_a_config_error(cpus: str, rule: str) -> None:
    problems = problems_for(f'{{"server": {{"cpus": {cpus}}}}}')
    assert list(problems) == ["resources.server.cpus"]
    found, fix = problems["resources.server.cpus"]
    assert found.startswith(rule)
    assert fix == "pulumi config set --path 'sentineliq:resources.server.cpus' 0.5"


def test_every_suggestion_is_accepted() -> None:
    for value in REFUSED:
        rule = problems_for(f'{{"server": {{"cpus": {float(value)}}}}}')["resources.server.cpus"][0]
        suggestions = rule.rsplit("; use ", 1)[1].split(" or ")
        assert suggestions
        for suggestion in suggestions:
            assert problems_for(f'{{"server": {{"cpus": {suggestion}}}}}') == {}, (value, suggestion)


# --- time.Duration.String ----------------------------------------------------------------------------------------

GO_DURATIONS = [
    # Go's own durationTests (src/time/time_test.go): the ns, µs, ms, s, m and h forms.
    ("0s", 0),
    ("1ns", 1),
    ("1.1µs", 1_100),
    ("2.2ms", 2_200_000),
    ("3.3s", 3_300_000_000),
    ("4m5s", (4 * 60 + 5) * 10**9),
    ("4m5.001s", (4 * 60 + 5) * 10**9 + 1_000_000),
    ("5h6m7.001s", (5 * 3600 + 6 * 60 + 7) * 10**9 + 1_000_000),
    ("8m0.000000001s", 8 * 60 * 10**9 + 1),
    ("2562047h47m16.854775807s", 2**63 - 1),
    ("-2562047h47m16.854775808s", -(2**63)),
    # The health checks' values (issue 8): "60s" is "1m0s", "120s" is "2m0s", "500ms" stays.
    ("1m0s", 60 * 10**9),
    ("2m0s", 120 * 10**9),
    ("500ms", 500_000_000),
    ("1h0m0s", 3600 * 10**9),
]


@pytest.mark.parametrize(("expected", "nanoseconds"), GO_DURATIONS)
def test_go_duration(expected: str, nanoseconds: int) -> None:
    assert go_duration(nanoseconds) == expected


def test_seconds() -> None:
    assert [seconds(n) for n in (1, 10, 59, 60, 90, 120, 180, 300, 3600)] == [
        "1s",
        "10s",
        "59s",
        "1m0s",
        "1m30s",
        "2m0s",
        "3m0s",
        "5m0s",
        "1h0m0s",
    ]


# --- against the Go originals --------------------------------------------------------------------------------------

DURATION_SAMPLES = sorted(
    {n for _, n in GO_DURATIONS}
    | {s * 10**9 for s in range(0, 7300)}
    | {10**k + d for k in range(0, 19) for d in (-1, 0, 1, 999, 1_000_000)}
    | {-(10**k) for k in range(0, 18)}
)


def test_the_ports_match_the_go_originals() -> None:
    go = shutil.which("go")
    require(go, "the Go toolchain (Debian: golang-go)")
    assert go is not None
    cpus = [*(str(float(v)) for v in RANGE), "2", "10", "10.", "64", "0.125", "1/4", "0.0000000001", "1e-1"]
    requests = [f"cpus {c}" for c in cpus] + [f"duration {n}" for n in DURATION_SAMPLES]
    with tempfile.TemporaryDirectory(prefix="siq-go-") as cache:
        run = subprocess.run(
            [go, "run", str(GO_PROGRAM)],
            input="\n".join(requests) + "\n",
            capture_output=True,
            text=True,
            check=True,
            timeout=600,
            env={**os.environ, "GOCACHE": cache, "GO111MODULE": "off", "GOFLAGS": "", "GOTOOLCHAIN": "local"},
        )
    answers = run.stdout.splitlines()
    assert len(answers) == len(requests)
    for request, answer in zip(requests, answers, strict=True):
        kind, value = request.split(" ", 1)
        if kind == "duration":
            assert go_duration(int(value)) == answer, request
            continue
        try:
            nano = parse_cpus(value)
        except ValueError as error:
            assert answer == f"error {error}", request
            continue
        assert answer == f"{nano} {nano_cpus_string(nano)}", request
