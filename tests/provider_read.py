"""What the Docker provider's Read functions store for each input the program sends: the read-back model.

pulumi-docker 5.x wraps kreuzwerker/terraform-provider-docker at commit 5074970c (the `upstream` submodule of
pulumi/pulumi-docker). After every create and on every refresh, the provider's Read replaces the state with what
it inspects from the engine, and the next `pulumi up` diffs the program's inputs against that state: a field whose
read-back differs from what was sent changes on every run, and a ForceNew field (or one under
`replace_on_changes`) replaces the resource on every run.

Each rule below names the upstream line it follows. Every input field the program sets must have a rule: a new
field (or resource type) without one fails `tests/test_readback.py` with a message that says where to add it.

Upstream sources (commit 5074970c, https://github.com/kreuzwerker/terraform-provider-docker/blob/5074970c/ +):
- `internal/provider/resource_docker_container_funcs.go`: `resourceDockerContainerRead` (and `...Create` for what
  Docker is given), `resource_docker_container_structures.go`: `flattenContainerPorts`, `portSetToDockerPorts`;
- `internal/provider/resource_docker_volume.go`: `resourceDockerVolumeRead`;
- `internal/provider/resource_docker_network_funcs.go`: `resourceDockerNetworkReadRefreshFunc`;
- `internal/provider/resource_docker_image_funcs.go`: `resourceDockerImageRead`;
- `internal/provider/helpers.go`: `nanoInt64ToDecimalString`.

Container fields Read does not store (the state keeps what the program sent, so they can never drift): `envs`
and `labels` (upstream's comment: "We decided not to set the environment variables and labels", terraform-provider-
docker #242 / #269), `uploads` ("upload can't be imported"), `volumes` (only a `// volumes` comment), the aliases
and every other part of `networksAdvanced` (set only when the state has none, for `terraform import`), `wait`,
`waitTimeout`, `destroyGraceSeconds` (never read), `mustRun` (read back as sent while the container runs; false
when it is stopped, which is a real change). RemoteImage stores only its outputs `imageId` and `repoDigest`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from harness import Registration, unwrap

from sentinel_infra.docker.provider_forms import go_duration, nano_cpus_string, parse_cpus

UPSTREAM = "https://github.com/kreuzwerker/terraform-provider-docker/blob/5074970c/internal/provider/"
CONTAINER_READ = UPSTREAM + "resource_docker_container_funcs.go (resourceDockerContainerRead)"


class UnknownFieldError(Exception):
    """An input the read-back model has no rule for."""


class NotReadBackError(Exception):
    """An input whose read-back depends on the engine, not on what was sent (e.g. an existing volume's labels)."""


@dataclass(frozen=True)
class Stored:
    """Read stores `stores(sent)`; a set (`TypeSet`) compares without order."""

    stores: Callable[[Any], Any]
    source: str
    is_set: bool = False


@dataclass(frozen=True)
class NotRead:
    """Read never stores this field: the state keeps what the program sent."""

    why: str


Rule = Stored | NotRead


def same(value: Any) -> Any:
    return value


# --- Go's time.ParseDuration, to know which Duration Docker is given -------------------------------------------

_UNITS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_DURATION = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")


def parse_duration(text: str) -> int:
    """Go's `time.ParseDuration` for the non-negative durations of a health check, in nanoseconds.

    https://github.com/golang/go/blob/go1.22.0/src/time/format.go (`ParseDuration`): "0" or a sequence of decimal
    numbers, each with a unit (ns, us/µs, ms, s, m, h). Raises `ValueError` where Go returns an error.
    """
    if text == "0":
        return 0
    if not text:
        raise ValueError(f"time: invalid duration {text!r}")
    total, position = 0, 0
    while position < len(text):
        match = _DURATION.match(text, position)
        if match is None or match.group(1) in ("", "."):
            raise ValueError(f"time: invalid duration {text!r}")
        whole, _, fraction = match.group(1).partition(".")
        unit = _UNITS[match.group(2)]
        total += int(whole or "0") * unit + (int(fraction) * unit // 10 ** len(fraction) if fraction else 0)
        position = match.end()
    return total


def _duration_read(text: str) -> str:
    # Create: `config.Healthcheck.Interval, _ = time.ParseDuration(...)` (an error is dropped: 0); Read:
    # `container.Config.Healthcheck.Interval.String()`.
    try:
        return go_duration(parse_duration(text))
    except ValueError:
        return go_duration(0)


# --- containers ------------------------------------------------------------------------------------------------

HEALTHCHECK_FIELDS = {
    "tests": same,  # Config.Healthcheck.Test
    "retries": same,  # Config.Healthcheck.Retries
    "interval": _duration_read,
    "timeout": _duration_read,
    "startPeriod": _duration_read,
    "startInterval": _duration_read,
}


def _healthcheck(sent: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(sent) - set(HEALTHCHECK_FIELDS)
    if unknown:
        raise UnknownFieldError(f"healthcheck.{sorted(unknown)[0]}")
    return {key: HEALTHCHECK_FIELDS[key](value) for key, value in sent.items()}


PORT_FIELDS = {"internal", "external", "ip", "protocol"}


def _ports(sent: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """`flattenContainerPorts(container.NetworkSettings.Ports)`: one entry per binding the engine reports, in order
    of the internal port; `ip` is the binding's HostIP. Without an `ip` the provider sends its default 0.0.0.0, and
    an engine with IPv6 reports both 0.0.0.0 and :: (terraform-provider-docker #909): two entries for one input."""
    read = []
    for port in sent:
        unknown = set(port) - PORT_FIELDS
        if unknown:
            raise UnknownFieldError(f"ports.{sorted(unknown)[0]}")
        base = {"internal": port["internal"], "external": port.get("external"), "protocol": port.get("protocol", "tcp")}
        ips = [port["ip"]] if port.get("ip") else ["0.0.0.0", "::"]
        read.extend({**base, "ip": ip} for ip in ips)
    return sorted(read, key=lambda port: port["internal"])  # byPortAndProtocol: by internal port


def _capabilities(sent: Mapping[str, Any]) -> dict[str, Any]:
    # {"add": HostConfig.CapAdd, "drop": HostConfig.CapDrop}, both TypeSet; the engine keeps the names as given.
    unknown = set(sent) - {"adds", "drops"}
    if unknown:
        raise UnknownFieldError(f"capabilities.{sorted(unknown)[0]}")
    return {key: sorted(value) for key, value in sent.items() if value}


def _image(sent: str) -> str:
    # `if strings.HasPrefix(imageValue, "sha256:") { d.Set("image", container.Image) } else { ... Config.Image }`
    if not sent.startswith("sha256:"):
        raise NotReadBackError("image must be an image id (RemoteImage.image_id): a name is read back as Config.Image")
    return sent


def _cpus(sent: str) -> str:
    # Create: `opts.ParseCPUs(cpus)` -> HostConfig.NanoCPUs; Read: `nanoInt64ToDecimalString(NanoCPUs)`.
    return nano_cpus_string(parse_cpus(sent))


def _megabytes(sent: float) -> float:
    # Create: `int64(v) * 1024 * 1024`; Read: `HostConfig.Memory/1024/1024` (integer division).
    return float((int(sent) * 1024 * 1024) // 1024 // 1024)


CONTAINER: dict[str, Rule] = {
    "name": Stored(lambda sent: sent.lstrip("/"), 'strings.TrimLeft(container.Name, "/")'),
    "image": Stored(_image, "container.Image for an image id"),
    "command": Stored(same, "container.Config.Cmd"),
    "entrypoints": Stored(same, "container.Config.Entrypoint"),
    "ports": Stored(_ports, "flattenContainerPorts(container.NetworkSettings.Ports)"),
    "healthcheck": Stored(_healthcheck, "Config.Healthcheck, durations as Duration.String()"),
    "restart": Stored(same, "container.HostConfig.RestartPolicy.Name"),
    "memory": Stored(_megabytes, "container.HostConfig.Memory/1024/1024"),
    "memorySwap": Stored(_megabytes, "container.HostConfig.MemorySwap/1024/1024 (when > 0)"),
    "cpus": Stored(_cpus, "nanoInt64ToDecimalString(container.HostConfig.NanoCPUs)"),
    "stopTimeout": Stored(same, "container.Config.StopTimeout"),
    "securityOpts": Stored(same, "container.HostConfig.SecurityOpt", is_set=True),
    "capabilities": Stored(_capabilities, "{add: HostConfig.CapAdd, drop: HostConfig.CapDrop}"),
    "readOnly": Stored(same, "container.HostConfig.ReadonlyRootfs"),
    "tmpfs": Stored(same, "container.HostConfig.Tmpfs"),
    "logDriver": Stored(same, "container.HostConfig.LogConfig.Type"),
    "logOpts": Stored(same, "containerLogOptsForState: HostConfig.LogConfig.Config when log_opts is set"),
    "mustRun": Stored(same, "kept while the container runs; set to false when it is stopped (a real change)"),
    "envs": NotRead('"We decided not to set the environment variables and labels" (#242, #269)'),
    "labels": NotRead('"We decided not to set the environment variables and labels" (#242, #269)'),
    "uploads": NotRead('"upload" can\'t be imported'),
    "volumes": NotRead("only a `// volumes` comment: never set from the engine"),
    "networksAdvanced": NotRead("set from the engine only when the state has none (terraform import)"),
    "wait": NotRead("never read"),
    "waitTimeout": NotRead("never read"),
    "destroyGraceSeconds": NotRead('"destroy_grace_seconds" can\'t be imported'),
}


def _existing_volume_labels(sent: Any) -> Any:
    raise NotReadBackError(
        "a volume's labels are read back from the engine, and creating a volume that exists returns it with its own "
        "labels (moby volume/service/store.go; tests/test_readback.py checks it on a real dockerd): register "
        "volumes with ignore_changes=['labels']"
    )


VOLUME: dict[str, Rule] = {
    "name": Stored(same, 'd.Set("name", volume.Name)'),
    "labels": Stored(_existing_volume_labels, "mapToLabelSet(volume.Labels)", is_set=True),
    "driver": Stored(same, "volume.Driver"),
}

NETWORK: dict[str, Rule] = {
    "name": Stored(same, "retNetwork.Name"),
    "labels": Stored(same, "mapToLabelSet(retNetwork.Labels), the labels the network was created with", is_set=True),
    "driver": Stored(same, "retNetwork.Driver"),
}

_IMAGE_READ = NotRead(
    "Read sets only the id, image_id and repo_digest (of the local image ImageInspect finds by the name; none found "
    "drops the resource from the state, and the next up pulls it again)"
)
REMOTE_IMAGE: dict[str, Rule] = {
    "name": _IMAGE_READ,
    "keepLocally": _IMAGE_READ,
    "forceRemove": _IMAGE_READ,
    "pullTriggers": _IMAGE_READ,
}

_TAG_READ = NotRead("resourceDockerTagRead is a no-op (`return nil`): the state keeps what was sent")
TAG: dict[str, Rule] = {"sourceImage": _TAG_READ, "targetImage": _TAG_READ}

RULES: dict[str, dict[str, Rule]] = {
    "docker:index/container:Container": CONTAINER,
    "docker:index/tag:Tag": TAG,
    "docker:index/volume:Volume": VOLUME,
    "docker:index/network:Network": NETWORK,
    "docker:index/remoteImage:RemoteImage": REMOTE_IMAGE,
}
"""Every Docker resource type the program registers, with a rule for every input field it may set."""

SOURCES = {
    "docker:index/container:Container": CONTAINER_READ,
    "docker:index/volume:Volume": UPSTREAM + "resource_docker_volume.go (resourceDockerVolumeRead)",
    "docker:index/network:Network": UPSTREAM
    + "resource_docker_network_funcs.go (resourceDockerNetworkReadRefreshFunc)",
    "docker:index/remoteImage:RemoteImage": UPSTREAM + "resource_docker_image_funcs.go (resourceDockerImageRead)",
    "docker:index/tag:Tag": UPSTREAM + "resource_docker_tag_funcs.go (resourceDockerTagRead)",
}


def _canonical(value: Any, is_set: bool) -> Any:
    if isinstance(value, list) and is_set:
        return sorted((_canonical(v, False) for v in value), key=repr)
    if isinstance(value, dict):
        return {k: _canonical(v, isinstance(v, list) and k in ("adds", "drops")) for k, v in value.items()}
    return value


def drift(resource: Registration) -> list[str]:
    """Every input of a Docker resource whose read-back differs from what the program sends, as messages.

    Fields under `ignore_changes` are not diffed by the engine and are skipped. An unknown resource type or field
    is reported too: the model must learn it before the program may send it.
    """
    rules = RULES.get(resource.type)
    where = f"{resource.type} {resource.name}"
    if rules is None:
        return [
            f"{where}: the read-back test has no rules for this resource type: read its Read function upstream "
            f"({UPSTREAM}) field by field and add the type to RULES in tests/provider_read.py"
        ]
    problems = []
    for field, value in sorted(resource.inputs.items()):
        if field in resource.options.get("ignoreChanges", []) or value is None:
            continue
        rule = rules.get(field)
        if rule is None:
            problems.append(
                f"{where}: input {field!r} has no read-back rule: find what {SOURCES[resource.type]} stores for it "
                f"and add a rule to {_name_of(rules)} in tests/provider_read.py"
            )
            continue
        if isinstance(rule, NotRead):
            continue
        sent = unwrap(value)
        try:
            stored = rule.stores(sent)
        except UnknownFieldError as unknown:
            problems.append(
                f"{where}: input {field}.{str(unknown).split('.', 1)[-1]} has no read-back rule: add it in "
                f"tests/provider_read.py ({SOURCES[resource.type]})"
            )
            continue
        except NotReadBackError as reason:
            problems.append(f"{where}: {field}: {reason}")
            continue
        if _canonical(stored, rule.is_set) != _canonical(sent, rule.is_set):
            # A nested field names the part that differs; a secret is never shown.
            pairs = (
                [(f"{field}.{k}", v, stored.get(k)) for k, v in sent.items() if stored.get(k) != v]
                if isinstance(sent, dict) and isinstance(stored, dict)
                else [(field, sent, stored)]
            )
            for name, was, read in pairs:
                shown = (was, read) if value == sent else ("[secret]", "[secret]")
                problems.append(
                    f"{where}: {name} is sent as {shown[0]!r} but the provider's Read stores {shown[1]!r} "
                    f"({rule.source}): every pulumi up would change it"
                )
    return problems


def _name_of(rules: dict[str, Rule]) -> str:
    return next(name for name, table in globals().items() if table is rules and name.isupper())
