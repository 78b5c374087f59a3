"""Kibana's configuration file and key rotation, MinIO's least-privilege setup: what the program registers.

The shell of these steps and the health checks run for real in test_scripts.py and test_readiness.py; the upload's
owner and mode against a real engine in test_docker_engine.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import TEST_SECRETS, Deployment, Secret, deploy_with, plain_strings, unwrap
from test_settings import problems_of

from sentinel_infra.settings import MINIO_APP_USER

KIBANA_SETTING_NAMES = {
    line.strip()
    for line in (Path(__file__).parent / "fixtures" / "kibana-8.11.0-settings.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
}
"""Kibana 8.11.0's settings as its image's entrypoint knows them (the fixture cites its source)."""


def kibana_yml(deployment: Deployment) -> dict[str, Any]:
    [upload] = deployment.containers()["kibana"].plain("uploads")
    assert upload["file"] == "/usr/share/kibana/config/kibana.yml"
    config: dict[str, Any] = yaml.safe_load(upload["content"])
    return config


def test_kibana_yml_uses_only_kibana_8_11_setting_names(prod: Deployment) -> None:
    config = kibana_yml(prod)
    assert set(config) <= KIBANA_SETTING_NAMES, set(config) - KIBANA_SETTING_NAMES
    assert config["elasticsearch.hosts"] == ["http://elasticsearch:9200"]
    assert config["server.host"] == "0.0.0.0"
    # The health check reads the status code, which Kibana 8.9+ gives anonymous requests: no anonymous full status.
    assert "status.allowAnonymous" not in config


def test_kibana_gets_no_setting_from_its_environment(prod: Deployment) -> None:
    """The entrypoint's loop: each setting name, upper-cased with dots as underscores, that is set in the
    environment becomes `--name=value` on Kibana's command line (visible to `ps` on the host)."""
    kibana = prod.containers()["kibana"]
    names = {entry.split("=", 1)[0] for entry in kibana.plain("envs") or []}
    as_arguments = {name.upper().replace(".", "_") for name in KIBANA_SETTING_NAMES}
    assert names & as_arguments == set()
    for entry in kibana.plain("envs") or []:
        for secret in TEST_SECRETS.values():
            assert secret not in entry
    assert isinstance(kibana.inputs["uploads"], Secret)
    assert "uploads" in kibana.additional_secret_outputs


TRICKY = "a b\"c'd: #e&*!|>%@{}[],\\x-ü"


def test_kibana_yml_carries_any_password_intact() -> None:
    config = kibana_yml(deploy_with(kibanaSystemPassword="-" + TRICKY, kibanaEncryptionKey=TRICKY * 2))
    assert config["elasticsearch.password"] == "-" + TRICKY
    assert config["xpack.encryptedSavedObjects.encryptionKey"] == TRICKY * 2


def test_a_rotated_kibana_key_keeps_the_old_one_for_decryption_only() -> None:
    old, new = TEST_SECRETS["kibanaEncryptionKey"], "a-brand-new-kibana-encryption-key-0123456789"
    before = kibana_yml(deploy_with())
    assert "xpack.encryptedSavedObjects.keyRotation.decryptionOnlyKeys" not in before
    rotated = deploy_with(kibanaEncryptionKey=new, kibanaPreviousEncryptionKeys=json.dumps([old]))
    after = kibana_yml(rotated)
    assert after["xpack.encryptedSavedObjects.encryptionKey"] == new
    assert after["xpack.encryptedSavedObjects.keyRotation.decryptionOnlyKeys"] == [old]
    for resource in rotated.resources:
        for text in plain_strings(resource.inputs):
            assert old not in text and new not in text, resource.name


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("not json", "must be a JSON list of earlier keys"),
        ('"one-key-but-not-in-a-list-0123456789"', "must be a non-empty JSON list of strings"),
        ("[]", "must be a non-empty JSON list of strings"),
        ('["short-key"]', "entry 1 must have 32 to 1024 characters"),
        (json.dumps(["k" * 40, "k" * 40]), "must not list a key twice"),
        (json.dumps(["k" * 39 + "\n"]), "must not contain control characters"),
    ],
)
def test_previous_kibana_keys_are_validated_without_echo(value: str, rule: str) -> None:
    problems = problems_of(kibanaPreviousEncryptionKeys=value)
    found, fix = problems["kibanaPreviousEncryptionKeys"]
    assert rule in found
    assert value not in found + fix
    assert fix.startswith("pulumi config set --secret sentineliq:kibanaPreviousEncryptionKeys ")


def test_the_minio_application_password_is_a_required_validated_secret() -> None:
    assert problems_of(minioAppPassword=None)["minioAppPassword"][0] == "is required but not set"
    rule, _ = problems_of(minioAppPassword="Sh0rt!pw")["minioAppPassword"]
    assert rule == "must have at least 12 characters (the value set has 8)"
    assert "control characters" in problems_of(minioAppPassword="line-one-ok\nline-two")["minioAppPassword"][0]
    assert MINIO_APP_USER in problems_of(minioRootUser=MINIO_APP_USER)["minioRootUser"][0]


# --- MinIO least privilege -----------------------------------------------------------------------------------------


def test_the_server_holds_only_the_application_user(prod: Deployment) -> None:
    server = prod.containers()["server"]
    env = dict(entry.split("=", 1) for entry in server.plain("envs"))
    assert (env["S3_ACCESS_KEY_ID"], env["S3_SECRET_ACCESS_KEY"]) == (MINIO_APP_USER, TEST_SECRETS["minioAppPassword"])
    assert TEST_SECRETS["minioRootPassword"] not in json.dumps(unwrap(server.inputs))
    assert "minio-setup-command" in prod.depends_on(server)


def test_the_minio_setup_runs_after_minio_with_its_secrets_on_stdin(prod: Deployment) -> None:
    setup = prod.named("minio-setup-command")
    assert prod.depends_on(setup) >= {"minio-container"}
    assert setup.inputs["triggers"] == ["minio-container-id"]
    assert isinstance(setup.inputs["stdin"], Secret)
    config, policy, password = unwrap(setup.inputs["stdin"]).splitlines()
    alias = json.loads(config)["aliases"]["stack"]
    assert (alias["url"], alias["accessKey"], alias["secretKey"]) == (
        "http://minio:9000",
        "sentineliq",
        TEST_SECRETS["minioRootPassword"],
    )
    assert json.loads(policy)["Statement"][1]["Resource"] == ["arn:aws:s3:::sentineliq/*"]
    assert password == TEST_SECRETS["minioAppPassword"]
    create = setup.inputs["create"]
    assert create.startswith("docker run --rm --interactive --network=sentineliq-prod-network ")
    for secret in TEST_SECRETS.values():
        assert secret not in create
    assert setup.additional_secret_outputs == ["stdout", "stderr"]


def test_a_new_bucket_reruns_the_setup() -> None:
    before, after = deploy_with(), deploy_with(plain={"s3Bucket": "sentineliq-files"})
    assert before.named("minio-setup-command").inputs["create"] != after.named("minio-setup-command").inputs["create"]
    assert "arn:aws:s3:::sentineliq-files/*" in unwrap(after.named("minio-setup-command").inputs["stdin"])


def s3_hosts(env: dict[str, str]) -> set[str]:
    """The hosts an AWS SDK client contacts for a bucket: `<bucket>.<endpoint host>` (virtual-hosted style) unless
    path style is forced (`forcePathStyle` in AWS SDK v3's S3 client, which the server reads from
    S3_FORCE_PATH_STYLE). A model of the SDK, not the SDK: the server's code is not part of this repository."""
    endpoint = env["S3_ENDPOINT"].split("://", 1)[1].split(":")[0]
    if env["S3_FORCE_PATH_STYLE"] == "true":
        return {endpoint}
    return {f"{env['S3_BUCKET']}.{endpoint}"}


def test_the_server_reaches_its_bucket_by_a_name_the_stack_network_resolves(prod: Deployment) -> None:
    server = prod.containers()["server"]
    env = dict(entry.split("=", 1) for entry in server.plain("envs"))
    aliases = {alias for c in prod.containers().values() for alias in c.plain("networksAdvanced")[0]["aliases"]}
    assert s3_hosts(env) <= aliases
