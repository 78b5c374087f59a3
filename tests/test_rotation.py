"""Changing a secret in config and running `pulumi up` rotates it everywhere: what re-runs, in which order.

Each case evaluates the prod stack twice, before and after the change, and compares the registered inputs:
exactly the resources that use the secret change (a changed command input runs the command again; a changed
container input replaces the container), and the steps that move the data's own password run in the right place.
"""

from __future__ import annotations

import json

import pytest
from harness import Deployment, Secret, changed, deploy_with, unwrap

ROTATIONS = {
    "postgresPassword": {
        "postgres-container",
        "postgres-password-command",
        "migrate-command",
        "server-container",
        "server-2-container",
        "backup-postgres-container",
    },
    "redisPassword": {"redis-container", "server-container", "server-2-container", "backup-redis-container"},
    "minioRootPassword": {"minio-container", "minio-setup-command", "backup-minio-container"},
    # The servers hold only the application user's password, never MinIO's root.
    "minioAppPassword": {"minio-setup-command", "server-container", "server-2-container"},
    "elasticPassword": {"elastic-password-command", "elasticsearch-container", "elastic-setup-command"},
    "kibanaSystemPassword": {"elastic-setup-command", "kibana-container"},
    "logstashPassword": {"elastic-setup-command", "logstash-container"},
    "kibanaEncryptionKey": {"kibana-container"},
    "jwtSecret": {"server-container", "server-2-container"},  # prod runs two server replicas
}
NEW_VALUE = "rotated-Secret-value-0123456789-abcdefghij"


@pytest.fixture(scope="module")
def before() -> Deployment:
    return deploy_with()


@pytest.mark.parametrize("key", sorted(ROTATIONS))
def test_a_rotation_touches_exactly_what_uses_the_secret(before: Deployment, key: str) -> None:
    after = deploy_with(**{key: NEW_VALUE})
    assert changed(before, after) == ROTATIONS[key]
    for name in ROTATIONS[key]:
        for field, value in after.named(name).inputs.items():
            if NEW_VALUE in json.dumps(unwrap(value)):
                assert isinstance(value, Secret), f"{name}: {field} carries the new secret in plain text"


def test_postgres_gets_the_new_password_before_its_clients(before: Deployment) -> None:
    after = deploy_with(postgresPassword=NEW_VALUE)
    step = after.named("postgres-password-command")
    statements = unwrap(step.inputs["stdin"])
    assert f"ALTER ROLE sentineliq WITH PASSWORD '{NEW_VALUE}';" in statements
    assert "SET log_statement = 'none';" in statements
    assert step.inputs["create"].startswith("docker exec --interactive sentineliq-prod-postgres /bin/sh -c ")
    assert NEW_VALUE not in step.inputs["create"]
    assert after.depends_on(step) >= {"postgres-container"}
    assert "postgres-password-command" in after.depends_on(after.named("migrate-command"))
    assert "migrate-command" in after.depends_on(after.named("server-container"))


def test_quotes_in_a_postgres_password_are_escaped() -> None:
    step = deploy_with(postgresPassword="it's-a-long-password").named("postgres-password-command")
    assert "PASSWORD 'it''s-a-long-password';" in unwrap(step.inputs["stdin"])


def test_elastic_gets_the_new_password_before_its_container_is_replaced(before: Deployment) -> None:
    after = deploy_with(elasticPassword=NEW_VALUE)
    step = after.named("elastic-password-command")
    assert step.inputs["create"].startswith("if docker container inspect sentineliq-prod-elasticsearch ")
    assert NEW_VALUE in unwrap(step.inputs["stdin"])
    assert NEW_VALUE not in step.inputs["create"]
    assert "elastic-password-command" in after.depends_on(after.named("elasticsearch-container"))
    # The setup step authenticates with the new password and runs after the new container is healthy.
    assert "elasticsearch-container" in after.depends_on(after.named("elastic-setup-command"))
    for service in ("kibana", "logstash"):
        assert "elastic-setup-command" in after.depends_on(after.named(f"{service}-container"))
