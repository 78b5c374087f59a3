"""The Kubernetes target under mocks (issue 11): every object, option and dependency the program registers on a
cluster, from the same specs as the Docker target. Layer of proof: the mocks (what is sent to the provider), and
the manifests validated against the Kubernetes OpenAPI schemas (kubernetes-validate, 1.30, strict)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import (
    ROOT,
    TEST_SECRETS,
    Deployment,
    Registration,
    Secret,
    deploy_stack,
    deploy_with,
    plain_strings,
    secret_forms,
    stack_settings,
    unwrap,
)

from sentinel_infra.kubernetes.images import FACTS
from sentinel_infra.kubernetes.pods import readiness_probe, startup_probe
from sentinel_infra.ops.evaluate import auto_name
from sentinel_infra.ops.render import manifests
from sentinel_infra.specs.elasticsearch import elasticsearch

SERVICES = ("postgres", "redis", "minio", "elasticsearch", "logstash", "kibana", "server", "client")
DATA = ("postgres", "redis", "minio", "elasticsearch")
POD_KINDS = ("Deployment", "StatefulSet", "Job", "CronJob")


def k8s(**plain: str) -> Deployment:
    """The example Kubernetes stack (Pulumi.k8s.yaml) with test secrets and some plain keys set."""
    return deploy_stack("k8s", **plain)


@pytest.fixture(scope="module")
def cluster() -> Deployment:
    return k8s()


def objects(deployment: Deployment, kind: str) -> dict[str, Registration]:
    """The registered objects of a kind, by metadata.name (an auto-named one's, as the evaluation names it)."""
    return {
        r.plain("metadata").get("name") or auto_name(r.name): r
        for r in deployment.resources
        if r.type.startswith("kubernetes:") and r.plain("kind") == kind
    }


def pod_spec(resource: Registration) -> dict[str, Any]:
    spec = resource.plain("spec")
    if resource.plain("kind") == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return dict(spec["template"]["spec"])


def named(deployment: Deployment, prefix: str, kind: str) -> Registration:
    [found] = [r for name, r in objects(deployment, kind).items() if name.startswith(prefix)]
    return found


def waits_for(deployment: Deployment, resource: Registration) -> set[str]:
    return deployment.depends_on(resource)


# --- the target ----------------------------------------------------------------------------------------------


def test_a_kubernetes_stack_registers_no_docker_resource(cluster: Deployment) -> None:
    assert cluster.resources
    assert not [
        r.type for r in cluster.resources if r.type.startswith(("docker:", "command:", "pulumi:providers:docker"))
    ]
    assert not [t for t, _ in cluster.calls if t.startswith("docker:")]


def test_one_explicit_provider_for_every_object(cluster: Deployment) -> None:
    [provider] = cluster.of_type("pulumi:providers:kubernetes")
    assert provider.inputs["context"] == "prod-cluster"
    assert "kubeconfig" not in provider.inputs, "unset: the ambient kubeconfig"
    custom = [r for r in cluster.resources if r.custom and r.type.startswith("kubernetes:")]
    assert custom
    assert {r.provider.rsplit("::", 1)[0] for r in custom} == {provider.urn}


def test_a_kubeconfig_reaches_the_provider_as_a_secret() -> None:
    kubeconfig = (
        "apiVersion: v1\nclusters:\n- name: c\n  cluster: {server: https://k.example.com}\n"
        "contexts:\n- name: prod-cluster\n  context: {cluster: c}\n"
    )
    deployment = deploy_with("k8s", kubeconfig=kubeconfig)
    [provider] = deployment.of_type("pulumi:providers:kubernetes")
    assert provider.inputs["kubeconfig"] == Secret(kubeconfig)
    assert "kubeconfig" in provider.additional_secret_outputs


def test_the_namespace_enforces_the_restricted_standard(cluster: Deployment) -> None:
    [namespace] = objects(cluster, "Namespace").values()
    metadata = namespace.plain("metadata")
    assert metadata["name"] == "sentineliq-prod"
    assert metadata["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    assert namespace.protect, "protectData: deleting the namespace would delete the data's claims"
    others = [r for r in cluster.resources if r.type.startswith("kubernetes:") and r.plain("kind") != "Namespace"]
    assert {r.plain("metadata")["namespace"] for r in others} == {"sentineliq-prod"}


def test_the_default_namespace_is_named_after_the_stack() -> None:
    deployment = k8s(kubernetes=json.dumps({"context": "prod-cluster"}))
    [namespace] = objects(deployment, "Namespace")
    assert namespace == "sentineliq-k8s"


def test_every_object_carries_the_agreed_labels(cluster: Deployment) -> None:
    for resource in cluster.resources:
        if resource.type.startswith("kubernetes:"):
            labels = resource.plain("metadata")["labels"]
            assert labels["app.kubernetes.io/part-of"] == "sentineliq"
            assert labels["app.kubernetes.io/instance"] == "k8s"
            assert labels["app.kubernetes.io/managed-by"] == "pulumi"


def test_components_follow_the_rules(cluster: Deployment) -> None:
    components = [r for r in cluster.resources if not r.custom]
    assert components
    assert all(r.type.startswith("sentineliq:kubernetes:") for r in components), {r.type for r in components}
    by_urn = {r.urn: r for r in cluster.resources}
    for resource in cluster.resources:
        parent = by_urn.get(resource.parent)
        if parent is not None:
            assert resource.name.startswith(parent.name), (resource.name, parent.name)


# --- workloads -----------------------------------------------------------------------------------------------


def test_services_are_named_as_the_seeds_and_select_their_pods(cluster: Deployment) -> None:
    services = objects(cluster, "Service")
    assert set(services) == set(SERVICES)
    workloads = {**objects(cluster, "Deployment"), **objects(cluster, "StatefulSet")}
    for name, service in services.items():
        spec = service.plain("spec")
        assert spec["type"] == "ClusterIP"
        template = workloads[name].plain("spec")["template"]
        pod_labels = template["metadata"]["labels"]
        assert spec["selector"].items() <= pod_labels.items()
        ports = {p["name"]: p["containerPort"] for p in template["spec"]["containers"][0]["ports"]}
        for port in spec["ports"]:
            assert ports[port["targetPort"]] == port["port"]
    assert [p["port"] for p in services["postgres"].plain("spec")["ports"]] == [5432]
    # The console too (a ClusterIP is reached from inside only; no NetworkPolicy admits anyone to 9001).
    assert [p["port"] for p in services["minio"].plain("spec")["ports"]] == [9000, 9001]


def test_data_services_are_stateful_sets_with_claims(cluster: Deployment) -> None:
    sets = objects(cluster, "StatefulSet")
    assert set(sets) == set(DATA)
    assert set(objects(cluster, "Deployment")) == {"logstash", "kibana", "server", "client"}
    sizes = {"postgres": "100Gi", "redis": "10Gi", "minio": "500Gi", "elasticsearch": "200Gi"}
    for name, resource in sets.items():
        spec = resource.plain("spec")
        [claim] = spec["volumeClaimTemplates"]
        assert claim["metadata"]["name"] == f"{name}-data"
        assert claim["spec"]["resources"]["requests"]["storage"] == sizes[name]
        assert "storageClassName" not in claim["spec"], "unset: the cluster's default StorageClass"
        mounts = spec["template"]["spec"]["containers"][0]["volumeMounts"]
        assert f"{name}-data" in {m["name"] for m in mounts}
        assert spec["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Retain"
        assert resource.protect


def test_the_storage_class_and_unprotected_data() -> None:
    deployment = k8s(
        protectData="false",
        kubernetes=json.dumps({"context": "prod-cluster", "storageClass": "fast-ssd"}),
    )
    postgres = objects(deployment, "StatefulSet")["postgres"]
    [claim] = postgres.plain("spec")["volumeClaimTemplates"]
    assert claim["spec"]["storageClassName"] == "fast-ssd"
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi", "the default size"
    assert postgres.plain("spec")["persistentVolumeClaimRetentionPolicy"]["whenDeleted"] == "Delete"
    assert not postgres.protect


def test_the_server_scales_and_rolls_without_losing_capacity(cluster: Deployment) -> None:
    server = objects(cluster, "Deployment")["server"]
    spec = server.plain("spec")
    assert spec["replicas"] == 3
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    assert server.options.get("ignoreChanges") == ["spec.replicas"], "the autoscaler owns the count"
    [pdb] = objects(cluster, "PodDisruptionBudget").values()
    assert pdb.plain("spec")["maxUnavailable"] == 1
    assert pdb.plain("spec")["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    [hpa] = objects(cluster, "HorizontalPodAutoscaler").values()
    hpa_spec = hpa.plain("spec")
    assert hpa_spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "server"}
    assert (hpa_spec["minReplicas"], hpa_spec["maxReplicas"]) == (3, 10)
    assert hpa_spec["metrics"][0]["resource"]["name"] == "cpu"
    for other in ("client", "kibana", "logstash"):
        assert objects(cluster, "Deployment")[other].plain("spec")["replicas"] == 1


def test_server_max_replicas_defaults_to_twice_the_replicas() -> None:
    deployment = k8s(kubernetes=json.dumps({"context": "prod-cluster"}))
    [hpa] = objects(deployment, "HorizontalPodAutoscaler").values()
    assert hpa.plain("spec")["maxReplicas"] == 6


def test_requests_and_limits_come_from_the_limits(cluster: Deployment) -> None:
    postgres = objects(cluster, "StatefulSet")["postgres"]
    resources = postgres.plain("spec")["template"]["spec"]["containers"][0]["resources"]
    assert resources == {
        "requests": {"cpu": "4000m", "memory": "8192Mi"},
        "limits": {"cpu": "4000m", "memory": "8192Mi"},
    }
    client = objects(cluster, "Deployment")["client"]
    assert client.plain("spec")["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] == "500m"


# --- probes --------------------------------------------------------------------------------------------------


def test_health_checks_become_readiness_and_startup_probes(cluster: Deployment) -> None:
    elastic = objects(cluster, "StatefulSet")["elasticsearch"]
    container = elastic.plain("spec")["template"]["spec"]["containers"][0]
    check = elasticsearch(deploy_stack_settings()).healthcheck
    assert container["readinessProbe"]["exec"]["command"] == ["/bin/sh", "-c", check.test[1]]
    assert container["readinessProbe"]["periodSeconds"] == check.interval
    assert container["readinessProbe"]["failureThreshold"] == check.retries
    # Docker's start period (120 s probed every 2 s), then its retries.
    assert container["startupProbe"]["periodSeconds"] == 2
    assert container["startupProbe"]["failureThreshold"] == 60 + check.retries
    assert "livenessProbe" not in container, "a database is never restarted by a probe"


def deploy_stack_settings() -> Any:
    return stack_settings("k8s")


def test_a_startup_probe_covers_at_least_the_start_period() -> None:
    check = elasticsearch(deploy_stack_settings()).healthcheck
    probe = startup_probe(check)
    assert probe["period_seconds"] * probe["failure_threshold"] >= check.start_period
    assert readiness_probe(check)["timeout_seconds"] == check.timeout


def test_liveness_only_where_no_dependency_can_fail_it(cluster: Deployment) -> None:
    containers = {
        name: r.plain("spec")["template"]["spec"]["containers"][0]
        for name, r in {**objects(cluster, "Deployment"), **objects(cluster, "StatefulSet")}.items()
    }
    live = {name for name, c in containers.items() if "livenessProbe" in c}
    assert live == {"logstash", "kibana", "server", "client"}
    assert containers["server"]["livenessProbe"]["tcpSocket"] == {"port": 3001}
    # Kibana's liveness accepts a 503 (Elasticsearch away): curl without -f.
    assert "-f" not in " ".join(containers["kibana"]["livenessProbe"]["exec"]["command"]).split()
    for container in containers.values():
        if "livenessProbe" in container:
            assert container["livenessProbe"]["failureThreshold"] > container["readinessProbe"]["failureThreshold"]


# --- secrets -------------------------------------------------------------------------------------------------


def test_no_secret_in_any_object_but_secrets(cluster: Deployment) -> None:
    forms = {form: mark for key, value in TEST_SECRETS.items() for form, mark in secret_forms(key, value).items()}
    for resource in cluster.resources:
        if resource.plain("kind") == "Secret" or resource.type == "pulumi:providers:kubernetes":
            continue
        text = json.dumps(unwrap(resource.inputs))
        leaked = [mark for form, mark in forms.items() if form in text]
        assert not leaked, f"{resource.name} holds {leaked}"


def test_secret_data_are_pulumi_secrets(cluster: Deployment) -> None:
    secrets = objects(cluster, "Secret")
    assert secrets
    for name, secret in secrets.items():
        assert isinstance(secret.inputs["stringData"], Secret), name
        assert not list(plain_strings(secret.inputs["stringData"]))
        assert secret.plain("immutable") is True, "replaced, never changed in place"


def test_secret_variables_are_references(cluster: Deployment) -> None:
    server = objects(cluster, "Deployment")["server"]
    env = {e["name"]: e for e in server.plain("spec")["template"]["spec"]["containers"][0]["env"]}
    for name in ("DATABASE_URL", "REDIS_URL", "JWT_SECRET", "S3_SECRET_ACCESS_KEY"):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert "value" not in env[name]
        assert ref["key"] == name
        secret = objects(cluster, "Secret")[ref["name"]]
        assert name in unwrap(secret.inputs["stringData"])
    assert env["S3_BUCKET"]["value"] == "sentineliq"


def test_secrets_are_auto_named_and_their_users_refer_to_their_names(cluster: Deployment) -> None:
    """A new value is a new Secret under a new name (pulumi-kubernetes replaces a Secret whose data change), so the
    pods that use it roll; its name, a random suffix, tells nothing of its content."""
    secrets = {r.urn: r for r in cluster.resources if r.plain("kind") == "Secret"}
    assert secrets
    for secret in secrets.values():
        assert "name" not in secret.plain("metadata"), f"{secret.name}: a name chosen by the program"
    server = objects(cluster, "Deployment")["server"]
    env_secret = next(r for r in secrets.values() if r.name == "server-env")
    assert env_secret.urn in server.property_dependencies["spec"], "the pod template follows the Secret's name"
    migrate = named(cluster, "migrate-", "Job")
    [volume] = [v for v in pod_spec(migrate)["volumes"] if "secret" in v]
    assert volume["secret"]["secretName"] == auto_name("migrate-input")
    assert next(r for r in secrets.values() if r.name == "migrate-input").urn in migrate.property_dependencies["spec"]


def test_files_are_mounted_read_only(cluster: Deployment) -> None:
    kibana = objects(cluster, "Deployment")["kibana"].plain("spec")["template"]["spec"]
    [mount] = [m for m in kibana["containers"][0]["volumeMounts"] if m["mountPath"].endswith("kibana.yml")]
    assert mount["readOnly"] is True and mount["subPath"] == "kibana.yml"
    [volume] = [v for v in kibana["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["items"] == [{"key": "kibana.yml", "path": "kibana.yml", "mode": 0o640}]
    logstash = objects(cluster, "Deployment")["logstash"].plain("spec")["template"]["spec"]
    [volume] = [v for v in logstash["volumes"] if "configMap" in v]
    assert objects(cluster, "ConfigMap")[volume["configMap"]["name"]].plain("data").keys() == {"logstash.conf"}


# --- pod security --------------------------------------------------------------------------------------------


def pods(deployment: Deployment) -> dict[str, dict[str, Any]]:
    return {f"{kind}/{name}": pod_spec(r) for kind in POD_KINDS for name, r in objects(deployment, kind).items()}


def test_every_pod_meets_the_restricted_standard(cluster: Deployment) -> None:
    found = pods(cluster)
    assert len(found) >= 8 + 3 + 3
    for name, pod in found.items():
        assert pod["automountServiceAccountToken"] is False, name
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert context["runAsNonRoot"] is True and context["runAsUser"] > 0, name
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, name
            assert container["resources"]["limits"] and container["resources"]["requests"], name


def test_each_image_runs_as_its_own_user(cluster: Deployment) -> None:
    found = pods(cluster)
    assert found["StatefulSet/postgres"]["securityContext"]["runAsUser"] == 70
    assert found["StatefulSet/redis"]["securityContext"]["runAsUser"] == 999
    assert found["StatefulSet/redis"]["securityContext"]["fsGroup"] == 1000
    assert found["Deployment/client"]["securityContext"]["runAsUser"] == 101
    assert found["CronJob/backup-postgres"]["securityContext"]["runAsUser"] == 70


def test_read_only_roots_with_their_write_paths(cluster: Deployment) -> None:
    found = pods(cluster)
    postgres = found["StatefulSet/postgres"]
    assert postgres["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    paths = {m["mountPath"] for m in postgres["containers"][0]["volumeMounts"]}
    assert {"/var/run/postgresql", "/tmp"} <= paths
    memory = {v["name"] for v in postgres["volumes"] if v.get("emptyDir", {}).get("medium") == "Memory"}
    assert len(memory) == 2
    for name, facts in FACTS.items():
        kind = "StatefulSet" if name in DATA else "Deployment"
        container = found[f"{kind}/{name}"]["containers"][0]
        assert container["securityContext"]["readOnlyRootFilesystem"] is facts.read_only_root, name


# --- one-shot steps and order --------------------------------------------------------------------------------


def test_the_server_waits_for_its_migration_job(cluster: Deployment) -> None:
    server = objects(cluster, "Deployment")["server"]
    job = named(cluster, "migrate-1-4-2-", "Job")
    assert job.name in waits_for(cluster, server)
    assert "minio-setup-job" in waits_for(cluster, server)
    assert {"postgres-statefulset", "redis-statefulset", "logstash-deployment"} <= waits_for(cluster, server)
    assert "postgres-statefulset" in waits_for(cluster, job)
    container = pod_spec(job)["containers"][0]
    assert container["image"] == "ghcr.io/killsearch/saas-server:1.4.2"
    assert container["command"] == [
        "/bin/sh",
        "-c",
        "exec /bin/sh /var/run/sentineliq/script < /var/run/sentineliq/stdin",
    ]


def test_each_server_image_migrates_once() -> None:
    first = named(k8s(), "migrate-", "Job").plain("metadata")["name"]
    again = named(k8s(), "migrate-", "Job").plain("metadata")["name"]
    bumped = named(k8s(serverTag="sha-a1b2c3d"), "migrate-", "Job").plain("metadata")["name"]
    assert first == again
    assert bumped != first and bumped.startswith("migrate-sha-a1b2c3d-")
    assert len(bumped) <= 63


def test_a_new_input_migrates_again_but_never_seeds_again() -> None:
    """The migration reads an auto-named Secret: a new connection string is a new Secret, a new pod template, and
    the Job is replaced and runs (harmless: `migrate deploy` applies only what is pending). The seed's Secret keeps
    the Job's name: a new input replaces it under that name, the Job is unchanged and does not run again."""
    deployment = k8s(seedData="true")
    inputs = {r.name: r for r in deployment.resources if r.plain("kind") == "Secret"}
    assert "name" not in inputs["migrate-input"].plain("metadata")
    seed = named(deployment, "seed-data-1-", "Job")
    assert inputs["seed-data-input"].plain("metadata")["name"] == seed.plain("metadata")["name"]
    assert inputs["seed-data-input"].delete_before_replace, "replaced under the same name"
    assert inputs["seed-data-input"].plain("immutable") is False
    assert named(deployment, "migrate-", "Job").delete_before_replace


def test_logstash_and_kibana_wait_for_the_elastic_setup(cluster: Deployment) -> None:
    setup = named(cluster, "elastic-setup-", "Job")
    assert "elasticsearch-statefulset" in waits_for(cluster, setup)
    for name in ("logstash", "kibana"):
        assert setup.name in waits_for(cluster, objects(cluster, "Deployment")[name]), name


def test_a_step_reads_its_secrets_from_a_mounted_secret(cluster: Deployment) -> None:
    job = named(cluster, "elastic-setup-", "Job")
    pod = pod_spec(job)
    [volume] = [v for v in pod["volumes"] if "secret" in v]
    secret = objects(cluster, "Secret")[volume["secret"]["secretName"]]
    data = unwrap(secret.inputs["stringData"])
    assert TEST_SECRETS["kibanaSystemPassword"] in data["stdin"]
    assert "_security/user/kibana_system/_password" in data["script"]
    assert "env" not in pod["containers"][0] or all("valueFrom" not in e for e in pod["containers"][0]["env"])


def test_seed_data_runs_after_the_migration_and_before_the_server() -> None:
    deployment = k8s(seedData="true")
    seed = named(deployment, "seed-data-", "Job")
    assert named(deployment, "migrate-", "Job").name in waits_for(deployment, seed)
    assert seed.name in waits_for(deployment, objects(deployment, "Deployment")["server"])
    assert not [
        r
        for r in k8s().resources
        if r.plain("metadata") and str(r.plain("metadata").get("name", "")).startswith("seed")
    ]


def test_backups_are_cron_jobs_on_their_own_claims() -> None:
    deployment = k8s(backup=json.dumps({"time": "03:15", "retentionDays": 14}))
    crons = objects(deployment, "CronJob")
    assert set(crons) == {"backup-postgres", "backup-redis", "backup-minio"}
    claims = objects(deployment, "PersistentVolumeClaim")
    for service in ("postgres", "redis", "minio"):
        cron = crons[f"backup-{service}"].plain("spec")
        assert cron["schedule"] == "15 3 * * *" and cron["timeZone"] == "Etc/UTC"
        assert cron["concurrencyPolicy"] == "Forbid"
        pod = pod_spec(crons[f"backup-{service}"])
        container = pod["containers"][0]
        assert container["command"] == ["/bin/sh", "/opt/sentineliq/backup"]
        assert container["args"] == [service, "/backups"]
        env = {e["name"]: e for e in container["env"]}
        assert env["BACKUP_RETENTION_DAYS"]["value"] == "14"
        [claim] = [v for v in pod["volumes"] if "persistentVolumeClaim" in v]
        assert claim["persistentVolumeClaim"]["claimName"] in claims
        [scripts] = [v for v in pod["volumes"] if "configMap" in v]
        data = objects(deployment, "ConfigMap")[scripts["configMap"]["name"]].plain("data")
        assert data["backup"] == (ROOT / "backup" / "backup").read_text(), "the same script as on Docker"
    assert not objects(k8s(backup=json.dumps({"enabled": False})), "CronJob")


# --- network policies ----------------------------------------------------------------------------------------


def edges(deployment: Deployment) -> set[tuple[str, str, int]]:
    """(source, target, port) for every allowed connection: an egress rule of the source that an ingress rule of
    the target admits."""
    policies = objects(deployment, "NetworkPolicy")
    out: set[tuple[str, str, int]] = set()
    ingress: set[tuple[str, str, int]] = set()
    for policy in policies.values():
        spec = policy.plain("spec")
        me = spec["podSelector"].get("matchLabels", {}).get("app.kubernetes.io/name")
        for rule in spec.get("egress", []):
            for peer in rule["to"]:
                target = peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
                if target and "namespaceSelector" not in peer:
                    out.update((me, target, p["port"]) for p in rule["ports"])
        for rule in spec.get("ingress", []):
            for peer in rule["from"]:
                source = peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
                if source:
                    ingress.update((source, me, p["port"]) for p in rule["ports"])
    assert out == ingress, "both ends of every edge agree"
    return out


def test_network_policies_open_exactly_the_seeds_edges(cluster: Deployment) -> None:
    assert edges(cluster) == {
        ("server", "postgres", 5432),
        ("server", "redis", 6379),
        ("server", "minio", 9000),
        ("server", "logstash", 5000),
        ("logstash", "elasticsearch", 9200),
        ("kibana", "elasticsearch", 9200),
        ("client", "server", 3001),
        ("migrate", "postgres", 5432),
        ("elastic-setup", "elasticsearch", 9200),
        ("minio-setup", "minio", 9000),
        ("backup-postgres", "postgres", 5432),
        ("backup-redis", "redis", 6379),
        ("backup-minio", "minio", 9000),
    }


def test_a_default_deny_and_dns(cluster: Deployment) -> None:
    policies = objects(cluster, "NetworkPolicy")
    deny = policies["default-deny"].plain("spec")
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    dns = policies["allow-dns"].plain("spec")
    assert dns["podSelector"] == {} and dns["policyTypes"] == ["Egress"]
    assert {p["port"] for p in dns["egress"][0]["ports"]} == {53}


def test_only_the_ingress_controller_reaches_client_and_server(cluster: Deployment) -> None:
    policies = objects(cluster, "NetworkPolicy")
    from_namespaces = {
        name: [
            peer for rule in p.plain("spec").get("ingress", []) for peer in rule["from"] if "namespaceSelector" in peer
        ]
        for name, p in policies.items()
    }
    reached = {name for name, peers in from_namespaces.items() if peers}
    assert reached == {"client", "server"}
    for name in reached:
        [peer] = from_namespaces[name]
        assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "ingress-nginx"}
    server = policies["server"].plain("spec")
    assert not [rule for rule in server.get("egress", []) if any("ipBlock" in peer for peer in rule["to"])]
    with_sentry = objects(deploy_with("k8s", sentryDsn="https://abc@o0.ingest.sentry.io/1"), "NetworkPolicy")
    blocks = [
        peer for rule in with_sentry["server"].plain("spec")["egress"] for peer in rule["to"] if "ipBlock" in peer
    ]
    assert blocks, "with a Sentry DSN the server may reach HTTPS outside the cluster"


# --- ingress -------------------------------------------------------------------------------------------------


def test_the_ingress_serves_both_hosts_with_tls_and_the_edges_limits(cluster: Deployment) -> None:
    ingresses = objects(cluster, "Ingress")
    assert set(ingresses) == {"client", "server"}
    hosts = {"client": "app.sentineliq.com", "server": "api.sentineliq.com"}
    for name, ingress in ingresses.items():
        spec = ingress.plain("spec")
        annotations = ingress.plain("metadata")["annotations"]
        assert spec["ingressClassName"] == "nginx"
        assert spec["tls"] == [{"hosts": [hosts[name]], "secretName": f"{name}-tls"}]
        assert spec["rules"][0]["host"] == hosts[name]
        assert spec["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == name
        assert annotations["cert-manager.io/cluster-issuer"] == "letsencrypt-prod"
        assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "25m"
        assert annotations["nginx.ingress.kubernetes.io/custom-headers"] == "sentineliq-prod/security-headers"
    server = ingresses["server"].plain("metadata")["annotations"]
    assert server["nginx.ingress.kubernetes.io/limit-rps"] == "50"
    assert server["nginx.ingress.kubernetes.io/limit-burst-multiplier"] == "4"
    assert "nginx.ingress.kubernetes.io/limit-rps" not in ingresses["client"].plain("metadata")["annotations"]
    headers = objects(cluster, "ConfigMap")["security-headers"].plain("data")
    assert headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"


def test_traefik_gets_the_edges_middlewares() -> None:
    deployment = k8s(kubernetes=json.dumps({"context": "prod-cluster", "ingressClass": "traefik"}))
    middlewares = {r.plain("metadata")["name"]: r for r in deployment.resources if r.plain("kind") == "Middleware"}
    assert set(middlewares) == {"security-headers", "api-rate-limit", "body-limit"}
    assert middlewares["api-rate-limit"].plain("spec")["rateLimit"]["average"] == 50
    assert middlewares["security-headers"].plain("spec")["headers"]["frameDeny"] is True
    server = objects(deployment, "Ingress")["server"].plain("metadata")["annotations"]
    chain = server["traefik.ingress.kubernetes.io/router.middlewares"].split(",")
    assert chain == [f"sentineliq-k8s-{m}@kubernetescrd" for m in ("security-headers", "api-rate-limit", "body-limit")]
    client = objects(deployment, "Ingress")["client"].plain("metadata")["annotations"]
    assert "api-rate-limit" not in client["traefik.ingress.kubernetes.io/router.middlewares"]
    assert not objects(deployment, "ConfigMap").get("security-headers")


def test_a_private_registry_gets_a_pull_secret() -> None:
    deployment = deploy_with("k8s", plain={"registryUsername": "ci-bot"}, registryToken="ghp-token-0123456789")
    registry = objects(deployment, "Secret")[auto_name("cluster-registry")]
    assert registry.plain("type") == "kubernetes.io/dockerconfigjson"
    config = json.loads(unwrap(registry.inputs["stringData"])[".dockerconfigjson"])
    assert config["auths"]["ghcr.io"]["password"] == "ghp-token-0123456789"
    found = pods(deployment)
    for name in ("Deployment/server", "Deployment/client"):
        assert found[name]["imagePullSecrets"] == [{"name": auto_name("cluster-registry")}]
    assert named(deployment, "migrate-", "Job") and pod_spec(named(deployment, "migrate-", "Job"))["imagePullSecrets"]
    assert "imagePullSecrets" not in found["StatefulSet/postgres"]


def test_the_client_reaches_the_api_through_the_server_service(cluster: Deployment) -> None:
    env = {
        e["name"]: e.get("value") for e in pod_spec(objects(cluster, "Deployment")["client"])["containers"][0]["env"]
    }
    assert env["REACT_APP_API_BASE_URL"] == "http://server:3001"
    assert "SENTINELIQ_EDGE_CONFIG" not in env


# --- render --------------------------------------------------------------------------------------------------


def test_render_writes_one_manifest_per_object_without_secrets(tmp_path: Path) -> None:
    out = tmp_path / "manifests"
    result = subprocess.run(
        [sys.executable, "-m", "sentinel_infra", "render", "--stack", "k8s", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    files = sorted(out.glob("*.yaml"))
    documents = {path.name: yaml.safe_load(path.read_text()) for path in files}
    assert "namespace-sentineliq-prod.yaml" in documents
    assert "service-postgres.yaml" in documents and "statefulset-postgres.yaml" in documents
    for name, document in documents.items():
        assert name == f"{document['kind'].lower()}-{document['metadata']['name']}.yaml"
        assert list(document)[:3] == ["apiVersion", "kind", "metadata"]
        if document["kind"] != "Namespace":
            assert document["metadata"]["namespace"] == "sentineliq-prod"
        if document["kind"] == "Secret":
            assert set(document["stringData"].values()) == {"<redacted>"}
    text = "\n".join(path.read_text() for path in files)
    assert "placeholder-secret" not in text, "no placeholder secret value either"
    # Integers stay integers (the engine carries numbers as doubles).
    assert documents["statefulset-postgres.yaml"]["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 70


def test_rendered_manifests_validate_against_the_kubernetes_schemas(cluster: Deployment) -> None:
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for document in manifests(cluster).values():
        kubernetes_validate.validate(json.loads(json.dumps(document)), "1.30", strict=True)
    assert manifests(cluster)


def test_render_refuses_a_docker_stack(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "sentinel_infra", "render", "--stack", "prod", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert "runs on Docker" in result.stderr
    assert not list(tmp_path.iterdir())


def test_the_docker_stacks_register_no_kubernetes_object() -> None:
    deployment = deploy_stack("prod")
    assert not [r for r in deployment.resources if "kubernetes" in r.type]
