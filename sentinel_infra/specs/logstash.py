"""Logstash 8.11: receives the application's logs on TCP 5000 and writes them to Elasticsearch."""

from __future__ import annotations

from importlib import resources

from ..settings import Settings
from .elasticsearch import ELASTIC_USER, ELASTIC_VERSION, ELASTICSEARCH_URL, authenticated_get, heap_mb
from .model import FileUpload, HealthCheck, Limits, Port, ServiceSpec

LOGSTASH_IMAGE = f"docker.elastic.co/logstash/logstash:{ELASTIC_VERSION}"
LOGSTASH_PORT = 5000

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
        ports=(Port("logs", LOGSTASH_PORT),),
        healthcheck=HealthCheck(
            test=("CMD", "bash", "-c", LOGSTASH_CHECK),
            interval=10,
            start_period=120,
            start_interval=2,
        ),
        ready_timeout=300,
        stop_grace=60,
        after=("elasticsearch", "elastic-setup"),
        talks_to=("elasticsearch",),
        limits=limits,
        run_as=ELASTIC_USER,
    )
