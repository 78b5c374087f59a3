"""The Elastic security setup: what Elastic's own compose file does in its `setup` service, as a one-shot step.

It sets `kibana_system`'s password and creates or updates Logstash's role and user; it runs once Elasticsearch is
ready, again when a password changes (stdin) or the Elasticsearch container is new.
"""

from __future__ import annotations

import json

from pydantic import SecretStr

from ..settings import Settings
from .elasticsearch import basic_auth_config
from .model import NewInstance, OneShotSpec

LOG_INDICES = "sentineliq-logs-*"

WRITER_ROLE = {
    "cluster": ["monitor"],
    "indices": [{"names": [LOG_INDICES], "privileges": ["create_index", "create_doc", "auto_configure"]}],
}
"""Logstash's role: create the daily index and append documents to it; no read, update, delete or admin."""


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


def elastic_setup_step(settings: Settings) -> OneShotSpec:
    """In a new container of the Elasticsearch image once it is ready; again when the cluster's container is new."""
    return OneShotSpec(
        name="elastic-setup",
        service="elasticsearch",
        script=SETUP_SCRIPT,
        stdin=setup_input(settings),
        after=("elasticsearch",),
        talks_to=("elasticsearch",),
        reruns=(NewInstance("elasticsearch"),),
    )
