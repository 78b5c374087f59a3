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


# The password reaches curl through a config on stdin (`-K -`), never as an argument that `ps` would show.
ELASTICSEARCH_CHECK = (
    "printf 'header = \"Authorization: Basic %s\"\\n' "
    '"$(printf \'elastic:%s\' "$ELASTIC_PASSWORD" | base64 -w0)" '
    "| curl -fsS -K - -o /dev/null 'http://127.0.0.1:9200/_cluster/health?wait_for_status=yellow&timeout=5s'"
)


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
            test=shell_check("curl -fsS -o /dev/null http://127.0.0.1:9600/"),
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


def kibana(settings: Settings) -> ServiceSpec:
    # Kibana 8 needs about 700 MB resident: the seed's 512 MB "others" limit would get it OOM-killed.
    limits = settings.limits("kibana", Limits(cpus=1, memory_mb=1024))
    key = settings.kibana_encryption_key
    return ServiceSpec(
        name="kibana",
        image=KIBANA_IMAGE,
        env={
            "ELASTICSEARCH_HOSTS": ELASTICSEARCH_URL,
            "ELASTICSEARCH_USERNAME": "kibana_system",
            "ELASTICSEARCH_PASSWORD": settings.kibana_system_password,
            "XPACK_ENCRYPTEDSAVEDOBJECTS_ENCRYPTIONKEY": key,
            "XPACK_SECURITY_ENCRYPTIONKEY": _derived_key(key, "security"),
            "XPACK_REPORTING_ENCRYPTIONKEY": _derived_key(key, "reporting"),
            # The status API answers the health check without credentials (the port is on loopback only).
            "STATUS_ALLOWANONYMOUS": "true",
            "NODE_OPTIONS": f"--max-old-space-size={heap_mb(limits, 0.75)}",
        },
        ports=(PublishedPort(KIBANA_PORT, settings.host_ports.kibana, "127.0.0.1"),),
        healthcheck=HealthCheck(
            test=shell_check(
                f'curl -fsS http://127.0.0.1:{KIBANA_PORT}/api/status | grep -q \'"overall":{{"level":"available"\''
            ),
            interval=10,
            start_period=180,
            start_interval=2,
        ),
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
