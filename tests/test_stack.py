"""The whole stack under mocks: start order, migration, logging stack, application, ports, images, outputs."""

from __future__ import annotations

import runpy
from typing import Any

import pulumi
import pytest
import yaml
from harness import (
    PROJECT,
    ROOT,
    SSH_HOST_KEY,
    TEST_SECRETS,
    Deployment,
    Secret,
    deploy,
    deploy_stack,
    plain_strings,
    registry_digest,
    stack_config,
    stack_settings,
    unwrap,
    with_secrets,
)
from provider_read import parse_duration
from sentineliq_policy.rules import DOCUMENTED_CAPABILITIES

from sentinel_infra.docker.images import pinned
from sentinel_infra.settings import SERVICE_NAMES
from sentinel_infra.specs.edge import config_digest
from sentinel_infra.specs.model import HealthCheck, Limits, ServiceSpec

SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"


def remote(plain: dict[str, str] | None = None, **secrets: str) -> Deployment:
    """The prod stack on an ssh:// engine, with extra plain keys and secrets."""
    config, secret_keys = with_secrets(stack_config("prod"), {**TEST_SECRETS, "sshPrivateKey": SSH_KEY, **secrets})
    config[f"{PROJECT}:dockerHost"] = "ssh://deploy@docker-1.example.com:2222"
    config[f"{PROJECT}:sshHostKey"] = SSH_HOST_KEY
    config.update({f"{PROJECT}:{k}": v for k, v in (plain or {}).items()})
    return deploy(config, secret_keys, stack="prod")


def env_of(container: Any) -> dict[str, str]:
    return dict(entry.split("=", 1) for entry in container.plain("envs"))


# --- start order -------------------------------------------------------------------------------------------------

EXPECTED_EDGES = {
    "postgres-container": set(),
    "redis-container": set(),
    "minio-container": set(),
    "minio-setup-command": {"minio-container"},
    "elastic-password-command": set(),
    "elasticsearch-container": {"elastic-password-command"},
    "elastic-setup-command": {"elasticsearch-container"},
    "logstash-container": {"elasticsearch-container", "elastic-setup-command"},
    "kibana-container": {"elasticsearch-container", "elastic-setup-command"},
    "postgres-password-command": {"postgres-container"},
    "migrate-command": {"postgres-container", "postgres-password-command"},
    "server-container": {
        "postgres-container",
        "redis-container",
        "minio-container",
        "elasticsearch-container",
        "logstash-container",
        "minio-setup-command",
        "migrate-command",
    },
    "client-container": {"server-container"},
}
"""Edges between containers and commands; images, network and volumes are not start-order edges."""


def test_the_dependency_graph_edge_by_edge(prod: Deployment) -> None:
    gates = set(EXPECTED_EDGES)
    found = {name: prod.depends_on(prod.named(name)) & gates for name in EXPECTED_EDGES}
    assert found == EXPECTED_EDGES


def test_every_upstream_container_is_health_gated(prod: Deployment) -> None:
    for name, upstream in EXPECTED_EDGES.items():
        for dependency in upstream:
            resource = prod.named(dependency)
            if resource.type == "docker:index/container:Container":
                assert resource.inputs["wait"] is True, f"{name} waits on {dependency} without a health gate"


def services_of(deployment: Deployment) -> dict[str, Any]:
    """The eight services' containers (without the backup jobs)."""
    return {name: c for name, c in deployment.containers().items() if not name.startswith("backup-")}


def test_wait_timeouts_fit_each_service(prod: Deployment) -> None:
    timeouts = {service: c.inputs["waitTimeout"] for service, c in services_of(prod).items()}
    assert timeouts == {
        "postgres": 180,
        "redis": 90,
        "minio": 120,
        "elasticsearch": 300,
        "logstash": 300,
        "kibana": 300,
        "server": 180,
        "server-2": 180,
        "client": 90,
        "edge": 60,
    }
    for service, container in services_of(prod).items():
        check = container.plain("healthcheck")
        start = parse_duration(check["startPeriod"])
        assert start < timeouts[service] * 10**9, f"{service} would time out before its start period ends"


# --- the migration -----------------------------------------------------------------------------------------------


def test_the_migration_runs_with_the_server_image_of_this_update(prod: Deployment) -> None:
    migrate = prod.named("migrate-command")
    assert migrate.type == "command:local:Command"
    server_image = prod.named("images-server").urn
    assert server_image in migrate.dependencies
    image_id = prod.named("server-container").inputs["image"]
    assert migrate.inputs["triggers"] == [image_id]
    create = migrate.inputs["create"]
    assert create.startswith("docker run --rm --interactive --network=sentineliq-prod-network ")
    assert f" {image_id} " in create
    assert "prisma migrate deploy" in create


def test_the_database_url_reaches_the_migration_on_stdin_only(prod: Deployment) -> None:
    migrate = prod.named("migrate-command")
    url = f"postgresql://sentineliq:{TEST_SECRETS['postgresPassword']}@postgres:5432/sentineliq"
    assert migrate.inputs["stdin"] == Secret(url + "\n")
    assert migrate.inputs["environment"] == {"DOCKER_CONTEXT": "default"}, "nothing but the engine's selection"
    assert "DATABASE_URL=" not in migrate.inputs["create"]
    assert TEST_SECRETS["postgresPassword"] not in migrate.inputs["create"]
    assert {"stdout", "stderr"} <= set(migrate.additional_secret_outputs)


def test_the_migration_runs_over_ssh_on_a_remote_engine() -> None:
    deployment = remote()
    migrate = deployment.named("migrate-command")
    assert migrate.type == "command:remote:Command"
    connection = unwrap(migrate.inputs["connection"])
    assert (connection["host"], connection["port"], connection["user"]) == ("docker-1.example.com", 2222, "deploy")
    assert connection["privateKey"] == SSH_KEY
    assert isinstance(migrate.inputs["connection"], Secret)
    assert "environment" not in migrate.inputs
    assert migrate.inputs["create"].startswith("docker run ")
    assert deployment.of_type("command:local:Command") == []
    provider = deployment.of_type("pulumi:providers:docker")[0]
    assert provider.inputs["host"] == "ssh://deploy@docker-1.example.com:2222"
    assert "BatchMode=yes" in provider.plain("sshOpts")


def test_a_local_engine_on_another_socket_is_named_on_the_command() -> None:
    deployment = deploy_stack("dev", dockerHost="unix:///run/user/1000/docker.sock")
    create = deployment.named("migrate-command").inputs["create"]
    assert create.startswith("docker --host unix:///run/user/1000/docker.sock run ")


def test_the_migration_reruns_when_the_server_image_changes() -> None:
    before = deploy_stack("prod", serverTag="sha-aaaaaaa").named("migrate-command")
    after = deploy_stack("prod", serverTag="sha-bbbbbbb").named("migrate-command")
    assert before.inputs["triggers"] != after.inputs["triggers"]
    unchanged = deploy_stack("prod", serverTag="sha-aaaaaaa", clientTag="sha-ccccccc").named("migrate-command")
    assert unchanged.inputs == before.inputs


# --- logging stack -----------------------------------------------------------------------------------------------


def test_elasticsearch(prod: Deployment) -> None:
    es = prod.containers()["elasticsearch"]
    env = env_of(es)
    assert env["discovery.type"] == "single-node"
    assert env["xpack.security.enabled"] == "true"
    assert env["ELASTIC_PASSWORD"] == TEST_SECRETS["elasticPassword"]
    assert "ports" not in es.inputs
    assert es.plain("volumes") == [
        {"volumeName": "sentineliq-prod-elasticsearch-data", "containerPath": "/usr/share/elasticsearch/data"}
    ]
    check = es.plain("healthcheck")["tests"]
    assert check[0] == "CMD-SHELL"
    assert "_cluster/health" in check[1]
    assert '"$ELASTIC_PASSWORD"' in check[1]
    assert "curl -fsS -K -" in check[1], "credentials must reach curl on stdin, not as an argument"
    assert es.inputs["destroyGraceSeconds"] >= 60


@pytest.mark.parametrize(
    ("service", "variable", "fraction"),
    [("elasticsearch", "ES_JAVA_OPTS", 0.5), ("logstash", "LS_JAVA_OPTS", 0.5)],
)
@pytest.mark.parametrize("memory", [512, 2048, 4096])
def test_jvm_heaps_follow_memory_limits(service: str, variable: str, fraction: float, memory: int) -> None:
    deployment = deploy_stack("prod", resources=f'{{"{service}": {{"memoryMb": {memory}}}}}')
    heap = int(memory * fraction)
    assert env_of(deployment.containers()[service])[variable] == f"-Xms{heap}m -Xmx{heap}m"


def test_kibana_heap_follows_its_memory_limit() -> None:
    deployment = deploy_stack("prod", resources='{"kibana": {"memoryMb": 2048}}')
    assert env_of(deployment.containers()["kibana"])["NODE_OPTIONS"] == "--max-old-space-size=1536"


def test_logstash_pipeline_is_uploaded_not_bind_mounted(prod: Deployment) -> None:
    logstash = prod.containers()["logstash"]
    [upload] = logstash.plain("uploads")
    assert upload["file"] == "/usr/share/logstash/pipeline/logstash.conf"
    pipeline = (ROOT / "sentinel_infra" / "specs" / "files" / "logstash.conf").read_text()
    assert upload["content"] == pipeline
    for needle in (
        "port => 5000",
        "codec => json_lines",
        'user => "logstash_writer"',
        'password => "${LOGSTASH_WRITER_PASSWORD}"',
        'index => "sentineliq-logs-%{+YYYY.MM.dd}"',
    ):
        assert needle in pipeline
    assert env_of(logstash)["LOGSTASH_WRITER_PASSWORD"] == TEST_SECRETS["logstashPassword"]
    for container in services_of(prod).values():
        for volume in container.plain("volumes") or []:
            assert "hostPath" not in volume, "no host bind mounts: a remote host must work"


def test_kibana_uses_its_own_identity_and_distinct_keys(prod: Deployment) -> None:
    kibana = prod.containers()["kibana"]
    [upload] = kibana.plain("uploads")
    config = yaml.safe_load(upload["content"])
    assert config["elasticsearch.username"] == "kibana_system"
    assert config["elasticsearch.password"] == TEST_SECRETS["kibanaSystemPassword"]
    keys = [config[f"xpack.{k}.encryptionKey"] for k in ("encryptedSavedObjects", "security", "reporting")]
    assert keys[0] == TEST_SECRETS["kibanaEncryptionKey"]
    assert len(set(keys)) == 3
    assert all(len(key) >= 32 for key in keys)


def test_the_setup_step_sets_identities_over_stdin(prod: Deployment) -> None:
    setup = prod.named("elastic-setup-command")
    assert isinstance(setup.inputs["stdin"], Secret)
    stdin = unwrap(setup.inputs["stdin"])
    assert f'"password": "{TEST_SECRETS["kibanaSystemPassword"]}"' in stdin
    assert f'"password": "{TEST_SECRETS["logstashPassword"]}"' in stdin
    assert '"names": ["sentineliq-logs-*"]' in stdin
    create = setup.inputs["create"]
    for endpoint in (
        "_security/user/kibana_system/_password",
        "_security/role/logstash_writer",
        "_security/user/logstash_writer",
    ):
        assert endpoint in create
    assert setup.inputs["triggers"] == ["elasticsearch-container-id"]
    for secret in TEST_SECRETS.values():
        assert secret not in create


def test_the_setup_step_reruns_when_its_secrets_change() -> None:
    base = deploy_stack("prod").named("elastic-setup-command")
    rotated = remote_free_rotation("kibanaSystemPassword", "kibana-Rotated-0099-xyz")
    assert rotated.inputs["stdin"] != base.inputs["stdin"]
    assert rotated.inputs["create"] == base.inputs["create"]
    other = remote_free_rotation("jwtSecret", "jwt-rotated-secret-0099-0123456789abcdef")
    assert other.inputs["stdin"] == base.inputs["stdin"]


def remote_free_rotation(key: str, value: str) -> Any:
    config, secret_keys = with_secrets(stack_config("prod"), {**TEST_SECRETS, key: value})
    return deploy(config, secret_keys, stack="prod").named("elastic-setup-command")


# --- application -------------------------------------------------------------------------------------------------


def test_server_environment(prod: Deployment) -> None:
    env = env_of(prod.containers()["server"])
    assert env["DATABASE_URL"] == (
        f"postgresql://sentineliq:{TEST_SECRETS['postgresPassword']}@postgres:5432/sentineliq"
    )
    assert env["REDIS_URL"] == f"redis://:{TEST_SECRETS['redisPassword']}@redis:6379/0"
    assert env["S3_ENDPOINT"] == "http://minio:9000"
    assert env["S3_ACCESS_KEY_ID"] == "sentineliq-app"
    assert env["S3_SECRET_ACCESS_KEY"] == TEST_SECRETS["minioAppPassword"]
    assert env["S3_BUCKET"] == "sentineliq"
    assert env["LOGSTASH_HOST"] == "logstash:5000"
    assert env["JWT_SECRET"] == TEST_SECRETS["jwtSecret"]
    assert env["NODE_ENV"] == "production"
    assert env["PORT"] == "3001"
    assert env["WASP_WEB_CLIENT_URL"] == "https://app.sentineliq.com"
    assert env["WASP_SERVER_URL"] == "https://api.sentineliq.com"
    assert "SENTRY_DSN" not in env
    assert isinstance(prod.containers()["server"].inputs["envs"], Secret)


def test_passwords_are_url_encoded_in_connection_strings() -> None:
    config, secret_keys = with_secrets(stack_config("prod"), {**TEST_SECRETS, "postgresPassword": "p@ss/word:#?x1"})
    env = env_of(deploy(config, secret_keys, stack="prod").containers()["server"])
    assert env["DATABASE_URL"].startswith("postgresql://sentineliq:p%40ss%2Fword%3A%23%3Fx1@postgres:5432/")


def test_sentry_dsn_when_set() -> None:
    dsn = "https://abc123@o1.ingest.sentry.io/42"
    config, secret_keys = with_secrets(stack_config("prod"), {**TEST_SECRETS, "sentryDsn": dsn})
    server = deploy(config, secret_keys, stack="prod").containers()["server"]
    assert env_of(server)["SENTRY_DSN"] == dsn


def test_client(prod: Deployment) -> None:
    client = prod.containers()["client"]
    assert env_of(client) == {
        "REACT_APP_API_BASE_URL": "http://edge:3001",
        "SENTINELIQ_EDGE_CONFIG": config_digest(stack_settings("prod")),
    }
    assert client.plain("healthcheck")["tests"] == ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:3000/"]
    server_check = prod.containers()["server"].plain("healthcheck")["tests"]
    assert server_check[:3] == ["CMD", "node", "-e"]
    assert "http://127.0.0.1:3001/health" in server_check[3]


# --- ports ---------------------------------------------------------------------------------------------------------


def published(deployment: Deployment) -> dict[str, list[tuple[str, int, int]]]:
    return {
        service: [(p["ip"], p["external"], p["internal"]) for p in container.plain("ports")]
        for service, container in deployment.containers().items()
        if "ports" in container.inputs
    }


def test_only_the_edge_is_public(prod: Deployment, dev: Deployment) -> None:
    assert published(prod) == {
        "edge": [("0.0.0.0", 80, 8080), ("0.0.0.0", 443, 8443)],
        "kibana": [("127.0.0.1", 5601, 5601)],
        "minio": [("127.0.0.1", 9001, 9001)],
    }
    assert published(dev) == {
        "edge": [("127.0.0.1", 3000, 8000), ("127.0.0.1", 3001, 8001)],
        "kibana": [("127.0.0.1", 5601, 5601)],
        "minio": [("127.0.0.1", 9001, 9001)],
    }


def test_host_ports_are_configurable() -> None:
    """external keeps the seed's port contract on publicBindAddress; acme ignores hostPorts.client/server."""
    ports = '{"client": 13000, "server": 13001, "kibana": 8601, "minioConsole": 8901}'
    deployment = deploy_stack("prod", hostPorts=ports, edge='{"tls": "external"}')
    assert published(deployment) == {
        "edge": [("0.0.0.0", 13000, 8000), ("0.0.0.0", 13001, 8001)],
        "kibana": [("127.0.0.1", 8601, 5601)],
        "minio": [("127.0.0.1", 8901, 9001)],
    }


# --- images and registry -------------------------------------------------------------------------------------------


def test_application_images_are_pulled_by_their_registry_digest(prod: Deployment) -> None:
    """A moving tag is pulled as `repo@sha256:…`: the provider's create returns a local image of the same name
    before it pulls (images.py), so a tag name would keep the old build."""
    images = {r.name: r for r in prod.of_type("docker:index/remoteImage:RemoteImage")}
    for name in ("server", "client"):
        tag = f"ghcr.io/killsearch/saas-{name}:main"
        assert images[f"images-{name}"].inputs["name"] == f"ghcr.io/killsearch/saas-{name}@{registry_digest(tag)}"
    looked_up = sorted(args["name"] for token, args in prod.calls if token.endswith("getRegistryImage"))
    assert looked_up == ["ghcr.io/killsearch/saas-client:main", "ghcr.io/killsearch/saas-server:main"]
    for name in ("server", "client"):
        inputs = images[f"images-{name}"].inputs
        # A replaced build is removed from the host; force only drops the name of an image a container still runs.
        assert (inputs["keepLocally"], inputs["forceRemove"]) == (False, True)
        assert "pullTriggers" not in inputs, "a new digest is a new name: the name alone replaces the image"
    for name in ("postgres", "redis", "minio", "elasticsearch", "logstash", "kibana"):
        inputs = images[f"images-{name}"].inputs
        assert "@" not in inputs["name"] and "pullTriggers" not in inputs
        assert inputs["keepLocally"] is True and "forceRemove" not in inputs
    for container in services_of(prod).values():
        assert container.inputs["image"].startswith("sha256:"), "containers run the pulled image id"
        assert images[f"images-{container.service}"].urn in container.property_dependencies["image"]


def test_the_tag_stays_visible_in_labels_and_outputs(prod: Deployment) -> None:
    labels = {
        service: {item["label"]: item["value"] for item in container.plain("labels")}
        for service, container in prod.containers().items()
    }
    assert labels["server"]["io.sentineliq.image"] == "ghcr.io/killsearch/saas-server:main"
    assert labels["client"]["io.sentineliq.image"] == "ghcr.io/killsearch/saas-client:main"
    # Only the digest-pinned images need it; a label on the others would replace them once for nothing.
    # (every server replica runs the server image; replicas register in no fixed order).
    assert {s for s, found in labels.items() if "io.sentineliq.image" in found} == {"server", "server-2", "client"}
    assert prod.outputs["images"]["server"] == "ghcr.io/killsearch/saas-server:main"
    assert prod.outputs["images"]["postgres"] == "postgres:16-alpine"
    digest = registry_digest("ghcr.io/killsearch/saas-server:main")
    assert prod.outputs["imageDigests"]["server"] == f"ghcr.io/killsearch/saas-server@{digest}"


DIGEST = f"sha256:{'cd' * 32}"


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("ghcr.io/killsearch/saas-server:main", "ghcr.io/killsearch/saas-server"),
        ("registry.local:5000/team/app:sha-1", "registry.local:5000/team/app"),
        ("registry.local:5000/app", "registry.local:5000/app"),
        ("postgres:16-alpine", "postgres"),
        (f"ghcr.io/x/app:main@{DIGEST}", "ghcr.io/x/app"),
    ],
)
def test_a_pinned_name_keeps_the_registry_port_and_drops_the_tag(reference: str, expected: str) -> None:
    assert pinned(reference, DIGEST) == f"{expected}@{DIGEST}"


@pytest.mark.parametrize("answer", ["", "sha256:abc", "md5:" + "0" * 32, f"{DIGEST}\n"])
def test_a_pinned_name_refuses_what_is_not_a_digest(answer: str) -> None:
    with pytest.raises(ValueError, match="not a sha256 digest"):
        pinned("ghcr.io/x/app:main", answer)


def test_elastic_images_are_8_11(prod: Deployment) -> None:
    names = {r.name: r.inputs["name"] for r in prod.of_type("docker:index/remoteImage:RemoteImage")}
    assert names["images-elasticsearch"] == "docker.elastic.co/elasticsearch/elasticsearch:8.11.0"
    assert names["images-logstash"] == "docker.elastic.co/logstash/logstash:8.11.0"
    assert names["images-kibana"] == "docker.elastic.co/kibana/kibana:8.11.0"


def test_registry_auth_when_configured() -> None:
    config, secret_keys = with_secrets(stack_config("prod"), {**TEST_SECRETS, "registryToken": "ghp_t0ken-value"})
    config[f"{PROJECT}:registryUsername"] = "ci-bot"
    provider = deploy(config, secret_keys, stack="prod").of_type("pulumi:providers:docker")[0]
    assert isinstance(provider.inputs["registryAuth"], Secret)
    assert "ghp_t0ken-value" in str(unwrap(provider.inputs["registryAuth"]))
    assert '"address": "ghcr.io"' in unwrap(provider.inputs["registryAuth"])


def test_no_registry_auth_by_default(prod: Deployment) -> None:
    assert "registryAuth" not in prod.of_type("pulumi:providers:docker")[0].inputs


# --- outputs -------------------------------------------------------------------------------------------------------


def test_outputs(prod: Deployment) -> None:
    assert prod.outputs["appUrl"] == "https://app.sentineliq.com"
    assert prod.outputs["apiUrl"] == "https://api.sentineliq.com"
    assert prod.outputs["kibana"] == "http://127.0.0.1:5601"
    assert set(prod.outputs["containers"]) == set(prod.containers())
    assert set(prod.outputs["imageDigests"]) == set(prod.containers()) - {"server-2"}, "one per service"
    assert set(services_of(prod)) == {*SERVICE_NAMES, "server-2"}
    assert prod.outputs["imageDigests"]["server"].startswith("ghcr.io/killsearch/saas-server@sha256:")
    assert not prod.secret_outputs


def test_outputs_say_how_to_reach_loopback_ports_on_a_remote_host() -> None:
    outputs = remote().outputs
    tunnel = "ssh -p 2222 -N -L 5601:127.0.0.1:5601 deploy@docker-1.example.com"
    assert outputs["kibana"] == f"http://127.0.0.1:5601 after: {tunnel}"


def test_no_secret_anywhere_in_plain_text() -> None:
    deployment = remote(
        {"registryUsername": "ci-bot"},
        registryToken="ghp_t0ken-value",
        sentryDsn="https://abc123@o1.ingest.sentry.io/42",
    )
    secrets = [*TEST_SECRETS.values(), "ghp_t0ken-value", "abc123@o1", "b3BlbnNzaC1rZXktdjEAAAAA"]
    for resource in deployment.resources:
        for text in plain_strings(resource.inputs):
            for secret in secrets:
                assert secret not in text, f"{resource.name} shows a secret in plain text"
    for text in plain_strings(deployment.outputs):
        for secret in secrets:
            assert secret not in text


def test_main_exports_the_stack_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    exported: dict[str, Any] = {}
    monkeypatch.setattr(pulumi, "export", exported.__setitem__)

    def program() -> dict[str, Any]:
        runpy.run_path(str(ROOT / "__main__.py"))
        return exported

    deployment = deploy(*with_secrets(stack_config("prod")), stack="prod", program=program)
    reference = deploy(*with_secrets(stack_config("prod")), stack="prod")
    assert deployment.outputs == reference.outputs


# --- hardening -----------------------------------------------------------------------------------------------------


def test_every_container_drops_all_capabilities_and_adds_only_its_own(prod: Deployment) -> None:
    found = {}
    for service, container in services_of(prod).items():
        capabilities = container.plain("capabilities")
        assert capabilities["drops"] == ["ALL"], service
        found[service] = capabilities.get("adds")
    # Exactly the adds documented at the specs, which the policy pack allows (test_policy keeps the two equal).
    assert found == {service: DOCUMENTED_CAPABILITIES.get(service) for service in found}


def test_postgres_runs_on_a_read_only_root(prod: Deployment) -> None:
    postgres = prod.containers()["postgres"]
    assert postgres.inputs["readOnly"] is True
    assert set(postgres.plain("tmpfs")) == {"/var/run/postgresql", "/tmp"}
    for service in ("redis", "logstash"):
        assert "readOnly" not in prod.containers()[service].inputs, "uploads need a writable root"


def test_a_spec_cannot_leave_an_image_volume_unmounted() -> None:
    with pytest.raises(ValueError, match="image VOLUME /data is not on a named volume"):
        ServiceSpec(
            name="x",
            image="x:1",
            healthcheck=HealthCheck(test=("CMD", "true")),
            ready_timeout=10,
            limits=Limits(cpus=1, memory_mb=64),
            image_volumes=("/data",),
        )


# --- backup jobs ---------------------------------------------------------------------------------------------------


def test_prod_runs_a_daily_backup_job_per_data_service(prod: Deployment) -> None:
    containers = prod.containers()
    scripts = {name: (ROOT / "backup" / name).read_text() for name in ("backup", "restore")}
    for service in ("postgres", "redis", "minio"):
        job = containers[f"backup-{service}"]
        assert job.inputs["image"] == containers[service].inputs["image"], "the image the stack already pulls"
        assert job.inputs["entrypoints"] == ["/bin/sh", "/opt/sentineliq/backup"]
        assert job.inputs["command"] == ["--loop", service, "/backups"]
        assert job.plain("volumes") == [{"hostPath": "/var/backups/sentineliq-prod", "containerPath": "/backups"}]
        uploads = {u["file"]: u for u in job.plain("uploads")}
        assert uploads["/opt/sentineliq/backup"]["content"] == scripts["backup"]
        assert uploads["/opt/sentineliq/restore"]["content"] == scripts["restore"]
        env = env_of(job)
        assert (env["BACKUP_TIME"], env["BACKUP_RETENTION_DAYS"]) == ("02:30", "30")
        assert isinstance(job.inputs["envs"], Secret)
        assert job.plain("healthcheck")["tests"] == ["CMD-SHELL", '[ "$(cat /tmp/backup-status)" = ok ]']
        assert prod.depends_on(job) >= {f"{service}-container"}
        assert "/var/run/docker.sock" not in str(job.inputs)
    assert env_of(containers["backup-postgres"])["PGPASSWORD"] == TEST_SECRETS["postgresPassword"]
    assert env_of(containers["backup-redis"])["REDISCLI_AUTH"] == TEST_SECRETS["redisPassword"]
    assert env_of(containers["backup-minio"])["MC_HOST_source"] == (
        f"http://sentineliq:{TEST_SECRETS['minioRootPassword']}@minio:9000"
    )
    assert prod.outputs["backups"] == "/var/backups/sentineliq-prod on the Docker host"
    assert len(prod.of_type("docker:index/remoteImage:RemoteImage")) == 9, "backup jobs and replicas share pulls"


def test_backup_schedule_retention_and_path_are_configurable() -> None:
    deployment = deploy_stack(
        "prod", backup='{"time": "04:15", "retentionDays": 7, "path": "/srv/backups/sentineliq/"}'
    )
    job = deployment.containers()["backup-redis"]
    assert (env_of(job)["BACKUP_TIME"], env_of(job)["BACKUP_RETENTION_DAYS"]) == ("04:15", "7")
    assert job.plain("volumes")[0]["hostPath"] == "/srv/backups/sentineliq"


def test_dev_runs_no_backup_job(dev: Deployment) -> None:
    assert not [name for name in dev.containers() if name.startswith("backup-")]
    assert dev.outputs["backups"] == "disabled"
