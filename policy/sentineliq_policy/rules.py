"""The rule machinery of the SentinelIQ policy pack and its Docker rules, importable without starting a policy
server (`pack.py` gathers them with the Kubernetes rules of `kubernetes.py`).

Each rule is data: a name, the CIS Docker Benchmark 1.6 control it enforces (where there is one), its
enforcement, and a check per resource type that yields one problem per violation. The container checks also run
on every container a one-shot command line starts (`docker run` flags read by `docker_cli`), with the exceptions
`ONE_SHOT` lists. Messages name the resource and the fix and print only names, ports, addresses and paths, never
a property that may hold a secret (environment, uploads, registry auth, a command's script).

Every check is total: any shape of input yields problems or none, never an exception (a property test feeds them
arbitrary shapes); should one raise all the same, the validator reports a violation rather than pass. The one
exception that passes through is pulumi_policy's `UnknownValueError` (a value unknown during a preview), which
the framework turns into "cannot run during preview" and which the pack checks again at `pulumi up`.

Mandatory: security and data rules. Advisory, relaxable per service through the policy config: the documented
capability adds (5.4) and a read-only root filesystem (5.13), where an image may need an exception.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from . import docker_cli
from .values import (
    VOLUME_NAME,
    byte_size,
    fields,
    flag,
    integer,
    ip_address,
    is_loopback,
    is_set,
    items,
    normalise,
    positive_decimal,
    present,
    sensitive,
    text,
)

CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"
IMAGE = "docker:index/remoteImage:RemoteImage"
SWARM_SERVICE = "docker:index/service:Service"
PLUGIN = "docker:index/plugin:Plugin"
LOCAL_COMMAND = "command:local:Command"
REMOTE_COMMAND = "command:remote:Command"
COMMANDS = (LOCAL_COMMAND, REMOTE_COMMAND)
REMOTE_COPIES = ("command:remote:CopyToRemote", "command:remote:CopyFile")
SERVICE_LABEL = "io.sentineliq.service"

PUBLIC_PORTS: dict[str, list[int]] = {"edge": [8000, 8001, 8080, 8443]}
"""Per service, the container ports it may publish on a non-loopback host address: the edge (the reverse proxy in
front of the app) alone, on its entry points (sentinel_infra/specs/edge.py)."""
PRIVILEGED_PORTS: dict[str, list[int]] = {"edge": [80, 443]}
"""Per service, the host ports below 1024 it may map: the edge serves HTTP and HTTPS on the standard ports."""
APP_SERVICES = ("server", "client")
"""Behind the edge and replaced create-before-delete: they publish no port and set delete_before_replace=False."""

DOCUMENTED_CAPABILITIES: dict[str, list[str]] = {
    "postgres": ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"],
    "redis": ["CHOWN", "DAC_OVERRIDE", "SETGID", "SETUID"],
    "client": ["CHOWN", "DAC_OVERRIDE", "SETGID", "SETUID"],
}
"""The capability adds documented at each service's spec in sentinel_infra (a test keeps the two equal)."""

DOCKER_DEFAULT_CAPABILITIES = (
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "NET_RAW",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
)
"""The capabilities a default Docker container has (moby `oci/caps/defaults.go`). Adding back one of these after
dropping ALL never makes a container stronger than a default one; anything else (ALL, SYS_ADMIN, NET_ADMIN,
SYS_PTRACE, DAC_READ_SEARCH, SYS_MODULE, BPF, …) does."""

READ_ONLY_EXEMPT = [
    "edge",
    "redis",
    "minio",
    "elasticsearch",
    "logstash",
    "kibana",
    "server",
    "client",
    "backup-postgres",
    "backup-redis",
    "backup-minio",
]
"""Services whose image writes outside its volumes, or that receive uploaded files (see their specs)."""


@dataclass(frozen=True)
class Subject:
    """What a rule sees of one resource, or of one container a one-shot command starts."""

    name: str
    urn: str
    props: Mapping[str, Any]
    protect: bool
    config: Mapping[str, Any]
    one_shot: bool = False
    """A container started by a one-shot command line (`docker run --rm`), not a `docker.Container`."""
    delete_before_replace: bool | None = None
    """As the program set it; None leaves the provider's choice (pulumi-docker: delete first)."""
    resource_type: str = ""

    @property
    def label(self) -> str:
        labels = {
            text(fields(item).get("label")): fields(item).get("value") for item in items(self.props.get("labels"))
        }
        return text(labels.get(SERVICE_LABEL))

    @property
    def display(self) -> str:
        """The service as messages name it: its label, else the resource's name."""
        return self.label or self.name

    @property
    def service(self) -> str | None:
        """The service whose allowances (public ports, capabilities, exemptions) this container may use: its label,
        when nothing else about the resource contradicts it (`_identity_problem`), else none."""
        return None if self.one_shot or _identity_problem(self) else self.label

    @property
    def parents(self) -> str:
        """The URN's type chain, such as `sentineliq:service:ServiceContainer$docker:index/container:Container`."""
        parts = self.urn.split("::")
        return parts[2] if len(parts) > 3 else ""

    @property
    def stack(self) -> str:
        return self.urn.split("::")[0].removeprefix("urn:pulumi:")

    @property
    def project(self) -> str:
        parts = self.urn.split("::")
        return parts[1] if len(parts) > 1 else ""

    def allowed(self, key: str) -> list[Any]:
        """This service's entry in a per-service config map (`allowed`), nothing when it is not a verified one."""
        return [] if self.service is None else items(fields(self.config.get(key)).get(self.service))


Check = Callable[[Subject], Iterator[str]]


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    checks: Mapping[str, Check]
    """The check for each resource type the rule applies to."""
    enforcement: EnforcementLevel = EnforcementLevel.MANDATORY
    config: Mapping[str, Mapping[str, Any]] | None = None
    """JSON schema of the rule's options, each with its default."""
    one_shots: bool = False
    """Whether the container check also runs on the containers one-shot commands start."""

    def defaults(self) -> dict[str, Any]:
        return {key: schema["default"] for key, schema in (self.config or {}).items()}

    def subjects(self, args: ResourceValidationArgs) -> Iterator[tuple[Subject, Check]]:
        config = {**self.defaults(), **dict(fields(args.get_config()))}
        props = fields(args.props)
        check = self.checks.get(args.resource_type)
        if check is not None:
            opts = args.opts
            protect, replace = bool(getattr(opts, "protect", False)), getattr(opts, "delete_before_replace", None)
            subject = Subject(args.name, args.urn, props, protect, config, delete_before_replace=replace)
            yield dataclasses.replace(subject, resource_type=args.resource_type), check
        if args.resource_type in COMMANDS and self.one_shots:
            for index, container in enumerate(one_shot_containers(props), start=1):
                name = f"{args.name} (docker run #{index})"
                yield Subject(name, args.urn, container, False, config, one_shot=True), self.checks[CONTAINER]

    def problems(self, args: ResourceValidationArgs) -> list[str]:
        found: list[str] = []
        for subject, check in self.subjects(args):
            try:
                found += [f"{subject.name} ({subject.display}): {problem}" for problem in check(subject)]
            except UnknownValueError:
                raise
            except Exception as error:  # a check that cannot run must fail, never pass
                found.append(f"{subject.name}: could not be checked ({type(error).__name__}). Fix: report this")
        return found

    def policy(self) -> ResourceValidationPolicy:
        def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
            for problem in self.problems(args):
                report(problem, None)

        schema = PolicyConfigSchema(properties={k: dict(v) for k, v in self.config.items()}) if self.config else None
        return ResourceValidationPolicy(
            name=self.name,
            description=self.description,
            validate=validate,
            enforcement_level=self.enforcement,
            config_schema=schema,
        )


@dataclass(frozen=True)
class StackResource:
    """What a stack rule sees of one resource."""

    resource_type: str
    name: str
    props: Mapping[str, Any]


StackCheck = Callable[[Sequence[StackResource]], Iterator[str]]


@dataclass(frozen=True)
class StackRule:
    """A rule about the stack as a whole (what must exist, what two resources must not share)."""

    name: str
    description: str
    check: StackCheck
    enforcement: EnforcementLevel = EnforcementLevel.MANDATORY

    def problems(self, resources: Sequence[PolicyResource | StackResource]) -> list[str]:
        seen = [StackResource(r.resource_type, r.name, fields(r.props)) for r in resources]
        try:
            return list(self.check(seen))
        except UnknownValueError:
            raise
        except Exception as error:  # a check that cannot run must fail, never pass
            return [f"the stack could not be checked ({type(error).__name__}). Fix: report this"]

    def policy(self) -> StackValidationPolicy:
        def validate(args: StackValidationArgs, report: ReportViolation) -> None:
            for problem in self.problems(args.resources):
                report(problem, None)

        return StackValidationPolicy(
            name=self.name, description=self.description, validate=validate, enforcement_level=self.enforcement
        )


def _command_lines(props: Mapping[str, Any]) -> list[str]:
    return [text(props.get(key)) for key in ("create", "update", "delete") if props.get(key) is not None]


def one_shot_containers(props: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The containers a command resource's lines start (`docker run`/`docker create`), as properties."""
    return [container for line in _command_lines(props) for container in docker_cli.read(line).containers]


# --- identity, privileges and namespaces -------------------------------------------------------------------------


SERVICE_CONTAINER = "sentineliq:service:ServiceContainer$" + CONTAINER
"""The URN type chain of every container the program renders (a ServiceContainer's child, under the stack)."""


def _identity_problem(s: Subject) -> str | None:
    """Why the resource is not the service its label names, or None.

    The label must agree with what the engine and Docker keep unique: the URN (a ServiceContainer's child named
    `<label>-container`, or `<label>-<n>-container` for a replica) and, when the container has a fixed name, the
    Docker name `<project>-<stack>-<label>`. A label alone then cannot borrow another service's allowances.
    """
    label = s.label
    name = s.props.get("name")
    if not label:
        return f"has no {SERVICE_LABEL} label"
    if s.parents != SERVICE_CONTAINER or not re.fullmatch(re.escape(label) + r"(-[0-9]+)?-container", s.name):
        return f"is labelled {label} but is not that service's ServiceContainer"
    if name is not None and text(name) != f"{s.project}-{s.stack}-{label}":
        return f"is labelled {label} but named otherwise"
    return None


def _service_identity(s: Subject) -> Iterator[str]:
    problem = _identity_problem(s)
    if problem is not None:
        yield f"{problem}, so it gets no service's allowances. Fix: render it through ServiceContainer"


def _not_privileged(s: Subject) -> Iterator[str]:
    if is_set(s.props.get("privileged")):
        yield "runs privileged. Fix: remove privileged=True; add the single capability it needs instead"


NAMESPACE_MODES = (
    ("networkMode", "network", ("", "bridge", "default", "none")),
    ("pidMode", "PID", ("",)),
    ("ipcMode", "IPC", ("", "private", "none", "shareable")),
    ("utsMode", "UTS", ("",)),
    ("usernsMode", "user", ("",)),
    ("cgroupnsMode", "cgroup", ("", "private")),
)
"""Each namespace property and the values that keep the container's own namespace: `host` shares the host's
namespace and `container:<name>` another container's (the pack cannot see that one)."""


def _no_host_namespaces(s: Subject) -> Iterator[str]:
    for prop, namespace, private in NAMESPACE_MODES:
        value = s.props.get(prop)
        if value is None or text(value) in private:
            continue
        shown = "host" if text(value) == "host" else "another container's or an unknown"
        yield f"shares the {shown} {namespace} namespace. Fix: remove {prop}"


def _no_devices(s: Subject) -> Iterator[str]:
    for prop in ("devices", "deviceCgroupRules", "deviceRequests", "gpus"):
        if present(s.props.get(prop)):
            yield f"gets host devices ({prop}). Fix: remove {prop}"


def _default_cgroup(s: Subject) -> Iterator[str]:
    if text(s.props.get("cgroupParent")):
        yield "runs under a custom cgroup parent. Fix: remove cgroup_parent"


def _capability(name: Any) -> str:
    return text(name).strip().upper().removeprefix("CAP_")


def _drop_capabilities(s: Subject) -> Iterator[str]:
    capabilities = fields(s.props.get("capabilities"))
    if "ALL" not in (text(drop).strip().upper() for drop in items(capabilities.get("drops"))):
        yield "keeps Docker's default capabilities. Fix: drop ALL and add back what the image needs"
    adds = capabilities.get("adds")
    widening = sorted({_capability(add) for add in items(adds)} - set(DOCKER_DEFAULT_CAPABILITIES))
    if widening or (present(adds) and not items(adds)):
        shown = ", ".join(name for name in widening if name.replace("_", "").isalnum()) or "unreadable ones"
        yield (
            f"adds capabilities beyond a default container's ({shown}). Fix: add back only what the image's "
            "entrypoint needs, never ALL or SYS_ADMIN"
        )


def _documented_capabilities(s: Subject) -> Iterator[str]:
    allowed = {_capability(name) for name in s.allowed("allowed")}
    extra = sorted({_capability(add) for add in items(fields(s.props.get("capabilities")).get("adds"))} - allowed)
    if extra:
        shown = ", ".join(name for name in extra if name.replace("_", "").isalnum()) or "unreadable ones"
        yield (
            f"adds undocumented capabilities {shown}. Fix: document them at the spec and in the "
            "policy config's capabilities.allowed"
        )


# --- security options --------------------------------------------------------------------------------------------

DENYING_SECCOMP = ("SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP")


def _security_option(option: str) -> tuple[str, str]:
    """(key, value) as moby's `parseSecurityOpt` splits an option: bare forms whole, else at the first `=`, else
    at the first `:` (daemon/daemon_unix.go)."""
    if option in ("no-new-privileges", "writable-cgroups"):
        return option, "true"
    if option == "disable":
        return "label", "disable"
    separator = "=" if "=" in option else ":"
    key, _, value = option.partition(separator)
    return key, value


def _apparmor(value: str) -> str | None:
    return "disables AppArmor (CIS 5.2)" if value.strip().lower() in ("unconfined", "") else None


def _selinux(value: str) -> str | None:
    lowered = value.lower()
    if lowered in ("disable", "nested") or "spc_t" in lowered or "unconfined" in lowered:
        return "disables SELinux separation (CIS 5.3)"
    kind = lowered.partition(":")[0]
    return None if kind in ("user", "role", "type", "level", "filetype") else "sets an unknown SELinux label"


def _seccomp(value: str) -> str | None:
    if value.strip() == "builtin":
        return None
    if value.strip().lower() == "unconfined":
        return "disables seccomp (CIS 5.22)"
    try:
        profile = json.loads(value)
    except ValueError:
        return "replaces the default seccomp profile with one the pack cannot read (CIS 5.22)"
    if text(fields(profile).get("defaultAction")) in DENYING_SECCOMP:
        return None
    return "disables seccomp or allows every system call by default (CIS 5.22)"


SECURITY_OPTIONS: dict[str, Callable[[str], str | None]] = {
    "no-new-privileges": lambda _value: None,
    "apparmor": _apparmor,
    "label": _selinux,
    "seccomp": _seccomp,
    "writable-cgroups": lambda value: "makes the cgroup filesystem writable" if flag(value) is not False else None,
    "systempaths": lambda _value: "unmasks /proc and /sys paths (systempaths=unconfined)",
}
"""Per security option Docker knows (moby `parseSecurityOpt`; `systempaths` is read by the CLI and the
provider), why a value weakens the container's confinement, or None."""


def _weakens(key: str, value: str) -> str | None:
    check = SECURITY_OPTIONS.get(key)
    return "is an option Docker does not know" if check is None else check(value)


def _confinement(s: Subject) -> Iterator[str]:
    for option in items(s.props.get("securityOpts")):
        key, value = _security_option(text(option))
        reason = _weakens(key, value)
        if reason is not None:
            shown = key if key in SECURITY_OPTIONS else "an option"
            yield f"security option {shown} {reason}. Fix: remove it; Docker's default profiles apply"


def _no_new_privileges(s: Subject) -> Iterator[str]:
    values = [
        flag(value)
        for key, value in (_security_option(text(o)) for o in items(s.props.get("securityOpts")))
        if key == "no-new-privileges"
    ]
    if not values:
        yield "may gain privileges through setuid binaries. Fix: add security_opts=['no-new-privileges:true']"
    elif not all(values):
        # The provider sends security_opts as a set (no order kept) and Docker keeps the last: any false may win.
        yield "sets no-new-privileges to false or an unreadable value. Fix: keep only 'no-new-privileges:true'"


# --- mounts ------------------------------------------------------------------------------------------------------


def _bind_source(source: str, what: str) -> Iterator[str]:
    reason = sensitive(source)
    if reason is not None:
        yield f"{what} {reason} ({normalise(source)}). Fix: use a named volume or a dedicated folder"


def _local_driver(driver: Any, options: Mapping[str, Any], what: str) -> Iterator[str]:
    """A volume of the local driver is a mount of its `device`: with `o=bind` a bind of a host path."""
    if text(driver) not in ("", "local"):
        yield f"{what} uses volume driver {text(driver)[:40]}, which the pack cannot check. Fix: the local driver"
        return
    device = text(options.get("device"))
    binds = "bind" in text(options.get("o")).split(",") or "rbind" in text(options.get("o")).split(",")
    if device.startswith("/"):
        yield from _bind_source(device, what)
    elif binds:
        yield f"{what} binds a relative device path. Fix: no bind options on a volume"


def _volume_entry(entry: Mapping[str, Any]) -> Iterator[str]:
    if text(entry.get("fromContainer")):
        yield "shares another container's volumes (volumes_from), which the pack cannot see. Fix: named volumes"
    host_path, volume_name = text(entry.get("hostPath")), text(entry.get("volumeName"))
    if any(":" in value for value in (host_path, volume_name, text(entry.get("containerPath")))):
        yield "has a ':' in a volume path, which breaks Docker's src:dst:mode bind syntax. Fix: rename the folder"
    # The provider binds `host_path or volume_name`, and Docker binds any source that starts with '/'.
    source = host_path or volume_name
    if source.startswith("/"):
        yield from _bind_source(source, "mounts")
    elif source and not VOLUME_NAME.fullmatch(source):
        yield "mounts a source that is neither a Docker volume name nor an absolute path. Fix: a volume name"
    if text(entry.get("selinuxRelabel")) not in ("", "z", "Z"):
        # It is appended to the bind's mode ("rw,<relabel>"): "shared" there would set the propagation.
        yield "has a selinux_relabel other than z or Z. Fix: z, Z or nothing"


def _mount_entry(mount: Mapping[str, Any]) -> Iterator[str]:
    kind, source = text(mount.get("type")), text(mount.get("source"))
    if kind == "bind":
        if not source.startswith("/"):
            yield "binds a relative host path. Fix: an absolute path to a dedicated folder"
        yield from _bind_source(source, "mounts")
    elif kind == "volume":
        if source and not VOLUME_NAME.fullmatch(source):
            yield "mounts a volume source that is not a Docker volume name. Fix: a volume name"
        options = fields(mount.get("volumeOptions"))
        yield from _local_driver(
            options.get("driverName"), fields(options.get("driverOptions")), "mounts a volume that"
        )
    elif kind != "tmpfs":
        yield "has a mount of a type the pack does not check. Fix: bind, volume or tmpfs"


def _no_sensitive_mounts(s: Subject) -> Iterator[str]:
    for entry in items(s.props.get("volumes")):
        yield from _volume_entry(fields(entry))
    for mount in items(s.props.get("mounts")):
        yield from _mount_entry(fields(mount))


def _remote_copy(s: Subject) -> Iterator[str]:
    path = text(s.props.get("remotePath"))
    if path.startswith("/"):
        yield from _bind_source(path, "copies a file into")


def _volume_device(s: Subject) -> Iterator[str]:
    yield from _local_driver(s.props.get("driver"), fields(s.props.get("driverOpts")), "is a volume that")


def _mount_propagation(s: Subject) -> Iterator[str]:
    for mount in items(s.props.get("mounts")):
        propagation = text(fields(fields(mount).get("bindOptions")).get("propagation"))
        if propagation not in ("", "private", "rprivate", "slave", "rslave"):
            yield "mounts with shared propagation. Fix: remove bind_options.propagation (rprivate)"


# --- resources, health, restart, logs ----------------------------------------------------------------------------


def _memory_limit(s: Subject) -> Iterator[str]:
    memory = integer(s.props.get("memory"))
    if memory is None or memory <= 0:
        yield "has no memory limit. Fix: set memory (sentineliq:resources.<service>.memoryMb)"
    if integer(s.props.get("memorySwap")) == -1:
        yield "may swap without limit (memory_swap -1). Fix: memory_swap equal to memory"


def _cpu_limit(s: Subject) -> Iterator[str]:
    # The provider sends a set `cpus` as NanoCPUs and then ignores cpu_quota (resource_docker_container_funcs.go).
    if s.props.get("cpus") is not None and text(s.props.get("cpus")) != "":
        limited = positive_decimal(s.props.get("cpus"))
    else:
        limited = (integer(s.props.get("cpuQuota")) or 0) > 0
    if not limited:
        yield "has no CPU limit. Fix: set cpus above 0 (sentineliq:resources.<service>.cpus)"


def _pids_limit(s: Subject) -> Iterator[str]:
    # pulumi-docker's Container has no pids limit input (kreuzwerker does not expose PidsLimit): one-shots only.
    limit = integer(s.props.get("pidsLimit"))
    if s.one_shot and (limit is None or limit <= 0):
        yield "has no PIDs limit. Fix: --pids-limit on the one-shot's docker run"


def _healthcheck(s: Subject) -> Iterator[str]:
    tests = [text(test) for test in items(fields(s.props.get("healthcheck")).get("tests"))]
    if len(tests) < 2 or tests[0] not in ("CMD", "CMD-SHELL") or not any(tests[1:]):
        yield "has no health check. Fix: give its spec a HealthCheck that proves readiness"


def _restart_policy(s: Subject) -> Iterator[str]:
    restart = text(s.props.get("restart"))
    if s.one_shot:
        if restart not in ("", "no"):
            yield "restarts a one-shot container. Fix: no --restart on a one-shot step"
        return
    retries = integer(s.props.get("maxRetryCount")) if s.props.get("maxRetryCount") is not None else 0
    if restart == "unless-stopped" or (restart == "on-failure" and retries is not None and 0 < retries <= 5):
        return
    shown = restart if restart in ("no", "always", "on-failure") else "unknown" if restart else "no"
    yield f"restart policy {shown} is not allowed. Fix: unless-stopped, or on-failure with 1 to 5 retries"


def _log_rotation(s: Subject) -> Iterator[str]:
    size = byte_size(fields(s.props.get("logOpts")).get("max-size"))
    if text(s.props.get("logDriver")) not in ("json-file", "local") or size is None or size <= 0:
        yield "has no log rotation. Fix: log_driver json-file or local with log_opts max-size above 0 (and max-file)"


# --- ports -------------------------------------------------------------------------------------------------------


def _explicit_port_address(s: Subject) -> Iterator[str]:
    for port in items(s.props.get("ports")):
        internal = integer(fields(port).get("internal"))
        if ip_address(fields(port).get("ip")) is None:
            yield (
                f"publishes port {internal} without a literal host address (Docker then listens on every "
                "interface). Fix: set ip to an IP address such as 127.0.0.1"
            )


def _public_ports(s: Subject) -> Iterator[str]:
    if is_set(s.props.get("publishAllPorts")):
        yield "publishes every exposed port on all interfaces (publish_all_ports). Fix: remove it"
    allowed = {integer(port) for port in s.allowed("allowed")}
    for port in items(s.props.get("ports")):
        internal = integer(fields(port).get("internal"))
        if s.one_shot:
            yield f"publishes port {internal} from a one-shot container. Fix: a one-shot publishes nothing"
        elif not is_loopback(fields(port).get("ip")) and (internal is None or internal not in allowed):
            address = ip_address(fields(port).get("ip"))
            where = "all interfaces" if address is None else str(address)
            yield f"exposes port {internal} on {where}. Fix: bind it to 127.0.0.1 (public-ports.allowed lists the rest)"


def _rolling_app(s: Subject) -> Iterator[str]:
    if s.service not in APP_SERVICES:
        return
    for port in items(s.props.get("ports")):
        yield (
            f"publishes port {integer(fields(port).get('internal'))}: a second container could not start beside it "
            "during a deploy. Fix: publish nothing; the edge routes to it"
        )
    if s.delete_before_replace is not False:
        yield (
            "is replaced delete-before-replace (pulumi-docker's default unless set): every deploy drops requests. "
            "Fix: delete_before_replace=False, no fixed name, no published port"
        )


def _privileged_ports(s: Subject) -> Iterator[str]:
    allowed = {integer(port) for port in s.allowed("allowed")}
    for port in items(s.props.get("ports")):
        external = integer(fields(port).get("external"))
        if external is not None and 0 < external < 1024 and external not in allowed:
            yield f"maps privileged host port {external}. Fix: a host port of 1024 or above"


# --- network and images ------------------------------------------------------------------------------------------


def _stack_network(s: Subject) -> Iterator[str]:
    expected = f"{s.project}-{s.stack}-network"
    networks = [text(fields(n).get("name")) for n in items(s.props.get("networksAdvanced"))]
    mode = s.props.get("networkMode")
    if networks != [expected] or (mode is not None and text(mode) not in ("", "bridge")):
        yield f"is not (only) on the stack network {expected}. Fix: attach it to the stack network alone"


def _pinned(reference: str) -> Iterator[str]:
    if reference.startswith("sha256:") or "@sha256:" in reference:
        return
    last = reference.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    if not tag or tag == "latest":
        yield f"uses image {reference[:200]} without a pinned tag. Fix: pin a version tag or a digest, never latest"


def _pinned_container_image(s: Subject) -> Iterator[str]:
    yield from _pinned(text(s.props.get("image")))


def _pinned_image(s: Subject) -> Iterator[str]:
    yield from _pinned(text(s.props.get("name")))


# --- other resources ---------------------------------------------------------------------------------------------


def _protected_volume(s: Subject) -> Iterator[str]:
    if not s.protect and s.stack not in items(s.config.get("unprotectedStacks")):
        yield "can be deleted by `pulumi destroy`. Fix: sentineliq:protectData true (protect and retainOnDelete)"


def _not_allowed(s: Subject) -> Iterator[str]:
    yield (
        "is a swarm service or an engine plugin: it runs outside every container rule (and a plugin with the "
        "privileges it asks for). Fix: a docker.Container rendered by ServiceContainer"
    )


def _commands(s: Subject) -> Iterator[str]:
    interpreter = [text(word) for word in items(s.props.get("interpreter"))]
    if s.props.get("interpreter") is not None and (
        len(interpreter) != 2
        or interpreter[0].rsplit("/", 1)[-1] not in ("sh", "bash", "dash")
        or interpreter[1] != "-c"
    ):
        yield "runs its lines with an interpreter the pack cannot read. Fix: /bin/sh -c"
    for line in _command_lines(s.props):
        yield from docker_cli.read(line).problems


def _read_only_root(s: Subject) -> Iterator[str]:
    exempt = s.service is not None and s.service in items(s.config.get("exempt"))
    if not is_set(s.props.get("readOnly")) and not exempt:
        yield (
            "has a writable root filesystem. Fix: read_only with tmpfs for the paths it writes, or list the "
            "service in the policy config's read-only-root.exempt"
        )


def _strings(description: str) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string"}, "description": description}


def _per_service(description: str, items_type: str, default: Mapping[str, list[Any]]) -> dict[str, Any]:
    return {
        "type": "object",
        "additionalProperties": {"type": "array", "items": {"type": items_type}},
        "description": description,
        "default": default,
    }


def _containers(check: Check) -> dict[str, Check]:
    return {CONTAINER: check}


RULES: Sequence[Rule] = (
    Rule(
        "service-identity",
        "Project rule: a container is named <project>-<stack>-<service label>, so a label cannot borrow another "
        "service's allowances (public ports, capabilities, exemptions).",
        _containers(_service_identity),
    ),
    Rule("no-privileged", "CIS 5.5: containers are not privileged.", _containers(_not_privileged), one_shots=True),
    Rule(
        "no-host-namespaces",
        "CIS 5.10, 5.16, 5.17, 5.21, 5.31: no host (or other container's) network, PID, IPC, UTS, user or cgroup "
        "namespace.",
        _containers(_no_host_namespaces),
        one_shots=True,
    ),
    Rule(
        "no-sensitive-mounts",
        "CIS 5.6, 5.32: no sensitive host directory (normalised: /./etc is /etc), never a socket, a credentials "
        "folder, another container's volumes or a bind hidden in a volume's driver options; no file copied there.",
        {CONTAINER: _no_sensitive_mounts, VOLUME: _volume_device, **dict.fromkeys(REMOTE_COPIES, _remote_copy)},
        one_shots=True,
    ),
    Rule(
        "mount-propagation",
        "CIS 5.20: no mount with shared propagation.",
        _containers(_mount_propagation),
        one_shots=True,
    ),
    Rule("no-devices", "CIS 5.18: no host device, device request or GPU.", _containers(_no_devices), one_shots=True),
    Rule(
        "default-cgroup",
        "CIS 5.25: containers run under Docker's cgroup.",
        _containers(_default_cgroup),
        one_shots=True,
    ),
    Rule(
        "drop-capabilities",
        "CIS 5.4: all capabilities are dropped and none is added beyond a default container's (never ALL or "
        "SYS_ADMIN).",
        _containers(_drop_capabilities),
        one_shots=True,
    ),
    Rule(
        "security-profiles",
        "CIS 5.2, 5.3, 5.22: AppArmor, SELinux and seccomp confinement are never disabled or weakened.",
        _containers(_confinement),
        one_shots=True,
    ),
    Rule(
        "no-new-privileges",
        "CIS 5.26: no-new-privileges is set, and never also unset.",
        _containers(_no_new_privileges),
        one_shots=True,
    ),
    Rule(
        "memory-limit",
        "CIS 5.11: every container, one-shots included, has a memory limit.",
        _containers(_memory_limit),
        one_shots=True,
    ),
    Rule(
        "cpu-limit",
        "CIS 5.12: every container, one-shots included, has a CPU limit.",
        _containers(_cpu_limit),
        one_shots=True,
    ),
    Rule(
        "pids-limit",
        "CIS 5.29: a one-shot container has a PIDs limit (a docker.Container has no such input).",
        _containers(_pids_limit),
        one_shots=True,
    ),
    Rule("healthcheck", "CIS 5.27: every container has a health check.", _containers(_healthcheck)),
    Rule(
        "restart-policy",
        "CIS 5.15: restart unless-stopped, or on-failure with 1 to 5 retries; a one-shot never restarts.",
        _containers(_restart_policy),
        one_shots=True,
    ),
    Rule(
        "explicit-port-address",
        "CIS 5.14: every published port is bound to a literal host IP address.",
        _containers(_explicit_port_address),
        one_shots=True,
    ),
    Rule(
        "privileged-ports",
        "CIS 5.8: no host port below 1024, except those privileged-ports.allowed grants a service.",
        _containers(_privileged_ports),
        config={
            "allowed": _per_service("per service, the privileged host ports it may map", "integer", PRIVILEGED_PORTS)
        },
    ),
    Rule(
        "public-ports",
        "CIS 5.9: only the ports public-ports.allowed grants a service (the edge's) listen on a non-loopback "
        "address; nothing is published by publish_all_ports or by a one-shot.",
        _containers(_public_ports),
        one_shots=True,
        config={
            "allowed": _per_service(
                "per service, the container ports it may publish off loopback", "integer", PUBLIC_PORTS
            )
        },
    ),
    Rule(
        "capabilities",
        "CIS 5.4: a service adds back only the capabilities documented for it.",
        _containers(_documented_capabilities),
        EnforcementLevel.ADVISORY,
        {"allowed": _per_service("per service, the capabilities it may add", "string", DOCUMENTED_CAPABILITIES)},
    ),
    Rule(
        "read-only-root",
        "CIS 5.13: a read-only root filesystem where the image allows it.",
        _containers(_read_only_root),
        EnforcementLevel.ADVISORY,
        {"exempt": {**_strings("services allowed a writable root"), "default": READ_ONLY_EXEMPT}},
    ),
    Rule(
        "rolling-app-deploys",
        "Project rule: the server and the client publish no port and are replaced create-before-delete.",
        _containers(_rolling_app),
    ),
    Rule(
        "log-rotation",
        "Project rule: container logs rotate (json-file or local with a max-size above 0).",
        _containers(_log_rotation),
    ),
    Rule(
        "stack-network",
        "CIS 5.30: every container, one-shots included, is on the stack's network alone (never docker0).",
        _containers(_stack_network),
        one_shots=True,
    ),
    Rule(
        "pinned-container-image",
        "Project rule: containers, one-shots included, run a pinned tag, a digest or an image id.",
        _containers(_pinned_container_image),
        one_shots=True,
    ),
    Rule("pinned-images", "Project rule: images are pinned to a tag or digest, never latest.", {IMAGE: _pinned_image}),
    Rule(
        "protected-volumes",
        "Project rule: stateful volumes are protected (protectData), except in the listed stacks.",
        {VOLUME: _protected_volume},
        config={"unprotectedStacks": {**_strings("stacks whose data is disposable"), "default": ["dev"]}},
    ),
    Rule(
        "containers-only",
        "CIS 5.1: no swarm service (swarm mode stays off) and no engine plugin: both escape the container rules.",
        {SWARM_SERVICE: _not_allowed, PLUGIN: _not_allowed},
    ),
    Rule(
        "one-shot-commands",
        "CIS 5.23, 5.24: a one-shot command line runs only docker and shell built-ins, with flags the pack can "
        "read; never docker exec --privileged or as root.",
        {LOCAL_COMMAND: _commands, REMOTE_COMMAND: _commands},
    ),
)
