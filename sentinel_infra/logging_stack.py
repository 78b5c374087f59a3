"""The logging stack: Elasticsearch, its one-shot security setup, Logstash and Kibana (Elastic 8.11.0).

Security stays on. Each component has its own identity: `elastic` (the superuser) only bootstraps and runs the
setup step, Kibana connects as `kibana_system`, Logstash as `logstash_writer`, whose role may create documents in
the log indices and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from importlib import resources

import pulumi
import yaml
from pydantic import SecretStr

from .naming import StackNames
from .oneshot import InNewContainer, OneShotArgs
from .service import FileUpload, HealthCheck, PublishedPort, ServiceSpec, VolumeMount, shell_check
from .settings import Limits, Settings

ELASTIC_VERSION = "8.11.0"
ELASTICSEARCH_IMAGE = f"docker.elastic.co/elasticsearch/elasticsearch:{ELASTIC_VERSION}"
LOGSTASH_IMAGE = f"docker.elastic.co/logstash/logstash:{ELASTIC_VERSION}"
KIBANA_IMAGE = f"docker.elastic.co/kibana/kibana:{ELASTIC_VERSION}"

ELASTICSEARCH_URL = "http://elasticsearch:9200"
LOG_INDICES = "sentineliq-logs-*"
LOGSTASH_PORT = 5000
KIBANA_PORT = 5601

WRITER_ROLE = {
    "cluster": ["monitor"],
    "indices": [{"names": [LOG_INDICES], "privileges": ["create_index", "create_doc", "auto_configure"]}],
}
"""Logstash's role: create the daily index and append documents to it; no read, update, delete or admin."""


def heap_mb(limits: Limits, fraction: float = 0.5) -> int:
    """A JVM or Node heap that fits the container's memory limit (the rest is off-heap and OS cache)."""
    return max(64, int(limits.memory_mb * fraction))


def basic_auth_config(user: str, password: SecretStr) -> str:
    """A curl config line (`curl -K`) that authenticates as `user`: credentials never on curl's command line."""
    token = base64.b64encode(f"{user}:{password.get_secret_value()}".encode()).decode()
    return f'header = "Authorization: Basic {token}"'


def authenticated_get(user: str, password_variable: str, url: str) -> str:
    """A shell line that GETs `url` as `user`, whose password is in the environment variable `password_variable`.

    The password reaches curl through a config on stdin (`-K -`), never as an argument that `ps` would show;
    `-f` turns a 401 (or any status >= 400) into a failure.
    """
    return (
        "printf 'header = \"Authorization: Basic %s\"\\n' "
        f'"$(printf \'{user}:%s\' "${password_variable}" | base64 -w0)" '
        f"| curl -fsS -K - -o /dev/null '{url}'"
    )


ELASTICSEARCH_CHECK = authenticated_get(
    "elastic", "ELASTIC_PASSWORD", "http://127.0.0.1:9200/_cluster/health?wait_for_status=yellow&timeout=5s"
)

LOGSTASH_CHECK = " && ".join(
    [
        # Logstash 8.11's node API answers 404 for a pipeline whose workers have not started, or that stopped
        # (logstash-core/lib/logstash/api/modules/node.rb at v8.11.0: `halt(404) if payload.empty?`).
        "curl -fsS -o /dev/null http://127.0.0.1:9600/_node/pipelines/main",
        # Its TCP input accepts connections (bash's /dev/tcp: the image, Ubuntu 20.04 with curl and bash, has
        # no nc; elastic/dockerfiles logstash/Dockerfile for 8.11.0 installs procps findutils tar gzip curl).
        f": </dev/tcp/127.0.0.1/{LOGSTASH_PORT}",
        # The identity it writes with authenticates (a wrong password keeps the pipeline running, events stuck).
        authenticated_get(
            "logstash_writer", "LOGSTASH_WRITER_PASSWORD", f"{ELASTICSEARCH_URL}/_security/_authenticate"
        ),
    ]
)
"""Ready means the `main` pipeline runs, port 5000 takes connections and Logstash's identity authenticates."""

KIBANA_CHECK = ("CMD", "curl", "-fsS", "-o", "/dev/null", f"http://127.0.0.1:{KIBANA_PORT}/api/status")
"""Ready means Kibana's *core* is available, read from the status route's HTTP code, not from its body.

Kibana 8.9+ (elastic/kibana#159768, in packages/core/status/core-status-server-internal/src/routes/status.ts)
answers `/api/status` with 503 while core (Elasticsearch, saved objects) is unavailable and 200 otherwise, to
anonymous requests too (they get a redacted body, no 401), and every route answers 503 until the server is ready.
`status.overall.level == available` would also require every plugin to be available: one degraded plugin (a
missing license feature, a slow task manager) would fail `pulumi up` after its wait, while Kibana serves. So the
check sends no credentials and needs no `status.allowAnonymous` (the full status stays behind a login).
"""


def elasticsearch(settings: Settings) -> ServiceSpec:
    limits = settings.limits("elasticsearch", Limits(cpus=2, memory_mb=2048))
    heap = heap_mb(limits)
    return ServiceSpec(
        name="elasticsearch",
        image=ELASTICSEARCH_IMAGE,
        env={
            "discovery.type": "single-node",
            "cluster.name": "sentineliq",
            "xpack.security.enabled": "true",
            # Plain HTTP inside the stack network; nothing outside reaches port 9200.
            "xpack.security.http.ssl.enabled": "false",
            "xpack.security.transport.ssl.enabled": "false",
            "xpack.license.self_generated.type": "basic",
            "ingest.geoip.downloader.enabled": "false",
            "ES_JAVA_OPTS": f"-Xms{heap}m -Xmx{heap}m",
            # Bootstraps the `elastic` user on an empty data directory only.
            "ELASTIC_PASSWORD": settings.elastic_password,
        },
        volumes=(VolumeMount("elasticsearch-data", "/usr/share/elasticsearch/data"),),
        # The Elastic images run as uid 1000 from the start (no capability to add). They are not read-only:
        # Elasticsearch writes its keystore and logs, Logstash its queue, Kibana its data directory in the image.
        healthcheck=HealthCheck(test=shell_check(ELASTICSEARCH_CHECK), interval=10, start_period=120, start_interval=2),
        wait_timeout=300,
        stop_grace=120,
        limits=limits,
    )


def logstash(settings: Settings) -> ServiceSpec:
    limits = settings.limits("logstash", Limits(cpus=0.5, memory_mb=512))
    heap = heap_mb(limits)
    pipeline = resources.files(__package__).joinpath("files/logstash.conf").read_text()
    return ServiceSpec(
        name="logstash",
        image=LOGSTASH_IMAGE,
        env={
            # The default heap (1 GB) does not fit a 512 MB container.
            "LS_JAVA_OPTS": f"-Xms{heap}m -Xmx{heap}m",
            "XPACK_MONITORING_ENABLED": "false",
            "LOGSTASH_WRITER_PASSWORD": settings.logstash_password,
        },
        # Uploaded into the container, not bind-mounted from this machine: works on a remote host too.
        files=(FileUpload("/usr/share/logstash/pipeline/logstash.conf", pipeline),),
        healthcheck=HealthCheck(
            test=("CMD", "bash", "-c", LOGSTASH_CHECK),
            interval=10,
            start_period=120,
            start_interval=2,
        ),
        wait_timeout=300,
        stop_grace=60,
        depends_on=("elasticsearch",),
        limits=limits,
    )


def _derived_key(key: SecretStr, purpose: str) -> SecretStr:
    """A distinct 64-character key per Kibana purpose, derived from the one configured key (deterministic)."""
    digest = hmac.new(key.get_secret_value().encode(), purpose.encode(), hashlib.sha256).hexdigest()
    return SecretStr(digest)


KIBANA_CONFIG_PATH = "/usr/share/kibana/config/kibana.yml"
KIBANA_CONFIG_MODE = "0640"
"""Readable by root and group 0 only: the provider uploads files as root:root (its tar header has no owner and it
copies with Docker's default options, `resource_docker_container_funcs.go` upstream), and the image's `kibana` user
(uid 1000) is a member of group 0 (`useradd --uid 1000 --gid 1000 -G 0` in elastic/dockerfiles kibana/Dockerfile
for 8.11.0). 0600 would leave Kibana unable to read its own configuration (tests/test_docker_engine.py shows both
on a real engine)."""


def kibana_settings(settings: Settings) -> dict[str, object]:
    """Kibana's settings: the image's defaults (elastic/dockerfiles kibana/config/kibana.yml) plus ours.

    They go into the uploaded `kibana.yml`, never into environment variables: the image's entrypoint
    (`kibana-docker`) turns every variable named after a setting into a `--setting=value` argument of the Kibana
    process, visible to `ps` on the host and split on spaces.
    """
    key = settings.kibana_encryption_key
    values: dict[str, object] = {
        "server.host": "0.0.0.0",  # noqa: S104 - inside the container; the port is published on loopback only
        "server.shutdownTimeout": "5s",
        "monitoring.ui.container.elasticsearch.enabled": True,
        "elasticsearch.hosts": [ELASTICSEARCH_URL],
        "elasticsearch.username": "kibana_system",
        "elasticsearch.password": settings.kibana_system_password.get_secret_value(),
        "xpack.encryptedSavedObjects.encryptionKey": key.get_secret_value(),
        "xpack.security.encryptionKey": _derived_key(key, "security").get_secret_value(),
        "xpack.reporting.encryptionKey": _derived_key(key, "reporting").get_secret_value(),
    }
    previous = settings.kibana_decryption_only_keys
    if previous:
        # Saved objects encrypted with an earlier key stay readable; new writes use the current key.
        values["xpack.encryptedSavedObjects.keyRotation.decryptionOnlyKeys"] = [k.get_secret_value() for k in previous]
    return values


def kibana_config(settings: Settings) -> SecretStr:
    """`kibana.yml` as YAML (flat dotted keys, as Kibana reads them), secret as a whole."""
    text = yaml.safe_dump(kibana_settings(settings), sort_keys=False, allow_unicode=True, width=10_000)
    return SecretStr("# Written by the SentinelIQ Pulumi program: changes here are replaced on deploy.\n" + text)


def kibana(settings: Settings) -> ServiceSpec:
    # Kibana 8 needs about 700 MB resident: the seed's 512 MB "others" limit would get it OOM-killed.
    limits = settings.limits("kibana", Limits(cpus=1, memory_mb=1024))
    return ServiceSpec(
        name="kibana",
        image=KIBANA_IMAGE,
        # Not a Kibana setting: the entrypoint leaves it alone, and Node reads it.
        env={"NODE_OPTIONS": f"--max-old-space-size={heap_mb(limits, 0.75)}"},
        files=(FileUpload(KIBANA_CONFIG_PATH, kibana_config(settings), mode=KIBANA_CONFIG_MODE),),
        ports=(PublishedPort(KIBANA_PORT, settings.host_ports.kibana, "127.0.0.1"),),
        # Core available by the status route's HTTP code, not every plugin (see KIBANA_CHECK); up to 3 minutes
        # to start, three times Elastic's typical 15-60 s, before failures count.
        healthcheck=HealthCheck(test=KIBANA_CHECK, interval=10, start_period=180, start_interval=2),
        wait_timeout=300,
        stop_grace=30,
        depends_on=("elasticsearch",),
        limits=limits,
    )


SETUP_SCRIPT = """set -eu
umask 077
IFS= read -r auth
IFS= read -r kibana_password
IFS= read -r writer_role
IFS= read -r writer_user
auth_file=$(mktemp)
trap 'rm -f "$auth_file"' EXIT
printf '%s\\n' "$auth" > "$auth_file"
es() {
  curl -fsS --retry 5 --retry-connrefused -K "$auth_file" -H 'Content-Type: application/json' \\
    --data-binary @- "$@" && echo
}
printf '%s' "$kibana_password" | es -X POST http://elasticsearch:9200/_security/user/kibana_system/_password
printf '%s' "$writer_role" | es -X PUT http://elasticsearch:9200/_security/role/logstash_writer
printf '%s' "$writer_user" | es -X PUT http://elasticsearch:9200/_security/user/logstash_writer
"""
"""Idempotent: sets kibana_system's password and creates or updates Logstash's role and user."""


def setup_input(settings: Settings) -> SecretStr:
    """The setup step's stdin: the superuser's auth header (as a curl config line) and three request bodies."""
    lines = [
        basic_auth_config("elastic", settings.elastic_password),
        json.dumps({"password": settings.kibana_system_password.get_secret_value()}),
        json.dumps(WRITER_ROLE),
        json.dumps(
            {
                "password": settings.logstash_password.get_secret_value(),
                "roles": ["logstash_writer"],
                "full_name": "SentinelIQ Logstash writer",
            }
        ),
    ]
    return SecretStr("\n".join(lines) + "\n")


def elastic_setup(
    settings: Settings,
    names: StackNames,
    image_id: pulumi.Input[str],
    network_name: pulumi.Input[str],
    elasticsearch: pulumi.CustomResource,
) -> OneShotArgs:
    """The security setup that Elastic's own compose file does in its `setup` service, as a one-shot step.

    It runs once Elasticsearch is healthy, again when a password changes (stdin) or the container is new.
    """
    return OneShotArgs(
        settings=settings,
        names=names,
        where=InNewContainer(image_id, network_name),
        script=SETUP_SCRIPT,
        stdin=setup_input(settings),
        triggers=[elasticsearch.id],
        depends_on=[elasticsearch],
    )
