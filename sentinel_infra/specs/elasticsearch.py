"""Elasticsearch 8.11: the log store, with security on.

Each component of the logging stack has its own identity: `elastic` (the superuser) only bootstraps and runs the
setup step (`elastic_setup`), Kibana connects as `kibana_system`, Logstash as `logstash_writer`, whose role may
create documents in the log indices and nothing else.
"""

from __future__ import annotations

import base64

from pydantic import SecretStr

from ..settings import Settings
from .model import HealthCheck, Limits, Port, RunAs, ServiceSpec, VolumeMount, shell_check

ELASTIC_VERSION = "8.11.0"
ELASTICSEARCH_IMAGE = f"docker.elastic.co/elasticsearch/elasticsearch:{ELASTIC_VERSION}"

ELASTICSEARCH_URL = "http://elasticsearch:9200"
ELASTIC_USER = RunAs(1000, 1000)
"""Logstash's and Kibana's own user (`useradd --uid 1000 --gid 1000` in elastic/dockerfiles for 8.11.0): the
Elastic images run as it from the start."""

ELASTICSEARCH_USER = RunAs(1000, 0)
"""Elasticsearch's image declares `USER 1000:0` (its files are group 0)."""


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
        ports=(Port("http", 9200),),
        volumes=(VolumeMount("elasticsearch-data", "/usr/share/elasticsearch/data"),),
        # The Elastic images run as uid 1000 from the start (no capability to add). They are not read-only:
        # Elasticsearch writes its keystore and logs, Logstash its queue, Kibana its data directory in the image.
        # Its health check authenticates with the configured password: the running cluster must have it first.
        after=("elastic-password",),
        healthcheck=HealthCheck(test=shell_check(ELASTICSEARCH_CHECK), interval=10, start_period=120, start_interval=2),
        ready_timeout=300,
        stop_grace=120,
        limits=limits,
        run_as=ELASTICSEARCH_USER,
    )
