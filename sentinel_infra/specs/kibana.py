"""Kibana 8.11: the log UI, published to the operator only."""

from __future__ import annotations

import hashlib
import hmac

import yaml
from pydantic import SecretStr

from ..settings import Settings
from .elasticsearch import ELASTIC_USER, ELASTIC_VERSION, ELASTICSEARCH_URL, heap_mb
from .model import FileUpload, HealthCheck, Limits, Port, ServiceSpec

KIBANA_IMAGE = f"docker.elastic.co/kibana/kibana:{ELASTIC_VERSION}"
KIBANA_PORT = 5601

KIBANA_CHECK = ("CMD", "curl", "-fsS", "-o", "/dev/null", f"http://127.0.0.1:{KIBANA_PORT}/api/status")
"""Ready means Kibana's *core* is available, read from the status route's HTTP code, not from its body.

Kibana 8.9+ (elastic/kibana#159768, in packages/core/status/core-status-server-internal/src/routes/status.ts)
answers `/api/status` with 503 while core (Elasticsearch, saved objects) is unavailable and 200 otherwise, to
anonymous requests too (they get a redacted body, no 401), and every route answers 503 until the server is ready.
`status.overall.level == available` would also require every plugin to be available: one degraded plugin (a
missing license feature, a slow task manager) would fail `pulumi up` after its wait, while Kibana serves. So the
check sends no credentials and needs no `status.allowAnonymous` (the full status stays behind a login).
"""


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
        ports=(Port("http", KIBANA_PORT, "operator", settings.host_ports.kibana),),
        # Core available by the status route's HTTP code, not every plugin (see KIBANA_CHECK); up to 3 minutes
        # to start, three times Elastic's typical 15-60 s, before failures count.
        healthcheck=HealthCheck(test=KIBANA_CHECK, interval=10, start_period=180, start_interval=2),
        ready_timeout=300,
        stop_grace=30,
        after=("elasticsearch", "elastic-setup"),
        talks_to=("elasticsearch",),
        limits=limits,
        run_as=ELASTIC_USER,
    )
