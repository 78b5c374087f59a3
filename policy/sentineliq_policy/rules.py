"""The rules of the SentinelIQ policy pack, importable without starting a policy server.

Each rule is data: a name, the CIS Docker Benchmark 1.6 control it enforces (where there is one), its
enforcement, the resource type it looks at, and a check that yields one problem per violation. Messages name the
resource and the fix and print only names, ports, addresses and paths, never a property that may hold a secret
(environment, uploads, registry auth).

Mandatory: security and data rules. Advisory, relaxable per service through the policy config: capabilities
(5.4) and a read-only root filesystem (5.13), where an image may need an exception.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

CONTAINER = "docker:index/container:Container"
VOLUME = "docker:index/volume:Volume"
IMAGE = "docker:index/remoteImage:RemoteImage"
SERVICE_LABEL = "io.sentineliq.service"

EDGE = "edge"
"""The only service that may listen on a non-loopback host address: the reverse proxy in front of the app."""
APP_SERVICES = ("server", "client")
"""Behind the edge and replaced create-before-delete: they publish no port and set delete_before_replace=False."""
LOOPBACK = ("127.0.0.1", "::1", "localhost")

SENSITIVE_PATHS = ("/", "/boot", "/dev", "/etc", "/lib", "/proc", "/sys", "/usr", "/var/lib/docker", "/run", "/var/run")
DOCKER_SOCKET = "docker.sock"

DOCUMENTED_CAPABILITIES: dict[str, list[str]] = {
    "postgres": ["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"],
    "redis": ["CHOWN", "DAC_OVERRIDE", "SETGID", "SETUID"],
    "client": ["CHOWN", "DAC_OVERRIDE", "SETGID", "SETUID"],
}
"""The capability adds documented at each service's spec in sentinel_infra (a test keeps the two equal)."""

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
    """What a rule sees of one resource."""

    name: str
    urn: str
    props: Mapping[str, Any]
    protect: bool
    config: Mapping[str, Any]
    delete_before_replace: bool | None = None
    """As the program set it; None leaves the provider's choice (pulumi-docker: delete first)."""

    @property
    def service(self) -> str:
        labels = {item.get("label"): item.get("value") for item in self.props.get("labels") or []}
        return str(labels.get(SERVICE_LABEL) or self.name)

    @property
    def stack(self) -> str:
        return self.urn.split("::")[0].removeprefix("urn:pulumi:")

    @property
    def project(self) -> str:
        return self.urn.split("::")[1]


Check = Callable[[Subject], Iterator[str]]


@dataclass(frozen=True)
class Rule:
    name: str
    description: str
    resource_type: str
    check: Check
    enforcement: EnforcementLevel = EnforcementLevel.MANDATORY
    config: Mapping[str, Mapping[str, Any]] | None = None
    """JSON schema of the rule's options, each with its default."""

    def defaults(self) -> dict[str, Any]:
        return {key: schema["default"] for key, schema in (self.config or {}).items()}

    def problems(self, subject: Subject) -> list[str]:
        return [f"{subject.name} ({subject.service}): {problem}" for problem in self.check(subject)]

    def policy(self) -> ResourceValidationPolicy:
        def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
            if args.resource_type != self.resource_type:
                return
            for problem in self.problems(subject_of(args, self)):
                report(problem, None)

        schema = PolicyConfigSchema(properties={k: dict(v) for k, v in self.config.items()}) if self.config else None
        return ResourceValidationPolicy(
            name=self.name,
            description=self.description,
            validate=validate,
            enforcement_level=self.enforcement,
            config_schema=schema,
        )


def subject_of(args: ResourceValidationArgs, rule: Rule) -> Subject:
    config = {**rule.defaults(), **dict(args.get_config())}
    return Subject(
        name=args.name,
        urn=args.urn,
        props=args.props,
        protect=args.opts.protect,
        config=config,
        delete_before_replace=args.opts.delete_before_replace,
    )


# --- container rules ---------------------------------------------------------------------------------------------


def _not_privileged(s: Subject) -> Iterator[str]:
    if s.props.get("privileged"):
        yield "runs privileged. Fix: remove privileged=True; add the single capability it needs instead"


def _no_host_namespaces(s: Subject) -> Iterator[str]:
    for prop, namespace in (("networkMode", "network"), ("pidMode", "PID"), ("ipcMode", "IPC"), ("utsMode", "UTS")):
        if s.props.get(prop) == "host":
            yield f"shares the host's {namespace} namespace. Fix: remove {prop}='host'"


def _is_sensitive(path: str) -> bool:
    clean = path.rstrip("/") or "/"
    if DOCKER_SOCKET in clean:
        return True
    return any(clean == p or (p != "/" and clean.startswith(p + "/")) for p in SENSITIVE_PATHS)


def _no_sensitive_mounts(s: Subject) -> Iterator[str]:
    sources = [v.get("hostPath") for v in s.props.get("volumes") or []]
    sources += [m.get("source") for m in s.props.get("mounts") or [] if m.get("type") == "bind"]
    for source in sources:
        if source and _is_sensitive(str(source)):
            what = "the Docker socket" if DOCKER_SOCKET in str(source) else "a sensitive host directory"
            yield f"mounts {what} ({source}). Fix: use a named volume or a dedicated folder"


def _memory_limit(s: Subject) -> Iterator[str]:
    if not s.props.get("memory"):
        yield "has no memory limit. Fix: set memory (sentineliq:resources.<service>.memoryMb)"


def _cpu_limit(s: Subject) -> Iterator[str]:
    if not (s.props.get("cpus") or s.props.get("cpuShares") or s.props.get("cpuQuota")):
        yield "has no CPU limit. Fix: set cpus (sentineliq:resources.<service>.cpus)"


def _no_new_privileges(s: Subject) -> Iterator[str]:
    options = [str(o) for o in s.props.get("securityOpts") or []]
    if not any(o in ("no-new-privileges", "no-new-privileges:true", "no-new-privileges=true") for o in options):
        yield "may gain privileges through setuid binaries. Fix: add security_opts=['no-new-privileges:true']"


def _healthcheck(s: Subject) -> Iterator[str]:
    tests = (s.props.get("healthcheck") or {}).get("tests") or []
    if not tests or tests[0] == "NONE":
        yield "has no health check. Fix: give its spec a HealthCheck that proves readiness"


def _restart_policy(s: Subject) -> Iterator[str]:
    restart = s.props.get("restart")
    retries = int(s.props.get("maxRetryCount") or 0)
    if restart == "unless-stopped" or (restart == "on-failure" and 0 < retries <= 5):
        return
    yield f"restart policy {restart or 'no'} is not allowed. Fix: unless-stopped, or on-failure with 1 to 5 retries"


def _explicit_port_address(s: Subject) -> Iterator[str]:
    for port in s.props.get("ports") or []:
        if not port.get("ip"):
            yield (
                f"publishes port {port.get('internal')} without a host address (all interfaces, IPv4 and IPv6). "
                "Fix: set ip"
            )


def _capabilities(s: Subject) -> Iterator[str]:
    capabilities = s.props.get("capabilities") or {}
    if "ALL" not in (capabilities.get("drops") or []):
        yield "keeps Docker's default capabilities. Fix: drop ALL and add back what the image needs"
    allowed = set((s.config.get("allowed") or {}).get(s.service, []))
    extra = sorted(set(capabilities.get("adds") or []) - allowed)
    if extra:
        yield (
            f"adds undocumented capabilities {', '.join(extra)}. Fix: document them at the spec and in the "
            "policy config's capabilities.allowed"
        )


def _read_only_root(s: Subject) -> Iterator[str]:
    if not s.props.get("readOnly") and s.service not in (s.config.get("exempt") or []):
        yield (
            "has a writable root filesystem. Fix: read_only with tmpfs for the paths it writes, or list the "
            "service in the policy config's read-only-root.exempt"
        )


def _public_ports(s: Subject) -> Iterator[str]:
    for port in s.props.get("ports") or []:
        if port.get("ip") not in LOOPBACK and s.service != EDGE:
            where = port.get("ip") or "all interfaces"
            yield f"exposes port {port.get('internal')} on {where}. Fix: bind it to 127.0.0.1; the edge alone is public"


def _rolling_app(s: Subject) -> Iterator[str]:
    if s.service not in APP_SERVICES:
        return
    for port in s.props.get("ports") or []:
        yield (
            f"publishes port {port.get('internal')}: a second container could not start beside it during a deploy. "
            "Fix: publish nothing; the edge routes to it"
        )
    if s.delete_before_replace is not False:
        yield (
            "is replaced delete-before-replace (pulumi-docker's default unless set): every deploy drops requests. "
            "Fix: delete_before_replace=False, no fixed name, no published port"
        )


def _log_rotation(s: Subject) -> Iterator[str]:
    driver = s.props.get("logDriver")
    options = s.props.get("logOpts") or {}
    if driver not in ("json-file", "local") or not options.get("max-size"):
        yield "has no log rotation. Fix: log_driver json-file or local with log_opts max-size (and max-file)"


def _stack_network(s: Subject) -> Iterator[str]:
    expected = f"{s.project}-{s.stack}-network"
    networks = [n.get("name") for n in s.props.get("networksAdvanced") or []]
    if networks != [expected] or s.props.get("networkMode") not in (None, "", "bridge"):
        yield f"is not (only) on the stack network {expected}. Fix: attach it to the stack network alone"


def _pinned_container_image(s: Subject) -> Iterator[str]:
    yield from _pinned(str(s.props.get("image") or ""))


# --- other resources ---------------------------------------------------------------------------------------------


def _pinned(reference: str) -> Iterator[str]:
    if reference.startswith("sha256:") or "@sha256:" in reference:
        return
    last = reference.rsplit("/", 1)[-1]
    tag = last.split(":", 1)[1] if ":" in last else ""
    if not tag or tag == "latest":
        yield f"uses image {reference} without a pinned tag. Fix: pin a version tag or a digest, never latest"


def _pinned_image(s: Subject) -> Iterator[str]:
    yield from _pinned(str(s.props.get("name") or ""))


def _protected_volume(s: Subject) -> Iterator[str]:
    if not s.protect and s.stack not in (s.config.get("unprotectedStacks") or []):
        yield "can be deleted by `pulumi destroy`. Fix: sentineliq:protectData true (protect and retainOnDelete)"


def _strings(description: str) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string"}, "description": description}


RULES: Sequence[Rule] = (
    Rule("no-privileged", "CIS 5.5: containers are not privileged.", CONTAINER, _not_privileged),
    Rule(
        "no-host-namespaces",
        "CIS 5.10, 5.16, 5.17, 5.21: no host network, PID, IPC or UTS namespace.",
        CONTAINER,
        _no_host_namespaces,
    ),
    Rule(
        "no-sensitive-mounts",
        "CIS 5.6, 5.32: no sensitive host directory, never the Docker socket.",
        CONTAINER,
        _no_sensitive_mounts,
    ),
    Rule("memory-limit", "CIS 5.11: every container has a memory limit.", CONTAINER, _memory_limit),
    Rule("cpu-limit", "CIS 5.12: every container has a CPU limit.", CONTAINER, _cpu_limit),
    Rule("no-new-privileges", "CIS 5.26: no-new-privileges is set.", CONTAINER, _no_new_privileges),
    Rule("healthcheck", "CIS 5.27: every container has a health check.", CONTAINER, _healthcheck),
    Rule(
        "restart-policy",
        "CIS 5.15: restart unless-stopped, or on-failure with at most 5 retries.",
        CONTAINER,
        _restart_policy,
    ),
    Rule(
        "explicit-port-address",
        "CIS 5.14: every published port is bound to an explicit host address.",
        CONTAINER,
        _explicit_port_address,
    ),
    Rule(
        "capabilities",
        "CIS 5.4: capabilities are dropped; only documented ones are added back.",
        CONTAINER,
        _capabilities,
        EnforcementLevel.ADVISORY,
        {
            "allowed": {
                "type": "object",
                "additionalProperties": _strings("capabilities"),
                "description": "per service, the capabilities it may add",
                "default": DOCUMENTED_CAPABILITIES,
            }
        },
    ),
    Rule(
        "read-only-root",
        "CIS 5.13: a read-only root filesystem where the image allows it.",
        CONTAINER,
        _read_only_root,
        EnforcementLevel.ADVISORY,
        {"exempt": {**_strings("services allowed a writable root"), "default": READ_ONLY_EXEMPT}},
    ),
    Rule("public-ports", "Only the edge may listen on a non-loopback address.", CONTAINER, _public_ports),
    Rule(
        "rolling-app-deploys",
        "The server and the client publish no port and are replaced create-before-delete.",
        CONTAINER,
        _rolling_app,
    ),
    Rule("log-rotation", "Container logs rotate (json-file or local with max-size).", CONTAINER, _log_rotation),
    Rule("stack-network", "Every container is on the stack's network.", CONTAINER, _stack_network),
    Rule(
        "pinned-container-image",
        "Containers run a pinned tag, a digest or an image id.",
        CONTAINER,
        _pinned_container_image,
    ),
    Rule("pinned-images", "Images are pinned to a tag or digest, never latest.", IMAGE, _pinned_image),
    Rule(
        "protected-volumes",
        "Stateful volumes are protected (protectData), except in the listed stacks.",
        VOLUME,
        _protected_volume,
        EnforcementLevel.MANDATORY,
        {"unprotectedStacks": {**_strings("stacks whose data is disposable"), "default": ["dev"]}},
    ),
)


def policies() -> list[ResourceValidationPolicy]:
    return [rule.policy() for rule in RULES]
