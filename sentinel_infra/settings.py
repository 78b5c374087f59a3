"""The stack configuration: every `sentineliq:` key, its rule and its fix, validated once.

The `Settings` model below *is* the schema. A key is one field: its alias is the config key, its type is the
rule, `SecretStr` marks a key that must be set with `--secret`, and `key(...)` carries the description and the
example used in the fix hint and in the README's config reference. Nothing else needs to change to add a key.

`load_settings()` reads the runtime's config map (the engine and the test mocks fill the same map), collects every
problem of the configuration and raises them together as one `pulumi.RunError`. A secret's value never reaches a
message: pydantic is asked for errors without their input, and a secret is only ever described by its length.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

import pulumi
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo

NAMESPACE = "sentineliq"

ServiceName = Literal["postgres", "redis", "minio", "elasticsearch", "logstash", "kibana", "server", "client"]
SERVICE_NAMES: tuple[str, ...] = get_args(ServiceName)

_GENERATE_PASSWORD = '"$(openssl rand -base64 24)"'  # noqa: S105 - a shell snippet that generates one
_GENERATE_KEY = '"$(openssl rand -hex 32)"'


def key(description: str, *, example: str, default: Any = ...) -> Any:
    """A config key: its description and an example value, as shown in fix hints and in the README."""
    return Field(default, description=description, json_schema_extra={"example": example})


def _printable(value: SecretStr) -> SecretStr:
    # Secrets travel inside URLs, curl configs and stdin lines: a control character would break them.
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value.get_secret_value()):
        raise ValueError("must not contain control characters (newlines, tabs, ...)")
    return value


Password = Annotated[SecretStr, Field(min_length=12, max_length=256), AfterValidator(_printable)]
LongSecret = Annotated[SecretStr, Field(min_length=32, max_length=1024), AfterValidator(_printable)]
Port = Annotated[int, Field(ge=1, le=65535)]


def _private_key(value: SecretStr) -> SecretStr:
    text = value.get_secret_value().strip()
    if not (text.startswith("-----BEGIN ") and "PRIVATE KEY-----" in text):
        raise ValueError("must be a PEM or OpenSSH private key (-----BEGIN ... PRIVATE KEY-----)")
    return value


def _sentry_dsn(value: SecretStr) -> SecretStr:
    parts = urlsplit(value.get_secret_value())
    if parts.scheme not in ("http", "https") or not parts.username or not parts.hostname:
        raise ValueError("must be a Sentry DSN, https://<key>@<host>/<project>")
    return value


PrivateKey = Annotated[SecretStr, Field(max_length=16384), AfterValidator(_private_key)]
ImageTag = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=False)


@dataclass(frozen=True)
class Limits:
    """The CPU and memory limits a container runs with."""

    cpus: float
    memory_mb: int


class LimitsOverride(_Section):
    """A stack's override of a service's default limits (either value may be left out)."""

    cpus: float | None = key("CPU cores the container may use (0.05 to 64)", example="0.5", default=None)
    memory_mb: int | None = key(
        "memory limit in MiB (64 to 1048576); also the swap limit, so no swap", example="512", default=None
    )

    @field_validator("cpus")
    @classmethod
    def _cpus_range(cls, value: float | None) -> float | None:
        if value is not None and not 0.05 <= value <= 64:
            raise ValueError("must be between 0.05 and 64 CPU cores")
        return value

    @field_validator("memory_mb")
    @classmethod
    def _memory_range(cls, value: int | None) -> int | None:
        if value is not None and not 64 <= value <= 1_048_576:
            raise ValueError("must be between 64 and 1048576 MiB")
        return value

    def over(self, default: Limits) -> Limits:
        return Limits(
            cpus=default.cpus if self.cpus is None else self.cpus,
            memory_mb=default.memory_mb if self.memory_mb is None else self.memory_mb,
        )


class HostPorts(_Section):
    """Host ports of the published services (change them to run two stacks on one host)."""

    client: Port = key("web client (public, on publicBindAddress)", example="3000", default=3000)
    server: Port = key("API server (public, on publicBindAddress)", example="3001", default=3001)
    kibana: Port = key("Kibana (127.0.0.1 only)", example="5601", default=5601)
    minio_console: Port = key("MinIO console (127.0.0.1 only)", example="9001", default=9001)

    @field_validator("server", "kibana", "minio_console")
    @classmethod
    def _distinct(cls, value: int, info: Any) -> int:
        taken = {name: port for name, port in info.data.items() if port == value}
        if taken:
            raise ValueError(f"port {value} is already used by hostPorts.{to_camel(next(iter(taken)))}")
        return value


SYSTEM_DIRECTORIES = ("/bin", "/boot", "/dev", "/etc", "/lib", "/proc", "/run", "/sbin", "/sys", "/usr", "/var/run")


def _backup_path(value: str) -> str:
    if not value.startswith("/") or "/../" in f"{value}/" or any(ch.isspace() for ch in value):
        raise ValueError("must be an absolute path on the Docker host, without '..' or spaces")
    path = value.rstrip("/") or "/"
    if path in ("/", "/var", "/home", "/root", "/tmp") or any(  # noqa: S108 - refusing them
        path == system or path.startswith(system + "/") for system in SYSTEM_DIRECTORIES
    ):
        raise ValueError("must be a dedicated folder, not a system directory")
    return path


VolumeName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")]


class VolumeNames(_Section):
    """Docker names of the data volumes, to adopt existing ones (a compose project's `sentineliq_postgres-data`)."""

    postgres_data: VolumeName | None = key("PostgreSQL's data volume", example="sentineliq_postgres-data", default=None)
    redis_data: VolumeName | None = key("Redis's data volume", example="sentineliq_redis-data", default=None)
    minio_data: VolumeName | None = key("MinIO's data volume", example="sentineliq_minio-data", default=None)
    elasticsearch_data: VolumeName | None = key(
        "Elasticsearch's data volume", example="sentineliq_elasticsearch-data", default=None
    )

    def of(self, volume: str) -> str | None:
        """The configured name of a volume key such as `postgres-data`, if any."""
        value = getattr(self, volume.replace("-", "_"))
        return None if value is None else str(value)


class BackupSettings(_Section):
    """The daily backup jobs (one per data service)."""

    enabled: bool = key("run the daily backup jobs", example="true", default=True)
    time: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] = key(
        "time of day (UTC, HH:MM) the jobs run", example="02:30", default="02:30"
    )
    retention_days: int = key("runs older than this many days are removed (never the newest)", example="30", default=30)
    path: Annotated[str, AfterValidator(_backup_path)] | None = key(
        "folder on the Docker host that receives the runs; unset: /var/backups/<project>-<stack>",
        example="/srv/backups/sentineliq",
        default=None,
    )

    @field_validator("retention_days")
    @classmethod
    def _retention_range(cls, value: int) -> int:
        if not 1 <= value <= 3650:
            raise ValueError("must be between 1 and 3650 days")
        return value


def _docker_host(value: str) -> str:
    if re.fullmatch(r"unix:///\S+", value):
        return value
    match = re.fullmatch(r"ssh://([A-Za-z0-9._-]+)@([A-Za-z0-9.-]+|\[[0-9A-Fa-f:]+\])(?::(\d{1,5}))?", value)
    if match is None:
        raise ValueError("must be unix:///path/to/docker.sock or ssh://user@host[:port]")
    if match.group(3) is not None and not 1 <= int(match.group(3)) <= 65535:
        raise ValueError("the SSH port must be between 1 and 65535")
    return value


def _ip_address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError("must be an IPv4 or IPv6 address, such as 0.0.0.0 or 127.0.0.1") from None


def _registry(value: str) -> str:
    if not re.fullmatch(r"[a-z0-9.-]+(:\d{1,5})?(/[a-z0-9._-]+)*", value):
        raise ValueError("must be a lowercase registry path such as ghcr.io/killsearch")
    return value


def _image_tag(value: str) -> str:
    if value == "latest":
        raise ValueError("must pin a tag (main, sha-a1b2c3d, 1.2.0), never latest")
    return value


def _minio_user(value: str) -> str:
    if len(value) < 3 or "=" in value or "," in value:
        raise ValueError("must have at least 3 characters and no '=' or ','")
    if value == "minioadmin":
        raise ValueError("must not be minioadmin, MinIO's public default")
    return value


def _url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an absolute http(s) URL")
    return value.rstrip("/")


class Settings(_Section):
    """Every key of the `sentineliq:` config namespace."""

    server_tag: Annotated[ImageTag, AfterValidator(_image_tag)] = key(
        "image tag of the API server (saas-server), the compose file's SERVER_TAG", example="sha-a1b2c3d"
    )
    client_tag: Annotated[ImageTag, AfterValidator(_image_tag)] = key(
        "image tag of the web client (saas-client), the compose file's CLIENT_TAG", example="sha-a1b2c3d"
    )
    image_registry: Annotated[str, AfterValidator(_registry)] = key(
        "registry path where saas-server and saas-client live",
        example="ghcr.io/killsearch",
        default="ghcr.io/killsearch",
    )
    docker_host: Annotated[str, AfterValidator(_docker_host)] | None = key(
        "the Docker engine to deploy to; unset means the local engine (DOCKER_HOST or its socket)",
        example="ssh://deploy@docker-1.example.com",
        default=None,
    )
    public_bind_address: Annotated[str, AfterValidator(_ip_address)] = key(
        "host address the public ports (client, server) bind to",
        example="127.0.0.1",
        default="0.0.0.0",  # noqa: S104 - the public ports are meant to be reachable; see publicBindAddress
    )
    host_ports: HostPorts = key("host ports of the published services", example="", default=HostPorts())
    volume_names: VolumeNames = key(
        "existing Docker volumes to use; unset: <project>-<stack>-<volume>", example="", default=VolumeNames()
    )
    protect_data: bool = key(
        "stateful volumes are protected and retained on delete: `pulumi destroy` never erases data",
        example="true",
        default=True,
    )
    postgres_password: Password = key(
        "password of the PostgreSQL `sentineliq` role (12+ characters)", example=_GENERATE_PASSWORD
    )
    redis_password: Password = key("Redis `requirepass` password (12+ characters)", example=_GENERATE_PASSWORD)
    minio_root_user: Annotated[str, AfterValidator(_minio_user)] = key(
        "MinIO root user (3+ characters, no '=' or ',', never minioadmin)",
        example="sentineliq",
        default="sentineliq",
    )
    minio_root_password: Password = key("MinIO root password (12+ characters)", example=_GENERATE_PASSWORD)
    elastic_password: Password = key(
        "password of Elasticsearch's `elastic` superuser (12+ characters)", example=_GENERATE_PASSWORD
    )
    kibana_system_password: Password = key(
        "password of `kibana_system`, Kibana's own identity (12+ characters)", example=_GENERATE_PASSWORD
    )
    logstash_password: Password = key(
        "password of `logstash_writer`, Logstash's write-only identity (12+ characters)", example=_GENERATE_PASSWORD
    )
    kibana_encryption_key: LongSecret = key(
        "Kibana's saved-object encryption key (32+ characters)", example=_GENERATE_KEY
    )
    jwt_secret: LongSecret = key("the API server's JWT signing secret (32+ characters)", example=_GENERATE_KEY)
    sentry_dsn: Annotated[SecretStr, AfterValidator(_sentry_dsn)] | None = key(
        "Sentry DSN of the API server; unset disables error tracking",
        example="'https://<key>@o0.ingest.sentry.io/<project>'",
        default=None,
    )
    registry_username: str | None = key(
        "user for pulling private images from imageRegistry (with registryToken)", example="ci-bot", default=None
    )
    registry_token: Annotated[SecretStr, AfterValidator(_printable)] | None = key(
        "token for pulling private images (with registryUsername), e.g. a read:packages PAT",
        example="<token>",
        default=None,
    )
    ssh_private_key: PrivateKey | None = key(
        "private key the deploy commands use on an ssh:// dockerHost (required then)",
        example="< ~/.ssh/id_ed25519",
        default=None,
    )
    app_url: Annotated[str, AfterValidator(_url)] = key(
        "public URL of the web client (the server's WASP_WEB_CLIENT_URL, for CORS and links)",
        example="https://app.sentineliq.com",
        default="http://localhost:3000",
    )
    api_url: Annotated[str, AfterValidator(_url)] = key(
        "public URL of the API server (WASP_SERVER_URL)",
        example="https://api.sentineliq.com",
        default="http://localhost:3001",
    )
    s3_bucket: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")] = key(
        "MinIO bucket of the API server's files", example="sentineliq", default="sentineliq"
    )
    backup: BackupSettings = key("daily backups of PostgreSQL, Redis and MinIO", example="", default=BackupSettings())
    resources: dict[ServiceName, LimitsOverride] = key(
        "per-service overrides of CPU and memory limits, e.g. resources.postgres.memoryMb",
        example="4096",
        default={},
    )

    @property
    def ssh(self) -> SshTarget | None:
        """The SSH endpoint when the Docker engine is remote (`ssh://user@host[:port]`)."""
        if self.docker_host is None or not self.docker_host.startswith("ssh://"):
            return None
        parts = urlsplit(self.docker_host)
        return SshTarget(user=parts.username or "", host=parts.hostname or "", port=parts.port or 22)

    def limits(self, service: ServiceName, default: Limits) -> Limits:
        override = self.resources.get(service)
        return default if override is None else override.over(default)


@dataclass(frozen=True)
class SshTarget:
    user: str
    host: str
    port: int


# --- loading and reporting -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One broken rule: the key (and path inside a structured key), the rule, and the command that fixes it."""

    key: str
    rule: str
    fix: str

    def render(self) -> str:
        # A key from the stack file may hold anything; quote one that is not a plain name.
        key = self.key if re.fullmatch(r"[\w.<>\[\]-]+", self.key) else json.dumps(self.key)
        return f"{NAMESPACE}:{key}: {self.rule}\n      fix: {self.fix}"


def _fields() -> dict[str, FieldInfo]:
    return {str(field.alias): field for field in Settings.model_fields.values()}


def is_secret(info: FieldInfo) -> bool:
    return SecretStr in (info.annotation, *get_args(info.annotation)) or any(
        SecretStr in get_args(arg) for arg in get_args(info.annotation)
    )


def nested_model(info: FieldInfo) -> type[BaseModel] | None:
    """The model of a structured key (an object, or a map of objects such as `resources`)."""
    for candidate in (info.annotation, *get_args(info.annotation)[-1:]):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def example_of(info: FieldInfo) -> str:
    extra = info.json_schema_extra
    return str(extra["example"]) if isinstance(extra, dict) else "<value>"


def _fix(path: str) -> str:
    """The `pulumi config set` command that sets the key (or nested path) to a valid example."""
    top, _, rest = path.partition(".")
    info = _fields().get(top)
    if info is None:
        return f"pulumi config rm {NAMESPACE}:{top}"
    if rest:
        leaf = rest.rsplit(".", 1)[-1]
        model = nested_model(info)
        nested = {} if model is None else {str(f.alias): f for f in model.model_fields.values()}
        example = example_of(nested[leaf]) if leaf in nested else "<value>"
        return f"pulumi config set --path '{NAMESPACE}:{path}' {example}"
    flag = "--secret " if is_secret(info) else ""
    return f"pulumi config set {flag}{NAMESPACE}:{top} {example_of(info)}"


def _runtime_config() -> tuple[dict[str, str], set[str]]:
    """The stack's `sentineliq:` keys (without the namespace) and the subset that is stored as secret."""
    prefix = f"{NAMESPACE}:"
    config = {**pulumi.runtime.get_config_env(), **pulumi.runtime.config.CONFIG.get()}
    values = {k.removeprefix(prefix): str(v) for k, v in config.items() if k.startswith(prefix)}
    env_secrets = set(pulumi.runtime.get_config_secret_keys_env())
    secrets = {
        name for name in values if pulumi.runtime.is_config_secret(prefix + name) or prefix + name in env_secrets
    }
    return values, secrets


def _decode(info: FieldInfo, raw: str) -> Any:
    """Config values arrive as strings; structured keys (objects) arrive as JSON text."""
    return json.loads(raw) if nested_model(info) is not None else raw


def _describe(error: Mapping[str, Any]) -> Problem:
    loc = [str(part) for part in error["loc"] if part != "[key]"]
    path = ".".join(loc)
    ctx = error.get("ctx", {})
    kind = error["type"]
    if kind == "missing":
        return Problem(path, "is required but not set", _fix(path))
    if kind in ("extra_forbidden", "literal_error") and len(loc) > 1:
        # An unknown field or service name inside a structured key: the fix is to remove it.
        rule = "is not a known field" if kind == "extra_forbidden" else str(error["msg"])
        return Problem(path, rule, f"pulumi config rm --path '{NAMESPACE}:{path}'")
    if kind in ("too_short", "string_too_short"):
        rule = f"must have at least {ctx['min_length']} characters"
    elif kind in ("too_long", "string_too_long"):
        rule = f"must have at most {ctx['max_length']} characters"
    else:
        rule = str(error["msg"]).removeprefix("Value error, ")
    if "actual_length" in ctx:
        rule = f"{rule} (the value set has {ctx['actual_length']})"
    return Problem(path, rule, _fix(path))


def collect_problems(values: Mapping[str, str], secrets: set[str]) -> tuple[list[Problem], Settings | None]:
    """Every problem of a configuration, and the settings when there is none."""
    fields = _fields()
    problems: list[Problem] = []
    data: dict[str, Any] = {}
    for name, raw in sorted(values.items()):
        info = fields.get(name)
        if info is None:
            close = difflib.get_close_matches(name, fields, n=1, cutoff=0.6) or difflib.get_close_matches(
                name.lower(), {f.lower(): f for f in fields}, n=1, cutoff=0.6
            )
            hint = f"; did you mean {NAMESPACE}:{_case(close[0], fields)}?" if close else ""
            problems.append(
                Problem(name, f"is not a known setting{hint}", f"pulumi config rm {shlex.quote(f'{NAMESPACE}:{name}')}")
            )
            continue
        if is_secret(info) and name not in secrets:
            problems.append(Problem(name, "is a secret but is stored in plain text", _fix(name)))
        try:
            data[name] = _decode(info, raw)
        except (ValueError, RecursionError):  # malformed, too deep, or a number too long to convert
            problems.append(Problem(name, "must be an object (set it with --path)", _fix(f"{name}.<field>")))
    problems.extend(_cross_key_problems(data))
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems.extend(_describe(err) for err in exc.errors(include_input=False, include_url=False))
        return problems, None
    return problems, (settings if not problems else None)


def _case(match: str, fields: Mapping[str, FieldInfo]) -> str:
    return next((f for f in fields if f.lower() == match.lower()), match)


def _cross_key_problems(data: Mapping[str, Any]) -> list[Problem]:
    """Rules that tie keys together; they only look at which keys are set, so they run whatever else fails."""
    problems = []
    for present, missing in (("registryUsername", "registryToken"), ("registryToken", "registryUsername")):
        if present in data and missing not in data:
            problems.append(Problem(missing, f"is required when {NAMESPACE}:{present} is set", _fix(missing)))
    if str(data.get("dockerHost", "")).startswith("ssh://") and "sshPrivateKey" not in data:
        problems.append(Problem("sshPrivateKey", "is required when dockerHost is ssh://...", _fix("sshPrivateKey")))
    return problems


def load_settings() -> Settings:
    """Validate the stack's configuration once; raise every problem together as a `pulumi.RunError`."""
    values, secrets = _runtime_config()
    problems, settings = collect_problems(values, secrets)
    if settings is None:
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        body = "\n".join(f"  - {problem.render()}" for problem in problems)
        stack = pulumi.get_stack()
        raise pulumi.RunError(
            f"the configuration of stack '{stack}' has {count}:\n{body}\n"
            f"(run the commands in the stack's directory; `pulumi config` lists what is set)"
        )
    return settings
