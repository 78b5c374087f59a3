"""Credential rotation for the two images that apply a password only when their data directory is created.

`POSTGRES_PASSWORD` and `ELASTIC_PASSWORD` bootstrap an empty volume and are ignored afterwards, so a changed
secret would leave the database on the old password while every client moved to the new one. These steps apply
the configured password to the running data on every change of the secret (their stdin carries it, and a changed
input runs a command again):

- PostgreSQL: after its container is healthy and before the migration and the server use the new URL, an
  `ALTER ROLE` through the container's local socket (trusted by the image inside the container only).
- Elasticsearch: before its container is replaced with the new `ELASTIC_PASSWORD` (whose health check
  authenticates with it), inside the *running* container: if the new password does not authenticate yet,
  `elasticsearch-reset-password` sets it. On the first deployment there is no container and nothing to do.

Kibana's and Logstash's identities are set by the Elastic setup step, which runs again when they change.
"""

from __future__ import annotations

from pydantic import SecretStr

from ..settings import Settings
from .elasticsearch import basic_auth_config
from .model import OneShotSpec
from .postgres import DATABASE

POSTGRES_SCRIPT = f"""set -eu
exec psql --no-psqlrc --quiet -v ON_ERROR_STOP=1 -U {DATABASE} -d {DATABASE}
"""
"""psql reads the statements from the step's stdin, over the container's local socket."""


def postgres_statements(password: SecretStr) -> SecretStr:
    """Keep the statement out of the server log even if it fails, then set the password."""
    literal = password.get_secret_value().replace("'", "''")
    return SecretStr(
        "SET log_statement = 'none';\n"
        "SET log_min_error_statement = 'panic';\n"
        f"ALTER ROLE {DATABASE} WITH PASSWORD '{literal}';\n"
    )


ELASTIC_SCRIPT = """set -eu
IFS= read -r auth
IFS= read -r password
config=$(mktemp)
trap 'rm -f "$config"' EXIT
printf '%s\\n' "$auth" > "$config"
if curl -fsS -o /dev/null -K "$config" http://127.0.0.1:9200/_security/_authenticate; then
  echo 'the elastic password is current'
  exit 0
fi
printf '%s\\n%s\\n' "$password" "$password" \\
  | "${ES_HOME:-/usr/share/elasticsearch}/bin/elasticsearch-reset-password" --username elastic --interactive \\
      --batch --url http://127.0.0.1:9200 >/dev/null
echo 'the elastic password was reset'
"""


def elastic_input(settings: Settings) -> SecretStr:
    auth = basic_auth_config("elastic", settings.elastic_password)
    return SecretStr(f"{auth}\n{settings.elastic_password.get_secret_value()}\n")


def postgres_password_step(settings: Settings) -> OneShotSpec:
    """Applies `postgresPassword` to the `sentineliq` role of the running database, once it is ready."""
    return OneShotSpec(
        name="postgres-password",
        service="postgres",
        script=POSTGRES_SCRIPT,
        stdin=postgres_statements(settings.postgres_password),
        after=("postgres",),
        in_service=True,
    )


def elastic_password_step(settings: Settings) -> OneShotSpec:
    """Applies `elasticPassword` to the `elastic` user of the running cluster, before its container is replaced
    (Elasticsearch's spec starts after it); nothing to do on a first deployment."""
    return OneShotSpec(
        name="elastic-password",
        service="elasticsearch",
        script=ELASTIC_SCRIPT,
        stdin=elastic_input(settings),
        in_service=True,
        skip_if_absent=True,
    )
