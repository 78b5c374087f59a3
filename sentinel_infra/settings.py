"""The stack configuration: every `sentineliq:` key, its rule and its fix, validated once.

The `Settings` model below *is* the schema. A key is one field: its alias is the config key, its type is the
rule, `SecretStr` marks a key that must be set with `--secret`, and `key(...)` carries the description and the
example used in the fix hint and in the README's config reference. Nothing else needs to change to add a key.

`load_settings()` reads the runtime's config map (the engine and the test mocks fill the same map), collects every
problem of the configuration and raises them together as one `pulumi.RunError`. A secret's value never reaches a
message: pydantic is asked for errors without their input, and a secret is only ever described by its length.
"""

from __future__ import annotations

import contextlib
import difflib
import ipaddress
import itertools
import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

import pulumi
import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo

from .docker.provider_forms import cpus_input
from .docker.ssh import parse_host_key
from .specs.model import Limits

NAMESPACE = "sentineliq"

MINIO_APP_USER = "sentineliq-app"
"""The MinIO user the API server connects as, limited to `s3Bucket` (created by the minio-setup step)."""

ServiceName = Literal["postgres", "redis", "minio", "elasticsearch", "logstash", "kibana", "server", "client", "edge"]
SERVICE_NAMES: tuple[str, ...] = get_args(ServiceName)

_GENERATE_PASSWORD = '"$(openssl rand -base64 24)"'  # noqa: S105 - a shell snippet that generates one
_GENERATE_KEY = '"$(openssl rand -hex 32)"'


def key(description: str, *, example: str, default: Any = ...) -> Any:
    """A config key: its description and an example value, as shown in fix hints and in the README."""
    return Field(default, description=description, json_schema_extra={"example": example})


def _has_control(text: str) -> bool:
    """C0 and C1 control characters, DEL and the Unicode line and paragraph separators."""
    return any(ord(ch) < 32 or 127 <= ord(ch) < 160 or ch in "\u2028\u2029" for ch in text)


def _printable(value: SecretStr) -> SecretStr:
    # Secrets travel inside URLs, curl configs and stdin lines: a control character would break them.
    if _has_control(value.get_secret_value()):
        raise ValueError("must not contain control characters (newlines, tabs, ...)")
    return value


def _no_edge_spaces(value: SecretStr) -> SecretStr:
    # Twelve spaces are twelve characters but no password; an edge space is lost by many a tool on the way.
    text = value.get_secret_value()
    if text != text.strip():
        raise ValueError("must not start or end with a space")
    return value


Password = Annotated[
    SecretStr, Field(min_length=12, max_length=256), AfterValidator(_printable), AfterValidator(_no_edge_spaces)
]
LongSecret = Annotated[
    SecretStr, Field(min_length=32, max_length=1024), AfterValidator(_printable), AfterValidator(_no_edge_spaces)
]


def _number(value: Any) -> Any:
    """A number or its decimal text; a JSON boolean is not a number (`true` must not become 1)."""
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    if isinstance(value, str) and not re.fullmatch(r"[0-9]+(\.[0-9]+)?", value):
        raise ValueError("must be a decimal number")
    return value


def _boolean(value: Any) -> Any:
    """`true` or `false` only, as Pulumi's own `config.get_bool` reads them (pydantic would take yes, on, 1...)."""
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise ValueError("must be true or false")


Integer = Annotated[int, BeforeValidator(_number)]
Decimal = Annotated[float, BeforeValidator(_number)]
Boolean = Annotated[bool, BeforeValidator(_boolean)]
Port = Annotated[Integer, Field(ge=1, le=65535)]


def _private_key(value: SecretStr) -> SecretStr:
    text = value.get_secret_value().strip()
    if not (text.startswith("-----BEGIN ") and "PRIVATE KEY-----" in text):
        raise ValueError("must be a PEM or OpenSSH private key (-----BEGIN ... PRIVATE KEY-----)")
    return value


def _sentry_dsn(value: SecretStr) -> SecretStr:
    _printable(value)
    parts = urlsplit(value.get_secret_value())
    if parts.scheme not in ("http", "https") or not parts.username or not parts.hostname:
        raise ValueError("must be a Sentry DSN, https://<key>@<host>/<project>")
    return value


def _previous_keys(value: SecretStr) -> SecretStr:
    # Never echo the value: the messages only describe its shape.
    try:
        keys = json.loads(value.get_secret_value())
    except ValueError:
        raise ValueError('must be a JSON list of earlier keys, such as ["<previous key>"]') from None
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
        raise ValueError('must be a non-empty JSON list of strings, such as ["<previous key>"]')
    if len(keys) > 10:
        raise ValueError("must list at most 10 earlier keys")
    if len(set(keys)) != len(keys):
        raise ValueError("must not list a key twice")
    for position, entry in enumerate(keys, start=1):
        if not 32 <= len(entry) <= 1024:
            raise ValueError(f"entry {position} must have 32 to 1024 characters, like kibanaEncryptionKey")
        _printable(SecretStr(entry))
    return value


PrivateKey = Annotated[SecretStr, Field(max_length=16384), AfterValidator(_private_key)]
ImageTag = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=False)


class LimitsOverride(_Section):
    """A stack's override of a service's default limits (either value may be left out)."""

    cpus: Decimal | None = key(
        "CPU cores the container may use (0.05 to 64, in hundredths; values the Docker provider would read back "
        "rounded, such as 0.05 or 10.05, are refused)",
        example="0.5",
        default=None,
    )
    memory_mb: Integer | None = key(
        "memory limit in MiB (64 to 1048576); also the swap limit, so no swap", example="512", default=None
    )

    @field_validator("cpus")
    @classmethod
    def _cpus_range(cls, value: float | None) -> float | None:
        if value is not None and not 0.05 <= value <= 64:
            raise ValueError("must be between 0.05 and 64 CPU cores")
        if value is not None:
            cpus_input(value)  # sent as the provider reads it back, or refused: see provider_forms
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

    client: Port = key(
        "the edge's web-client port (edge.tls external: on publicBindAddress; selfSigned: 127.0.0.1)",
        example="3000",
        default=3000,
    )
    server: Port = key(
        "the edge's API port (edge.tls external: on publicBindAddress; selfSigned: 127.0.0.1)",
        example="3001",
        default=3001,
    )
    kibana: Port = key("Kibana (127.0.0.1 only)", example="5601", default=5601)
    minio_console: Port = key("MinIO console (127.0.0.1 only)", example="9001", default=9001)


SYSTEM_DIRECTORIES = (
    "/bin",
    "/boot",
    "/dev",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/snap",
    "/sys",
    "/tmp",  # noqa: S108 - refused
    "/usr",
    "/var/cache",
    "/var/lib",
    "/var/log",
    "/var/mail",
    "/var/run",
    "/var/snap",
    "/var/spool",
    "/var/tmp",  # noqa: S108 - refused
)
"""Folders a backup job must never write into, nor anything inside them (the engine's own data is in /var/lib)."""

SYSTEM_PARENTS = ("/", "/home", "/mnt", "/media", "/opt", "/srv", "/var", "/var/backups")
"""Folders that hold others' data: refused themselves, a dedicated folder inside them is fine."""


def host_path(value: str) -> str:
    """The folder Docker will really bind, as it resolves it: `/./etc`, `//etc` and `/srv/` are `/etc`, `/etc`,
    `/srv`. Refuses what Docker's `src:dst` bind syntax or the shell cannot carry."""
    if not value.startswith("/") or "\\" in value:
        raise ValueError("must be an absolute path on the Docker host")
    if _has_control(value) or any(ch.isspace() or ch in ":," for ch in value):
        raise ValueError("must not contain spaces, control characters, ':' or ','")
    parts = [part for part in value.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise ValueError("must be an absolute path on the Docker host, without '..'")
    return "/" + "/".join(parts)


def _backup_path(value: str) -> str:
    path = host_path(value)
    if path in SYSTEM_PARENTS or any(path == system or path.startswith(system + "/") for system in SYSTEM_DIRECTORIES):
        raise ValueError("must be a dedicated folder, not a system directory or one inside it")
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
    edge_data: VolumeName | None = key("the edge's certificates and ACME account", example="edge-data", default=None)

    def of(self, volume: str) -> str | None:
        """The configured name of a volume key such as `postgres-data`, if any."""
        value = getattr(self, volume.replace("-", "_"))
        return None if value is None else str(value)


class BackupSettings(_Section):
    """The daily backup jobs (one per data service)."""

    enabled: Boolean = key("run the daily backup jobs", example="true", default=True)
    time: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] = key(
        "time of day (UTC, HH:MM) the jobs run", example="02:30", default="02:30"
    )
    retention_days: Integer = key(
        "runs older than this many days are removed (never the newest 7)", example="30", default=30
    )
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


EdgeTls = Literal["acme", "external", "selfSigned"]


def _email(value: str) -> str:
    if not re.fullmatch(r"[^@\s'\"`$\\]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+", value):
        raise ValueError("must be an e-mail address (the CA's expiry and account notices go there)")
    return value


def _cidr(value: str) -> str:
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        raise ValueError("must be an IP address or CIDR range, such as 10.0.0.0/8") from None


class EdgeSettings(_Section):
    """The edge (Traefik): TLS, rate limits and body size in front of the web client and the API server."""

    tls: EdgeTls = key(
        "acme: HTTPS with Let's Encrypt certificates on ports 80/443 of publicBindAddress (needs edge.acmeEmail; "
        "appUrl and apiUrl name the hosts); external: plain HTTP on hostPorts.client/server for a TLS load "
        "balancer in front; selfSigned (dev): HTTPS with a self-signed certificate on 127.0.0.1 only, no HSTS "
        "(set acme or external for production)",
        example="acme",
        default="selfSigned",
    )
    acme_email: Annotated[str, AfterValidator(_email)] | None = key(
        "contact address of the ACME account (required with edge.tls acme)", example="ops@example.com", default=None
    )
    rate_limit_average: Integer = key(
        "API requests per second allowed per client address, on average (1 to 10000)", example="50", default=50
    )
    rate_limit_burst: Integer = key(
        "API requests a client address may send at once above the average (1 to 100000)", example="200", default=200
    )
    max_body_mb: Integer = key(
        "largest request body in MiB; larger ones are refused with 413 (1 to 1024)", example="25", default=25
    )
    trusted_proxies: list[Annotated[str, AfterValidator(_cidr)]] = key(
        "addresses (CIDR) of the load balancers in front whose X-Forwarded-For is trusted (edge.tls external)",
        example="10.0.0.0/8",
        default=[],
    )

    @field_validator("rate_limit_average")
    @classmethod
    def _average_range(cls, value: int) -> int:
        if not 1 <= value <= 10_000:
            raise ValueError("must be between 1 and 10000 requests per second")
        return value

    @field_validator("rate_limit_burst")
    @classmethod
    def _burst_range(cls, value: int) -> int:
        if not 1 <= value <= 100_000:
            raise ValueError("must be between 1 and 100000 requests")
        return value

    @field_validator("max_body_mb")
    @classmethod
    def _body_range(cls, value: int) -> int:
        if not 1 <= value <= 1024:
            raise ValueError("must be between 1 and 1024 MiB")
        return value


Platform = Literal["docker", "kubernetes"]


def _quantity(value: str) -> str:
    if not re.fullmatch(r"[1-9][0-9]{0,5}(Mi|Gi|Ti)", value):
        raise ValueError("must be a size in Mi, Gi or Ti, such as 512Mi or 20Gi")
    return value


Quantity = Annotated[str, AfterValidator(_quantity)]
"""A storage size as Kubernetes reads it, in binary units: `512Mi`, `20Gi`, `1Ti`."""

_DNS_LABEL = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


def dns_label(value: str) -> str:
    """An RFC 1123 label (a namespace's name): lowercase letters, digits and '-', at most 63 characters."""
    if not _DNS_LABEL.fullmatch(value):
        raise ValueError(
            "must be a DNS label: 1 to 63 lowercase letters, digits or '-', starting and ending with a letter or digit"
        )
    return value


def _object_name(value: str) -> str:
    # An IngressClass, ClusterIssuer or StorageClass name: an RFC 1123 subdomain.
    if not re.fullmatch(r"[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?", value):
        raise ValueError("must be a Kubernetes object name: lowercase letters, digits, '-' and '.', at most 253")
    return value


ObjectName = Annotated[str, AfterValidator(_object_name)]


class VolumeSizes(_Section):
    """The size of each PersistentVolumeClaim (a StatefulSet's claim template, or the backups' claim)."""

    postgres_data: Quantity = key("PostgreSQL's data", example="50Gi", default="20Gi")
    redis_data: Quantity = key("Redis's append-only file and snapshots", example="5Gi", default="5Gi")
    minio_data: Quantity = key("MinIO's objects (the application's files)", example="200Gi", default="50Gi")
    elasticsearch_data: Quantity = key("Elasticsearch's log indices", example="100Gi", default="30Gi")
    backups: Quantity = key("the backup jobs' runs, kept backup.retentionDays days", example="200Gi", default="50Gi")

    def of(self, volume: str) -> str:
        """The size of a volume key such as `postgres-data` (or `backups`)."""
        return str(getattr(self, volume.replace("-", "_")))


class KubernetesSettings(_Section):
    """The cluster target (platform kubernetes): where and how the stack runs on a Kubernetes cluster."""

    context: Annotated[str, Field(min_length=1, max_length=253), AfterValidator(_plain_name)] | None = key(
        "kubeconfig context to deploy with; unset: the kubeconfig's current context",
        example="prod-cluster",
        default=None,
    )
    namespace: Annotated[str, AfterValidator(dns_label)] | None = key(
        "namespace the program creates and deploys into (a DNS label); unset: sentineliq-<stack>",
        example="sentineliq-prod",
        default=None,
    )
    storage_class: ObjectName | None = key(
        "StorageClass of every PersistentVolumeClaim; unset: the cluster's default StorageClass",
        example="fast-ssd",
        default=None,
    )
    volume_sizes: VolumeSizes = key("the size of each volume", example="", default=VolumeSizes())
    server_max_replicas: Integer | None = key(
        "most API server pods the HorizontalPodAutoscaler may run, on CPU (serverReplicas to 32); "
        "unset: twice serverReplicas",
        example="6",
        default=None,
    )
    ingress_class: ObjectName = key(
        "IngressClass of the Ingress; nginx (ingress-nginx) and traefik also get the edge's security headers, "
        "rate limit and body size",
        example="nginx",
        default="nginx",
    )
    ingress_namespace: Annotated[str, AfterValidator(dns_label)] = key(
        "namespace of the ingress controller's pods: the only source the NetworkPolicies admit to the client and "
        "the server",
        example="ingress-nginx",
        default="ingress-nginx",
    )
    cluster_issuer: ObjectName = key(
        "cert-manager ClusterIssuer that issues the TLS certificate of appUrl's and apiUrl's hosts",
        example="letsencrypt-prod",
        default="letsencrypt-prod",
    )

    @field_validator("server_max_replicas")
    @classmethod
    def _max_replicas_range(cls, value: int | None) -> int | None:
        if value is not None and not 1 <= value <= 32:
            raise ValueError("must be between 1 and 32")
        return value


def _kubeconfig(value: SecretStr) -> SecretStr:
    # Never echoed: only its shape is described. A file: lines and tabs, but no other control character.
    if _has_control(value.get_secret_value().replace("\n", "").replace("\t", "")):
        raise ValueError("must not contain control characters other than newlines and tabs")
    try:
        document = yaml.safe_load(value.get_secret_value())
    except yaml.YAMLError:
        raise ValueError(
            "must be a kubeconfig file (YAML), such as the output of `kubectl config view --raw`"
        ) from None
    if not isinstance(document, dict) or not isinstance(document.get("clusters"), list) or not document["clusters"]:
        raise ValueError("must be a kubeconfig with at least one cluster (`kubectl config view --raw --minify`)")
    return value


def _docker_host(value: str) -> str:
    if value.startswith("unix://"):
        host_path(value.removeprefix("unix://"))
        return value
    # Neither the user nor the host may start with '-': ssh would read it as an option.
    match = re.fullmatch(
        r"ssh://([A-Za-z0-9_][A-Za-z0-9._-]*)@([A-Za-z0-9][A-Za-z0-9.-]*|\[[0-9A-Fa-f:]+\])(?::(\d{1,5}))?", value
    )
    if match is None:
        raise ValueError("must be unix:///path/to/docker.sock or ssh://user@host[:port]")
    if match.group(3) is not None and not 1 <= int(match.group(3)) <= 65535:
        raise ValueError("the SSH port must be between 1 and 65535")
    return value


def _bind_address(value: str) -> str:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise ValueError("must be an IPv4 or IPv6 address, such as 0.0.0.0 or 127.0.0.1") from None
    # Docker drops an IPv6 zone and binds the bare address, or every interface (`fe80::1%eth0`); a link-local,
    # multicast or reserved address is no address of this host to serve on.
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        raise ValueError("must not carry an IPv6 zone (%interface): Docker would ignore it")
    if (
        address.is_link_local
        or address.is_multicast
        or (address.is_reserved and not (address.is_unspecified or address.is_loopback))
    ):
        raise ValueError("must be an address of this host: not link-local, multicast or reserved")
    return str(address)


# Docker's reference grammar (distribution/reference `regexp.go`): a domain of DNS labels with an optional port,
# then lowercase path components separated by '.', '_', '__' or dashes.
_DOMAIN = (
    r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*"
)
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"


def _registry(value: str) -> str:
    if not re.fullmatch(rf"{_DOMAIN}(?::[0-9]{{1,5}})?(?:/{_PATH_COMPONENT})*", value) or value != value.lower():
        raise ValueError("must be a lowercase registry path such as ghcr.io/killsearch")
    if len(f"{value}/saas-server") > 255:
        raise ValueError("must be short enough for Docker's 255-character image names")
    return value


def _image_tag(value: str) -> str:
    if value == "latest":
        raise ValueError("must pin a tag (main, sha-a1b2c3d, 1.2.0), never latest")
    return value


def _minio_user(value: str) -> str:
    # It travels in MinIO's URL-style MC_HOST_* variables and the setup scripts: letters, digits, '.', '_', '-'.
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{2,63}", value):
        raise ValueError("must have 3 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit")
    if value == "minioadmin":
        raise ValueError("must not be minioadmin, MinIO's public default")
    if value == MINIO_APP_USER:
        raise ValueError(f"must not be {MINIO_APP_USER}, the application's own MinIO user")
    return value


def _url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an absolute http(s) URL")
    if _has_control(value) or any(ch.isspace() for ch in value):
        raise ValueError("must not contain spaces or control characters")
    # The URL is exported and handed to the app in plain text: it must never carry a password.
    if parts.username is not None or parts.password is not None:
        raise ValueError("must not contain credentials (user:password@)")
    if parts.query or parts.fragment:
        raise ValueError("must be a base URL, without ?query or #fragment")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError:
        raise ValueError("must have a port between 0 and 65535") from None
    return value.rstrip("/")


def _plain_name(value: str) -> str:
    if _has_control(value) or any(ch.isspace() for ch in value):
        raise ValueError("must not contain spaces or control characters")
    return value


def _bucket(value: str) -> str:
    # S3's naming rules, besides the pattern: no '..', not an IP address.
    if ".." in value or re.fullmatch(r"[0-9]+(\.[0-9]+){3}", value):
        raise ValueError("must be an S3 bucket name: no '..', not an IP address")
    return value


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
    platform: Platform = key(
        "where the stack runs: docker (one Docker engine) or kubernetes (a cluster; see the kubernetes.* keys)",
        example="kubernetes",
        default="docker",
    )
    docker_host: Annotated[str, AfterValidator(_docker_host)] | None = key(
        "the Docker engine to deploy to; unset means the local engine (DOCKER_HOST or its socket)",
        example="ssh://deploy@docker-1.example.com",
        default=None,
    )
    public_bind_address: Annotated[str, AfterValidator(_bind_address)] = key(
        "host address the edge's public ports bind to (edge.tls acme or external)",
        example="127.0.0.1",
        default="0.0.0.0",  # noqa: S104 - the public ports are meant to be reachable; see publicBindAddress
    )
    host_ports: HostPorts = key("host ports of the published services", example="", default=HostPorts())
    volume_names: VolumeNames = key(
        "existing Docker volumes to use; unset: <project>-<stack>-<volume>", example="", default=VolumeNames()
    )
    protect_data: Boolean = key(
        "stateful volumes are protected and retained on delete: `pulumi destroy` never erases data",
        example="true",
        default=True,
    )
    postgres_password: Password = key(
        "password of the PostgreSQL `sentineliq` role (12+ characters)", example=_GENERATE_PASSWORD
    )
    redis_password: Password = key("Redis `requirepass` password (12+ characters)", example=_GENERATE_PASSWORD)
    minio_root_user: Annotated[str, AfterValidator(_minio_user)] = key(
        "MinIO root user (3 to 64 letters, digits, '.', '_' or '-'; never minioadmin)",
        example="sentineliq",
        default="sentineliq",
    )
    minio_root_password: Password = key("MinIO root password (12+ characters)", example=_GENERATE_PASSWORD)
    minio_app_password: Password = key(
        f"password of MinIO's `{MINIO_APP_USER}` user, the API server's only access to its bucket (12+ characters)",
        example=_GENERATE_PASSWORD,
    )
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
    kibana_previous_encryption_keys: (
        Annotated[SecretStr, AfterValidator(_printable), AfterValidator(_previous_keys)] | None
    ) = key(
        "earlier kibanaEncryptionKey values (a JSON list) Kibana still decrypts saved objects with; remove after "
        "re-encrypting",
        example="'[\"<the previous kibanaEncryptionKey>\"]'",
        default=None,
    )
    sentry_dsn: Annotated[SecretStr, AfterValidator(_sentry_dsn)] | None = key(
        "Sentry DSN of the API server; unset disables error tracking",
        example="'https://<key>@o0.ingest.sentry.io/<project>'",
        default=None,
    )
    registry_username: Annotated[str, Field(max_length=256), AfterValidator(_plain_name)] | None = key(
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
    ssh_host_key: Annotated[str, AfterValidator(parse_host_key)] | None = key(
        "the Docker host's SSH public key line (ed25519 or ECDSA, as in known_hosts), checked on every connection;"
        " required with an ssh:// dockerHost",
        example='"$(cat ssh_host_ed25519_key.pub)"',
        default=None,
    )
    app_url: Annotated[str, AfterValidator(_url)] = key(
        "public URL of the web client (the server's WASP_WEB_CLIENT_URL; with edge.tls acme, its host gets a "
        "certificate)",
        example="https://app.sentineliq.com",
        default="https://localhost:3000",
    )
    api_url: Annotated[str, AfterValidator(_url)] = key(
        "public URL of the API server (WASP_SERVER_URL; with edge.tls acme, its host gets a certificate)",
        example="https://api.sentineliq.com",
        default="https://localhost:3001",
    )
    edge: EdgeSettings = key("the edge in front of the application", example="", default=EdgeSettings())
    server_replicas: Integer = key(
        "API server containers behind the edge (1 to 8); a tag bump keeps this many serving throughout",
        example="2",
        default=1,
    )
    s3_bucket: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"), AfterValidator(_bucket)] = key(
        "MinIO bucket of the API server's files", example="sentineliq", default="sentineliq"
    )
    seed_data: Boolean = key(
        "run the app's seed step (`npx prisma db seed`) after the migration: once, and again when seedDataRun changes",
        example="true",
        default=False,
    )
    seed_data_run: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")] = key(
        "change it (any new value, e.g. today's date) to run the seed step again",
        example="2026-11-27",
        default="1",
    )
    backup: BackupSettings = key("daily backups of PostgreSQL, Redis and MinIO", example="", default=BackupSettings())
    resources: dict[ServiceName, LimitsOverride] = key(
        "per-service overrides of CPU and memory limits, e.g. resources.postgres.memoryMb",
        example="4096",
        default={},
    )
    kubeconfig: Annotated[SecretStr, Field(max_length=1_048_576), AfterValidator(_kubeconfig)] | None = key(
        "kubeconfig of the cluster (platform kubernetes); unset: the ambient one (KUBECONFIG or ~/.kube/config)",
        example="< ~/.kube/sentineliq-prod.yaml",
        default=None,
    )
    kubernetes: KubernetesSettings = key(
        "the Kubernetes target (platform kubernetes)", example="", default=KubernetesSettings()
    )

    @field_validator("server_replicas")
    @classmethod
    def _replicas_range(cls, value: int) -> int:
        if not 1 <= value <= 8:
            raise ValueError("must be between 1 and 8")
        return value

    @property
    def ssh(self) -> SshTarget | None:
        """The SSH endpoint when the Docker engine is remote (`ssh://user@host[:port]`)."""
        if self.docker_host is None or not self.docker_host.startswith("ssh://"):
            return None
        parts = urlsplit(self.docker_host)
        return SshTarget(user=parts.username or "", host=parts.hostname or "", port=parts.port or 22)

    @property
    def kibana_decryption_only_keys(self) -> list[SecretStr]:
        """The earlier Kibana encryption keys, in the order given (validated as a JSON list of strings)."""
        if self.kibana_previous_encryption_keys is None:
            return []
        return [SecretStr(k) for k in json.loads(self.kibana_previous_encryption_keys.get_secret_value())]

    @property
    def server_max_replicas(self) -> int:
        """The HorizontalPodAutoscaler's ceiling (kubernetes.serverMaxReplicas, default twice serverReplicas)."""
        return self.kubernetes.server_max_replicas or 2 * self.server_replicas

    def namespace(self, stack: str) -> str:
        """The stack's Kubernetes namespace."""
        return self.kubernetes.namespace or default_namespace(stack)

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


def shell_word(text: str, *, always: bool = False) -> str:
    """One shell word that is exactly `text` when pasted: single quotes (always, or when needed), and for a control
    character ANSI-C quoting (`$'...'`, bash, zsh and POSIX.1-2024), so that a hint is one visible line."""
    if _has_control(text):
        return "$'" + "".join(_ansi_c(ch) for ch in text) + "'"
    if always:
        return "'" + text.replace("'", "'\"'\"'") + "'"
    return shlex.quote(text)


def _ansi_c(ch: str) -> str:
    if ch in "\\'":
        return "\\" + ch
    if not _has_control(ch):
        return ch
    # Byte escapes of its UTF-8 form, which mean the same whatever the shell's locale.
    return "".join(f"\\x{byte:02x}" for byte in ch.encode())


def _set_path(path: str, value: str) -> str:
    return f"pulumi config set --path {shell_word(f'{NAMESPACE}:{path}', always=True)} {value}"


def _rm(path: str, *, nested: bool) -> str:
    """Removes a key, or with `nested` a path inside a structured key (a top-level key may hold dots itself)."""
    if "\x00" in path:  # no command line can carry a NUL
        return "delete the key from the stack's file, Pulumi.<stack>.yaml (a NUL cannot be typed in a shell)"
    flag = "--path " if nested else ""
    return f"pulumi config rm {flag}{shell_word(f'{NAMESPACE}:{path}', always=nested)}"


def _fix(path: str) -> str:
    """The `pulumi config set` command that sets the key (or nested path) to a valid example. Every part that
    comes from the stack file is quoted: an operator pastes these lines."""
    top, _, rest = path.partition(".")
    info = _fields().get(top)
    if info is None:
        return _rm(top, nested=False)
    if rest:
        # Down through the nested models; a part that names no field is a map's key (`resources.<service>`).
        model, leaf = nested_model(info), None
        for part in rest.split("."):
            nested = {} if model is None else {str(f.alias): f for f in model.model_fields.values()}
            leaf = nested.get(part)
            if leaf is not None:
                model = nested_model(leaf)
        return _set_path(path, "<value>" if leaf is None else example_of(leaf))
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
        return Problem(path, rule, _rm(path, nested=True))
    if kind in ("too_short", "string_too_short"):
        rule = f"must have at least {ctx['min_length']} characters"
    elif kind in ("too_long", "string_too_long"):
        rule = f"must have at most {ctx['max_length']} characters"
    else:
        rule = str(error["msg"]).removeprefix("Value error, ")
    if "actual_length" in ctx:
        rule = f"{rule} (the value set has {ctx['actual_length']})"
    return Problem(path, rule, _fix(path))


def collect_problems(
    values: Mapping[str, str], secrets: set[str], stack: str | None = None
) -> tuple[list[Problem], Settings | None]:
    """Every problem of a configuration, and the settings when there is none (`stack`, when given, is checked as
    part of the default namespace `sentineliq-<stack>`)."""
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
            problems.append(Problem(name, f"is not a known setting{hint}", _rm(name, nested=False)))
            continue
        if is_secret(info) and name not in secrets:
            problems.append(Problem(name, "is a secret but is stored in plain text", _fix(name)))
        try:
            data[name] = _decode(info, raw)
        except (ValueError, RecursionError):  # malformed, too deep, or a number too long to convert
            problems.append(Problem(name, "must be an object (set it with --path)", _fix(f"{name}.<field>")))
    problems.extend(_cross_key_problems(data))
    problems.extend(_section_problems(data))
    problems.extend(_target_problems(data))
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems.extend(_describe(err) for err in exc.errors(include_input=False, include_url=False))
        return problems, None
    problems.extend(_edge_problems(settings))
    problems.extend(_kubernetes_problems(settings, stack))
    return problems, (settings if not problems else None)


def _case(match: str, fields: Mapping[str, FieldInfo]) -> str:
    return next((f for f in fields if f.lower() == match.lower()), match)


def _cross_key_problems(data: Mapping[str, Any]) -> list[Problem]:
    """Rules that tie keys together; they only look at which keys are set, so they run whatever else fails."""
    problems = []
    for present, missing in (("registryUsername", "registryToken"), ("registryToken", "registryUsername")):
        if present in data and missing not in data:
            problems.append(Problem(missing, f"is required when {NAMESPACE}:{present} is set", _fix(missing)))
    if str(data.get("dockerHost", "")).startswith("ssh://"):
        for required in ("sshPrivateKey", "sshHostKey"):
            if required not in data:
                problems.append(Problem(required, "is required when dockerHost is ssh://...", _fix(required)))
    edge = data.get("edge")
    if isinstance(edge, dict) and edge.get("tls") == "acme" and "acmeEmail" not in edge:
        problems.append(Problem("edge.acmeEmail", "is required when edge.tls is acme", _fix("edge.acmeEmail")))
    return problems


def _edge_problems(settings: Settings) -> list[Problem]:
    """With ACME, the edge routes by host name and asks a public CA for a certificate of each: the two URLs must be
    https on distinct DNS names on the default port. Self-signed, it serves HTTPS only: an http URL would be an
    origin no browser ever shows (the server's CORS origin, WASP_WEB_CLIENT_URL, would refuse the web client)."""
    if settings.platform == "docker" and settings.edge.tls == "selfSigned":
        urls = (
            ("appUrl", settings.app_url, settings.host_ports.client),
            ("apiUrl", settings.api_url, settings.host_ports.server),
        )
        rule = "must be https:// when edge.tls is selfSigned (the edge serves HTTPS only)"
        return [
            Problem(name, rule, f"pulumi config set sentineliq:{name} https://localhost:{port}")
            for name, url, port in urls
            if urlsplit(url).scheme != "https"
        ]
    if settings.edge.tls != "acme" and settings.platform != "kubernetes":
        return []
    when = "when edge.tls is acme" if settings.platform == "docker" else "with platform kubernetes"
    problems = []
    hosts: dict[str, str] = {}
    for name, url in (("appUrl", settings.app_url), ("apiUrl", settings.api_url)):
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            ipaddress.ip_address(host)
            is_ip = True
        except ValueError:
            is_ip = False
        if parts.scheme != "https" or parts.port not in (None, 443) or is_ip or "." not in host:
            rule = f"must be https://<DNS name> without a port {when} (the CA certifies that name)"
            problems.append(Problem(name, rule, _fix(name)))
        elif host in hosts:
            rule = f"must name another host than {hosts[host]} {when} (the edge routes by host)"
            problems.append(Problem(name, rule, _fix(name)))
        hosts.setdefault(host, name)
    return problems


def _port_clashes(ports: HostPorts, set_keys: set[str]) -> list[Problem]:
    """Two services on one host port: checked on all ports together, defaults included (`client: 3001` takes the
    server's default port)."""
    used = {str(f.alias): getattr(ports, name) for name, f in HostPorts.model_fields.items()}
    problems = []
    for first, second in itertools.combinations(used, 2):
        if used[first] != used[second]:
            continue
        # Blame a key that was set explicitly (a default never moves), the later one when both were.
        blamed, other = (second, first) if second in set_keys else (first, second)
        free = next(p for p in range(used[blamed] + 1, 65536) if p not in used.values())
        path = f"hostPorts.{blamed}"
        problems.append(
            Problem(path, f"port {used[blamed]} is already used by hostPorts.{other}", _set_path(path, str(free)))
        )
    return problems


def _volume_clashes(names: VolumeNames, set_keys: set[str]) -> list[Problem]:
    """Only volumes the program did not create can be adopted: a name of its own form `<project>-<stack>-<volume>`
    is another stack's volume (an unprotected `pulumi destroy` of this stack would erase it) or this stack's
    default; and one volume cannot hold two services' data."""
    fields = {str(f.alias): name for name, f in VolumeNames.model_fields.items()}
    volumes = "|".join(re.escape(name.replace("_", "-")) for name in fields.values())
    own_form = re.compile(rf"{NAMESPACE}-.+-(?:{volumes})")
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for alias in sorted(set_keys & set(fields)):
        value = getattr(names, fields[alias])
        path = f"volumeNames.{alias}"
        if value is None:
            continue
        if own_form.fullmatch(value):
            rule = (
                f"{value} is a volume this program creates for a stack (<project>-<stack>-<volume>), not one to adopt"
            )
            problems.append(Problem(path, rule, _rm(path, nested=True)))
        elif value in seen:
            problems.append(
                Problem(path, f"{value} is already the volume of volumeNames.{seen[value]}", _rm(path, nested=True))
            )
        seen.setdefault(value, alias)
    return problems


def _section_problems(data: Mapping[str, Any]) -> list[Problem]:
    """Rules across the fields of one structured key, checked on that key alone so that they are reported together
    with every other problem (a broken section is reported by the main validation instead)."""
    problems: list[Problem] = []
    ports, volumes = data.get("hostPorts", {}), data.get("volumeNames", {})
    with contextlib.suppress(ValidationError):
        problems.extend(_port_clashes(HostPorts.model_validate(ports), set(ports)))
    with contextlib.suppress(ValidationError):
        problems.extend(_volume_clashes(VolumeNames.model_validate(volumes), set(volumes)))
    return problems


DOCKER_ONLY = (
    "dockerHost",
    "publicBindAddress",
    "hostPorts",
    "volumeNames",
    "sshPrivateKey",
    "sshHostKey",
    "backup.path",
    "edge.tls",
    "edge.acmeEmail",
    "edge.trustedProxies",
    "resources.edge",
)
"""Keys that only the Docker target reads. On a cluster there is no engine host, no host port or folder, no Docker
volume to adopt; the Ingress controller and cert-manager (kubernetes.ingressClass, kubernetes.clusterIssuer) take
the edge's place, so its TLS mode, ACME account, trusted proxies and limits do not apply. Set under platform
kubernetes, they are reported rather than silently ignored: a user who sets one expects it to do something."""

KUBERNETES_ONLY = ("kubernetes", "kubeconfig")
"""Keys that only the Kubernetes target reads (reported under platform docker, for the same reason)."""


def _set_paths(data: Mapping[str, Any]) -> set[str]:
    """The keys set, and `key.field` for each field set inside a structured key."""
    paths = set(data)
    for name, value in data.items():
        if isinstance(value, dict):
            paths.update(f"{name}.{field}" for field in value)
    return paths


def _target_problems(data: Mapping[str, Any]) -> list[Problem]:
    """Keys of the other target: they would do nothing on this one."""
    platform = data.get("platform", "docker")
    if platform not in ("docker", "kubernetes"):
        return []  # reported by the main validation
    foreign, other = (DOCKER_ONLY, "docker") if platform == "kubernetes" else (KUBERNETES_ONLY, "kubernetes")
    problems = []
    for path in sorted(_set_paths(data) & set(foreign)):
        rule = f"is a {other} setting: it has no effect with platform {platform}"
        problems.append(Problem(path, rule, _rm(path, nested="." in path)))
    return problems


def _kubernetes_problems(settings: Settings, stack: str | None) -> list[Problem]:
    """Rules of the cluster target that tie keys together."""
    if settings.platform != "kubernetes":
        return []
    problems = []
    cluster = settings.kubernetes
    if cluster.server_max_replicas is not None and cluster.server_max_replicas < settings.server_replicas:
        path = "kubernetes.serverMaxReplicas"
        rule = f"must be at least serverReplicas ({settings.server_replicas})"
        problems.append(Problem(path, rule, _set_path(path, str(settings.server_replicas))))
    if cluster.namespace is None and stack is not None:
        try:
            dns_label(default_namespace(stack))
        except ValueError as exc:
            rule = f"is needed: the default {default_namespace(stack)!r} is not valid ({exc})"
            problems.append(Problem("kubernetes.namespace", rule, _set_path("kubernetes.namespace", "sentineliq-prod")))
    if settings.kubeconfig is not None and cluster.context is not None:
        document = yaml.safe_load(settings.kubeconfig.get_secret_value())
        contexts = {str(entry.get("name")) for entry in document.get("contexts") or [] if isinstance(entry, dict)}
        if cluster.context not in contexts:
            # The context names come from the secret kubeconfig: only their number is told.
            rule = f"names no context of the kubeconfig (it has {len(contexts)})"
            problems.append(Problem("kubernetes.context", rule, _rm("kubernetes.context", nested=True)))
    return problems


def default_namespace(stack: str) -> str:
    """`sentineliq-<stack>`, the namespace of a stack that sets no kubernetes.namespace."""
    return f"{NAMESPACE}-{stack}"


def load_settings() -> Settings:
    """Validate the stack's configuration once; raise every problem together as a `pulumi.RunError`."""
    values, secrets = _runtime_config()
    stack = pulumi.get_stack()
    problems, settings = collect_problems(values, secrets, stack)
    if settings is None:
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        body = "\n".join(f"  - {problem.render()}" for problem in problems)
        raise pulumi.RunError(
            f"the configuration of stack '{stack}' has {count}:\n{body}\n"
            f"(run the commands in the stack's directory; `pulumi config` lists what is set)"
        )
    return settings
