"""The foundation under mocks: provider, network, volumes and the three data services, for both stack files."""

from __future__ import annotations

from collections import Counter

from harness import TEST_SECRETS, Deployment, Secret, deploy_stack, plain_strings, unwrap
from provider_read import parse_duration

CONTAINER = "docker:index/container:Container"
DATA = ("postgres", "redis", "minio")


def test_data_tier_resources(prod: Deployment) -> None:
    counts = Counter(r.type for r in prod.resources if r.custom)
    assert counts["pulumi:providers:docker"] == 1
    assert counts["docker:index/network:Network"] == 1
    assert counts["docker:index/volume:Volume"] == 5
    for service in DATA:
        assert service in prod.containers()


def test_every_docker_resource_uses_the_explicit_provider(prod: Deployment) -> None:
    provider = prod.of_type("pulumi:providers:docker")[0]
    docker_resources = [r for r in prod.resources if r.type.startswith("docker:")]
    assert docker_resources
    for resource in docker_resources:
        assert resource.provider.startswith(provider.urn + "::"), resource.name


def test_children_are_parented_and_prefixed(prod: Deployment) -> None:
    components = {r.urn: r for r in prod.resources if not r.custom}
    for resource in prod.resources:
        parent = components.get(resource.parent)
        if parent is not None:
            assert resource.name.startswith(parent.name + "-"), (resource.name, parent.name)
    for service, container in prod.containers().items():
        assert components[container.parent].type == "sentineliq:service:ServiceContainer"
        assert components[container.parent].name == service


def test_network_and_volumes_carry_project_and_stack(prod: Deployment, dev: Deployment) -> None:
    network = prod.of_type("docker:index/network:Network")[0]
    assert network.inputs["name"] == "sentineliq-prod-network"
    assert network.inputs["driver"] == "bridge"
    names = {v.inputs["name"] for v in prod.of_type("docker:index/volume:Volume")}
    assert names == {f"sentineliq-prod-{k}-data" for k in ("postgres", "redis", "minio", "elasticsearch", "edge")}
    assert {v.inputs["name"] for v in dev.of_type("docker:index/volume:Volume")}.isdisjoint(names)
    for container in prod.containers().values():
        assert container.plain("networksAdvanced")[0]["name"] == "sentineliq-prod-network"


def test_volumes_protected_in_prod_not_in_dev(prod: Deployment, dev: Deployment) -> None:
    for volume in prod.of_type("docker:index/volume:Volume"):
        assert volume.protect and volume.retain_on_delete, volume.name
    for volume in dev.of_type("docker:index/volume:Volume"):
        assert not volume.protect and not volume.retain_on_delete, volume.name


def test_data_lives_on_the_named_volumes(prod: Deployment) -> None:
    mounts = {
        service: {(m["volumeName"], m["containerPath"]) for m in prod.containers()[service].plain("volumes")}
        for service in DATA
    }
    assert mounts["postgres"] == {("sentineliq-prod-postgres-data", "/var/lib/postgresql/data")}
    assert mounts["redis"] == {("sentineliq-prod-redis-data", "/data")}
    assert mounts["minio"] == {("sentineliq-prod-minio-data", "/data")}


def test_health_checks_prove_readiness(prod: Deployment) -> None:
    containers = prod.containers()
    checks = {service: containers[service].plain("healthcheck") for service in DATA}
    assert checks["postgres"]["tests"][0] == "CMD-SHELL"
    assert "pg_isready -h 127.0.0.1" in checks["postgres"]["tests"][1]
    assert checks["redis"]["tests"] == ["CMD-SHELL", '[ "$(redis-cli -h 127.0.0.1 ping)" = PONG ]']
    assert "REDISCLI_AUTH=" + TEST_SECRETS["redisPassword"] in containers["redis"].plain("envs")
    assert checks["minio"]["tests"] == ["CMD", "mc", "ready", "local"]
    for service, check in checks.items():
        # Seen within a second during start-up and within 10 s later, not Docker's 30 s default.
        assert check["startInterval"] == "1s", service
        assert parse_duration(check["interval"]) <= 10 * 10**9, service
        assert check["retries"] >= 3


def test_wait_timeouts_and_replacement_options(prod: Deployment) -> None:
    timeouts = {}
    for service, container in prod.containers().items():
        assert container.inputs["wait"] is True
        assert container.replace_on_changes == ["healthcheck"]
        # Explicit either way: unset would leave pulumi-docker's own delete-before-replace.
        assert container.delete_before_replace_defined
        assert container.delete_before_replace is (container.service not in ("server", "client"))
        assert container.inputs["restart"] == "unless-stopped"
        assert container.inputs["securityOpts"] == ["no-new-privileges:true"]
        assert container.inputs["logOpts"] == {"max-size": "10m", "max-file": "5"}
        timeouts[service] = container.inputs["waitTimeout"]
    assert timeouts["postgres"] >= 120
    assert timeouts["redis"] >= 60
    assert timeouts["minio"] >= 60


def test_postgres_is_never_killed_without_grace(prod: Deployment) -> None:
    postgres = prod.containers()["postgres"]
    assert postgres.inputs["destroyGraceSeconds"] >= 60
    assert postgres.inputs["stopTimeout"] >= 60


def test_limits_follow_the_stack_file(prod: Deployment, dev: Deployment) -> None:
    expected_prod = {"postgres": ("2.0", 4096), "redis": ("1.0", 1024), "minio": ("0.5", 512)}
    expected_dev = {"postgres": ("1.0", 512), "redis": ("0.5", 256), "minio": ("0.5", 256)}
    for deployment, expected in ((prod, expected_prod), (dev, expected_dev)):
        for service, (cpus, memory) in expected.items():
            container = deployment.containers()[service]
            assert container.inputs["cpus"] == cpus
            assert container.inputs["memory"] == memory
            assert container.inputs["memorySwap"] == memory


def test_a_partial_override_keeps_the_other_default() -> None:
    deployment = deploy_stack("prod", resources='{"redis": {"memoryMb": 2048}}')
    redis = deployment.containers()["redis"]
    assert (redis.inputs["cpus"], redis.inputs["memory"]) == ("1.0", 2048)
    postgres = deployment.containers()["postgres"]
    assert (postgres.inputs["cpus"], postgres.inputs["memory"]) == ("2.0", 4096)


def test_service_discovery_aliases(prod: Deployment) -> None:
    for service in DATA:
        assert prod.containers()[service].plain("networksAdvanced")[0]["aliases"] == [service]


def test_no_published_port_but_the_minio_console_on_loopback(prod: Deployment) -> None:
    containers = prod.containers()
    assert "ports" not in containers["postgres"].inputs
    assert "ports" not in containers["redis"].inputs
    assert containers["minio"].plain("ports") == [
        {"internal": 9001, "external": 9001, "ip": "127.0.0.1", "protocol": "tcp"}
    ]


def test_credentials_are_secret_and_nowhere_in_plain_text(prod: Deployment) -> None:
    containers = prod.containers()
    assert isinstance(containers["postgres"].inputs["envs"], Secret)
    assert isinstance(containers["minio"].inputs["envs"], Secret)
    assert isinstance(containers["redis"].inputs["uploads"], Secret)
    assert "POSTGRES_PASSWORD=" + TEST_SECRETS["postgresPassword"] in containers["postgres"].plain("envs")
    assert "MINIO_ROOT_PASSWORD=" + TEST_SECRETS["minioRootPassword"] in containers["minio"].plain("envs")
    for service in DATA:
        assert containers[service].additional_secret_outputs == ["envs", "uploads"]
    for resource in prod.resources:
        for text in plain_strings(resource.inputs):
            for secret in TEST_SECRETS.values():
                assert secret not in text, f"{resource.name} shows a secret in plain text"


def test_redis_requires_its_password_without_showing_it(prod: Deployment) -> None:
    redis = prod.containers()["redis"]
    assert redis.inputs["command"] == ["redis-server", "/usr/local/etc/redis/redis.conf"]
    config = unwrap(redis.inputs["uploads"])[0]
    assert config["file"] == "/usr/local/etc/redis/redis.conf"
    assert f'requirepass "{TEST_SECRETS["redisPassword"]}"\n' in config["content"]
    assert "appendonly yes" in config["content"]


def test_images_are_pinned_and_kept(prod: Deployment) -> None:
    images = {r.name: r.inputs for r in prod.of_type("docker:index/remoteImage:RemoteImage")}
    assert images["images-postgres"]["name"] == "postgres:16-alpine"
    assert images["images-redis"]["name"] == "redis:7-alpine"
    assert images["images-minio"]["name"].startswith("minio/minio:RELEASE.")
    for service in DATA:
        assert images[f"images-{service}"]["keepLocally"] is True, service
    for service in DATA:
        container = prod.containers()[service]
        assert prod.named(f"images-{service}").urn in container.property_dependencies["image"]


def test_stack_outputs(prod: Deployment) -> None:
    assert prod.outputs["network"] == "sentineliq-prod-network"
    for service in DATA:
        assert prod.outputs["containers"][service] == f"sentineliq-prod-{service}"
    assert prod.outputs["volumes"]["postgres-data"] == "sentineliq-prod-postgres-data"
    assert prod.outputs["minioConsole"].startswith("http://127.0.0.1:9001")
    assert not prod.secret_outputs
    for text in plain_strings(prod.outputs):
        for secret in TEST_SECRETS.values():
            assert secret not in text


def test_the_local_engine_by_default(dev: Deployment) -> None:
    provider = dev.of_type("pulumi:providers:docker")[0]
    assert "host" not in provider.inputs


def test_existing_volumes_can_be_adopted_by_name() -> None:
    deployment = deploy_stack(
        "prod", volumeNames='{"postgresData": "sentineliq_postgres-data", "redisData": "sentineliq_redis-data"}'
    )
    names = {v.name: v.inputs["name"] for v in deployment.of_type("docker:index/volume:Volume")}
    assert names["sentineliq-postgres-data"] == "sentineliq_postgres-data"
    assert names["sentineliq-redis-data"] == "sentineliq_redis-data"
    assert names["sentineliq-minio-data"] == "sentineliq-prod-minio-data"
    postgres = deployment.containers()["postgres"]
    assert postgres.plain("volumes")[0]["volumeName"] == "sentineliq_postgres-data"
