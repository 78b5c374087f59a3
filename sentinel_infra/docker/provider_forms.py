"""Values in the exact form the Docker provider reads them back, so `pulumi up` never sees a difference.

pulumi-docker 5.x wraps kreuzwerker/terraform-provider-docker at commit 5074970c. The provider compares what the
program sends with what its Read function stores (`resourceDockerContainerRead` in
`internal/provider/resource_docker_container_funcs.go`); wherever the two strings differ, every `pulumi up` shows
a change, and on a ForceNew field (`cpus`) or under `replace_on_changes` (`healthcheck`) it replaces the container.
This module ports the functions that decide those strings, quirks included, so the program sends the read-back
form itself. `tests/test_provider_forms.py` runs upstream's own test cases and every value of the settings'
range through the ports, and checks them against the Go originals where a Go toolchain is installed.
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

NANO = 10**9

CPU_STEP = Fraction(1, 100)
"""The granularity of `resources.<service>.cpus`: hundredths of a CPU."""


def parse_cpus(value: str) -> int:
    """The NanoCPUs Docker is given for a `cpus` string: docker/cli's `opts.ParseCPUs`.

    https://github.com/docker/cli/blob/v28.5.2/opts/opts.go (`ParseCPUs`, the docker/cli version upstream's go.mod
    pins), which the provider calls in `resourceDockerContainerCreate`: `big.Rat.SetString`, times 1e9, and an
    error unless the result is a whole number of nano-CPUs.
    """
    try:
        cpu = Fraction(value)
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"failed to parse {value} as a rational number") from None
    nano = cpu * NANO
    if nano.denominator != 1:
        raise ValueError("value is too precise")
    return int(nano)


def _float_string(rat: Fraction, prec: int) -> str:
    """Go's `big.Rat.FloatString(prec)`: `prec` decimals, the last rounded half away from zero."""
    scaled = abs(rat) * 10**prec
    whole, rest = divmod(scaled.numerator, scaled.denominator)
    if 2 * rest >= scaled.denominator:
        whole += 1
    text = str(whole).rjust(prec + 1, "0")
    sign = "-" if rat < 0 else ""
    return f"{sign}{text[:-prec]}.{text[-prec:]}" if prec else f"{sign}{text}"


def nano_cpus_string(nano: int) -> str:
    """What Read stores as `cpus`: upstream's `nanoInt64ToDecimalString(HostConfig.NanoCPUs)`.

    https://github.com/kreuzwerker/terraform-provider-docker/blob/5074970c/internal/provider/helpers.go
    Quirks kept: it counts every "0" of the nine-decimal string, so 2 is "2.0" and 1.5 is "1.5", but 10 is "10."
    (ten zeros: only trailing zeros are trimmed), and a value whose string holds exactly nine zeros is rounded to
    one decimal (0.05 is "0.1", 10.05 is "10.1").
    """
    if nano == 0:
        return "0"
    rat = Fraction(nano, NANO)
    text = _float_string(rat, 9)
    if text.count("0") == 9:
        return _float_string(rat, 1)
    return text.rstrip("0")


def cpus_input(cpus: float) -> str:
    """The `cpus` string to send: the provider's read-back form of the value, which Docker parses to the same
    NanoCPUs. A value whose read-back would differ (the provider rounds it) raises `ValueError`."""
    wanted = Fraction(str(cpus))
    if wanted % CPU_STEP:
        raise ValueError(f"must be a multiple of {float(CPU_STEP)} CPU")
    read_back = nano_cpus_string(int(wanted * NANO))
    if not _reads_back_unchanged(wanted):
        nearby = [_plain(c) for c in sorted(_near(wanted), key=lambda c: abs(c - wanted))]
        raise ValueError(
            f"{_plain(wanted)} is read back by the Docker provider as {read_back} (its nanoInt64ToDecimalString "
            f"rounds it), so every pulumi up would replace the container; use {' or '.join(nearby)}"
        )
    return read_back


def _reads_back_unchanged(cpus: Fraction) -> bool:
    """Docker is given the same NanoCPUs for the read-back string as for the value."""
    nano = int(cpus * NANO)
    return parse_cpus(nano_cpus_string(nano)) == nano


def _plain(value: Fraction) -> str:
    """A decimal as people write it (10.1, 0.5, 2)."""
    return format((Decimal(value.numerator) / Decimal(value.denominator)).normalize(), "f")


def _near(wanted: Fraction) -> list[Fraction]:
    """The closest values below and above `wanted` (in CPU_STEP) that the provider reads back unchanged."""
    found = []
    for direction in (-1, 1):
        candidate = wanted + direction * CPU_STEP
        while candidate > 0:
            if _reads_back_unchanged(candidate):
                found.append(candidate)
                break
            candidate += direction * CPU_STEP
    return found


def go_duration(nanoseconds: int) -> str:
    """Go's `time.Duration.String()`, the form Read stores health-check durations in.

    https://github.com/golang/go/blob/go1.22.0/src/time/time.go (`Duration.String`, `format`, `fmtFrac`): "60s" is
    stored as "1m0s", 1.5 s as "1.5s", 500 ms as "500ms", 1100 ns as "1.1µs" (U+00B5), zero as "0s".
    """
    negative = nanoseconds < 0
    u = -nanoseconds if negative else nanoseconds
    if u < NANO:
        if u == 0:
            return "0s"
        if u < 1_000:
            text = f"{u}ns"
        elif u < 1_000_000:
            text = _with_fraction(u, 3) + "µs"
        else:
            text = _with_fraction(u, 6) + "ms"
    else:
        seconds, fraction = divmod(u, NANO)
        text = str(seconds % 60) + _fraction(fraction, 9) + "s"
        minutes = seconds // 60
        if minutes:
            text = f"{minutes % 60}m{text}"
            if minutes // 60:
                text = f"{minutes // 60}h{text}"
    return f"-{text}" if negative else text


def _fraction(value: int, digits: int) -> str:
    """Go's `fmtFrac`: ".digits" without trailing zeros, nothing when the fraction is zero."""
    text = str(value).rjust(digits, "0").rstrip("0")
    return f".{text}" if text else ""


def _with_fraction(value: int, digits: int) -> str:
    whole, fraction = divmod(value, 10**digits)
    return f"{whole}{_fraction(fraction, digits)}"


def seconds(count: int) -> str:
    """A whole number of seconds as the provider reads it back."""
    return go_duration(count * NANO)
