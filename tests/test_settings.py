"""Config validation: every rule, reported together, naming the key and the fix, never a secret's value."""

from __future__ import annotations

import json

import harness
import pulumi
import pytest
from harness import PROJECT, SSH_HOST_KEY, TEST_SECRETS, deploy, stack_config, with_secrets
from sentineliq_policy.values import SENSITIVE_TREES

from sentinel_infra.settings import Settings, collect_problems, is_secret


def valid() -> tuple[dict[str, str], set[str]]:
    """The prod stack file plus test secrets, without the namespace."""
    config, secrets = with_secrets(stack_config("prod"))
    strip = len(PROJECT) + 1
    return {k[strip:]: v for k, v in config.items()}, {k[strip:] for k in secrets}


def problems_of(**changes: str | None) -> dict[str, tuple[str, str]]:
    """{key: (rule, fix)} for a valid config with some keys changed (None removes a key)."""
    values, secrets = valid()
    for key, value in changes.items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    problems, settings = collect_problems(values, secrets)
    assert (settings is None) == bool(problems)
    return {p.key: (p.rule, p.fix) for p in problems}


def test_the_committed_stacks_are_valid() -> None:
    assert problems_of() == {}


def test_every_missing_required_key_is_reported_at_once() -> None:
    problems = problems_of(
        serverTag=None, clientTag=None, postgresPassword=None, redisPassword=None, minioRootPassword=None
    )
    assert set(problems) == {"serverTag", "clientTag", "postgresPassword", "redisPassword", "minioRootPassword"}
    assert problems["serverTag"] == ("is required but not set", "pulumi config set sentineliq:serverTag sha-a1b2c3d")
    assert problems["postgresPassword"][1].startswith("pulumi config set --secret sentineliq:postgresPassword ")


@pytest.mark.parametrize("key", ["postgresPassword", "redisPassword", "minioRootPassword"])
def test_passwords_need_12_characters_and_only_their_length_is_told(key: str) -> None:
    rule, fix = problems_of(**{key: "Sh0rt!pw"})[key]
    assert rule == "must have at least 12 characters (the value set has 8)"
    assert "Sh0rt!pw" not in rule + fix
    assert fix == f'pulumi config set --secret sentineliq:{key} "$(openssl rand -base64 24)"'


def test_a_secret_with_a_newline_is_refused_without_echo() -> None:
    rule, _ = problems_of(redisPassword="line-one-ok\nline-two")["redisPassword"]
    assert "control characters" in rule
    assert "line-one" not in rule


def test_a_secret_in_plain_text_is_an_error() -> None:
    values, secrets = valid()
    problems, settings = collect_problems(values, secrets - {"postgresPassword"})
    assert settings is None
    [problem] = problems
    assert problem.key == "postgresPassword"
    assert problem.rule == "is a secret but is stored in plain text"
    assert problem.fix.startswith("pulumi config set --secret sentineliq:postgresPassword")
    assert TEST_SECRETS["postgresPassword"] not in problem.render()


MINIO_USER_RULE = "must have 3 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"


@pytest.mark.parametrize(
    ("user", "rule"),
    [
        ("ab", MINIO_USER_RULE),
        ("a=b", MINIO_USER_RULE),
        ("a,bc", MINIO_USER_RULE),
        ("ops\nadmin", MINIO_USER_RULE),
        ("ops\x00admin", MINIO_USER_RULE),
        ("ops admin", MINIO_USER_RULE),
        ("ops@corp", MINIO_USER_RULE),
        ("-ops", MINIO_USER_RULE),
        ("minioadmin", "must not be minioadmin, MinIO's public default"),
    ],
)
def test_minio_root_user_rules(user: str, rule: str) -> None:
    assert problems_of(minioRootUser=user)["minioRootUser"] == (
        rule,
        "pulumi config set sentineliq:minioRootUser sentineliq",
    )


@pytest.mark.parametrize("port", ["0", "65536", "-1", "http", "80.5"])
def test_ports_are_integers_from_1_to_65535(port: str) -> None:
    problems = problems_of(hostPorts=f'{{"kibana": "{port}"}}')
    assert list(problems) == ["hostPorts.kibana"]
    assert problems["hostPorts.kibana"][1] == "pulumi config set --path 'sentineliq:hostPorts.kibana' 5601"


def test_two_services_cannot_share_a_host_port() -> None:
    problems = problems_of(hostPorts='{"minioConsole": 3000}')
    assert problems["hostPorts.minioConsole"][0] == "port 3000 is already used by hostPorts.client"


def test_an_unknown_key_suggests_the_closest_known_key() -> None:
    problems = problems_of(postgresPasword="whatever-whatever")
    rule, fix = problems["postgresPasword"]
    assert rule == "is not a known setting; did you mean sentineliq:postgresPassword?"
    assert fix == "pulumi config rm sentineliq:postgresPasword"
    assert "whatever" not in rule + fix
    assert "did you mean sentineliq:protectData?" in problems_of(protectdata="true")["protectdata"][0]


def test_unknown_services_and_fields_inside_resources() -> None:
    problems = problems_of(resources='{"postgress": {"cpus": 1}, "redis": {"memory": 512}}')
    assert problems["resources.postgress"][1] == "pulumi config rm --path 'sentineliq:resources.postgress'"
    assert problems["resources.redis.memory"] == (
        "is not a known field",
        "pulumi config rm --path 'sentineliq:resources.redis.memory'",
    )


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ('{"redis": {"cpus": 0}}', "must be between 0.05 and 64 CPU cores"),
        ('{"redis": {"memoryMb": 32}}', "must be between 64 and 1048576 MiB"),
    ],
)
def test_limit_ranges(value: str, rule: str) -> None:
    [(key, (found, fix))] = problems_of(resources=value).items()
    assert found == rule
    assert fix.startswith(f"pulumi config set --path 'sentineliq:{key}' ")


def test_a_structured_key_must_be_an_object() -> None:
    assert problems_of(resources="postgres=2")["resources"][0] == "must be an object (set it with --path)"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("serverTag", "latest"),
        ("clientTag", "has space"),
        ("imageRegistry", "GHCR.io/Upper"),
        ("dockerHost", "tcp://10.0.0.1:2375"),
        ("dockerHost", "ssh://host-without-user"),
        ("dockerHost", "ssh://u@h:70000"),
        ("publicBindAddress", "localhost"),
        ("protectData", "maybe"),
    ],
)
def test_plain_keys_have_rules(key: str, value: str) -> None:
    rule, fix = problems_of(**{key: value})[key]
    assert rule
    assert fix.startswith(f"pulumi config set sentineliq:{key} ")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("dockerHost", "unix:///var/run/docker.sock"),
        ("publicBindAddress", "::1"),
        ("protectData", "false"),
        ("serverTag", "1.2.0"),
        ("appUrl", "https://app.example.com/"),
        ("s3Bucket", "uploads.prod"),
    ],
)
def test_valid_alternatives(key: str, value: str) -> None:
    assert problems_of(**{key: value}) == {}


def test_secret_keys_are_exactly_the_secret_typed_fields() -> None:
    secret = {str(f.alias) for f in Settings.model_fields.values() if is_secret(f)}
    assert secret == {
        "postgresPassword",
        "redisPassword",
        "minioRootPassword",
        "minioAppPassword",
        "elasticPassword",
        "kibanaSystemPassword",
        "logstashPassword",
        "kibanaEncryptionKey",
        "kibanaPreviousEncryptionKeys",
        "jwtSecret",
        "sentryDsn",
        "registryToken",
        "sshPrivateKey",
        "kubeconfig",
    }


def test_a_bad_config_stops_the_program_before_any_resource() -> None:
    config, secret_keys = with_secrets(stack_config("prod"), {**TEST_SECRETS, "postgresPassword": "tiny-pw"})
    config["sentineliq:minioRootUser"] = "minioadmin"
    config["sentineliq:servertag"] = "main"
    with pytest.raises(pulumi.RunError) as raised:
        deploy(config, secret_keys, stack="prod")
    assert harness.LAST_REGISTRATIONS == []
    message = str(raised.value)
    assert "stack 'prod' has 3 problems" in message
    assert "sentineliq:postgresPassword: must have at least 12 characters (the value set has 7)" in message
    assert "sentineliq:minioRootUser" in message
    assert "did you mean sentineliq:serverTag?" in message
    assert "tiny-pw" not in message


# --- keys of the whole stack -----------------------------------------------------------------------------------

SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"


def secret_problems(plain: dict[str, str], **secret_values: str) -> dict[str, tuple[str, str]]:
    values, secrets = valid()
    values.update(plain)
    values.update(secret_values)
    problems, _ = collect_problems(values, secrets | set(secret_values))
    return {p.key: (p.rule, p.fix) for p in problems}


@pytest.mark.parametrize("key", ["elasticPassword", "kibanaSystemPassword", "logstashPassword"])
def test_elastic_passwords(key: str) -> None:
    assert problems_of(**{key: "elastic-pw"})[key][0] == "must have at least 12 characters (the value set has 10)"
    assert key in problems_of(**{key: None})


@pytest.mark.parametrize("key", ["kibanaEncryptionKey", "jwtSecret"])
def test_long_secrets_need_32_characters(key: str) -> None:
    rule, fix = problems_of(**{key: "x" * 31})[key]
    assert rule == "must have at least 32 characters (the value set has 31)"
    assert fix == f'pulumi config set --secret sentineliq:{key} "$(openssl rand -hex 32)"'


def test_sentry_dsn_is_optional_but_must_be_a_dsn() -> None:
    assert secret_problems({}, sentryDsn="https://k3y@o1.ingest.sentry.io/42") == {}
    rule, _ = secret_problems({}, sentryDsn="not-a-dsn-k3y")["sentryDsn"]
    assert rule == "must be a Sentry DSN, https://<key>@<host>/<project>"
    assert "k3y" not in rule


def test_sentry_dsn_must_be_secret() -> None:
    values, secrets = valid()
    values["sentryDsn"] = "https://k3y@o1.ingest.sentry.io/42"
    problems, _ = collect_problems(values, secrets)
    assert [(p.key, p.rule) for p in problems] == [("sentryDsn", "is a secret but is stored in plain text")]


def test_registry_credentials_come_in_pairs() -> None:
    assert secret_problems({"registryUsername": "ci-bot"}, registryToken="ghp_abc") == {}
    assert secret_problems({"registryUsername": "ci-bot"}) == {
        "registryToken": (
            "is required when sentineliq:registryUsername is set",
            "pulumi config set --secret sentineliq:registryToken <token>",
        )
    }
    assert list(secret_problems({}, registryToken="ghp_abc")) == ["registryUsername"]


def test_an_ssh_engine_needs_a_private_key() -> None:
    ssh = {"dockerHost": "ssh://deploy@10.0.0.5:2222", "sshHostKey": SSH_HOST_KEY}
    assert secret_problems(ssh, sshPrivateKey=SSH_KEY) == {}
    assert secret_problems(ssh)["sshPrivateKey"] == (
        "is required when dockerHost is ssh://...",
        "pulumi config set --secret sentineliq:sshPrivateKey < ~/.ssh/id_ed25519",
    )
    rule, _ = secret_problems(ssh, sshPrivateKey="ssh-ed25519 AAAAC3Nz public-key")["sshPrivateKey"]
    assert rule.startswith("must be a PEM or OpenSSH private key")
    assert "AAAAC3Nz" not in rule


def test_every_problem_at_once_across_rules() -> None:
    problems = secret_problems(
        {"dockerHost": "ssh://deploy@h", "registryUsername": "bot", "appUrl": "ftp://x", "s3Bucket": "UP"},
        jwtSecret="short-jwt",
    )
    assert set(problems) == {"sshPrivateKey", "sshHostKey", "registryToken", "appUrl", "s3Bucket", "jwtSecret"}


@pytest.mark.parametrize(
    ("value", "key", "rule"),
    [
        ('{"path": "relative/dir"}', "backup.path", "must be an absolute path on the Docker host"),
        ('{"path": "/etc/backups"}', "backup.path", "must be a dedicated folder, not a system directory"),
        ('{"path": "/"}', "backup.path", "must be a dedicated folder, not a system directory"),
        ('{"path": "/srv/../etc"}', "backup.path", "must be an absolute path on the Docker host"),
        ('{"time": "25:00"}', "backup.time", "String should match pattern"),
        ('{"retentionDays": 0}', "backup.retentionDays", "must be between 1 and 3650 days"),
        ('{"enable": true}', "backup.enable", "is not a known field"),
    ],
)
def test_backup_rules(value: str, key: str, rule: str) -> None:
    problems = problems_of(backup=value)
    assert list(problems) == [key]
    assert problems[key][0].startswith(rule)


def test_volume_names_are_docker_names() -> None:
    problems = problems_of(volumeNames='{"postgresData": "has space", "redis": "x"}')
    assert set(problems) == {"volumeNames.postgresData", "volumeNames.redis"}
    assert problems["volumeNames.postgresData"][1] == (
        "pulumi config set --path 'sentineliq:volumeNames.postgresData' sentineliq_postgres-data"
    )


# --- hostile values: paths, names, ports, addresses, URLs, booleans ------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/./etc",
        "//etc",
        "/etc/",
        "/var/lib",
        "/var/lib/docker/volumes",
        "/lib64",
        "/usr//local/x",
        "/srv",
        "/var",
        # as the policy pack refuses them: shared scratch space, root's home, the parent of the default folder
        "/tmp/backups",
        "/var/tmp/backups",
        "/root/backups",
        "/var/backups",
    ],
)
def test_a_backup_path_is_checked_as_docker_resolves_it(path: str) -> None:
    problems = problems_of(backup=json.dumps({"path": path}))
    assert problems["backup.path"][0] == "must be a dedicated folder, not a system directory or one inside it"


@pytest.mark.parametrize("path", ["/srv/back:ups", "/srv/back,ups", "/srv/back ups", "/srv/back\nups", "/srv/a\\b"])
def test_a_backup_path_carries_nothing_that_breaks_a_bind(path: str) -> None:
    assert "backup.path" in problems_of(backup=json.dumps({"path": path}))


def test_the_backup_path_is_used_in_its_resolved_form() -> None:
    values, secrets = valid()
    values["backup"] = json.dumps({"path": "/srv//backups/./prod/"})
    _, settings = collect_problems(values, secrets)
    assert settings is not None
    assert settings.backup.path == "/srv/backups/prod"


def test_another_stacks_volume_cannot_be_adopted() -> None:
    problems = problems_of(volumeNames=json.dumps({"postgresData": "sentineliq-prod-postgres-data"}))
    assert problems == {
        "volumeNames.postgresData": (
            "sentineliq-prod-postgres-data is a volume this program creates for a stack "
            "(<project>-<stack>-<volume>), not one to adopt",
            "pulumi config rm --path 'sentineliq:volumeNames.postgresData'",
        )
    }
    assert "volumeNames.redisData" in problems_of(volumeNames=json.dumps({"redisData": "sentineliq-dev-x-redis-data"}))
    assert problems_of(volumeNames=json.dumps({"postgresData": "sentineliq_postgres-data"})) == {}


def test_one_volume_cannot_hold_two_services() -> None:
    problems = problems_of(volumeNames=json.dumps({"postgresData": "shared", "redisData": "shared"}))
    assert problems == {
        "volumeNames.redisData": (
            "shared is already the volume of volumeNames.postgresData",
            "pulumi config rm --path 'sentineliq:volumeNames.redisData'",
        )
    }


@pytest.mark.parametrize(
    ("ports", "blamed", "other"),
    [
        ({"client": 3001}, "client", "server"),
        ({"server": 5601}, "server", "kibana"),
        ({"minioConsole": 3000}, "minioConsole", "client"),
        ({"kibana": 4000, "minioConsole": 4000}, "minioConsole", "kibana"),
    ],
)
def test_port_clashes_with_defaults_are_found(ports: dict[str, int], blamed: str, other: str) -> None:
    problems = problems_of(hostPorts=json.dumps(ports))
    assert list(problems) == [f"hostPorts.{blamed}"]
    rule, fix = problems[f"hostPorts.{blamed}"]
    assert rule == f"port {ports[blamed]} is already used by hostPorts.{other}"
    # The suggested port really is free: applying the fix leaves no problem.
    suggested = int(fix.rsplit(" ", 1)[1])
    assert fix == f"pulumi config set --path 'sentineliq:hostPorts.{blamed}' {suggested}"
    assert problems_of(hostPorts=json.dumps({**ports, blamed: suggested})) == {}


@pytest.mark.parametrize(
    "address", ["fe80::1%eth0", "fe80::1", "169.254.1.1", "224.0.0.1", "ff02::1", "255.255.255.255", "::ffff:127.0.0.1"]
)
def test_a_bind_address_docker_would_widen_or_cannot_use_is_refused(address: str) -> None:
    assert "publicBindAddress" in problems_of(publicBindAddress=address)


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "::1", "127.0.0.1", "10.0.0.5", "2001:db8::10"])
def test_bind_addresses_of_this_host(address: str) -> None:
    assert problems_of(publicBindAddress=address) == {}


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("https://admin:hunter2hunter2@app.example.com", "must not contain credentials (user:password@)"),
        ("https://token@app.example.com", "must not contain credentials (user:password@)"),
        ("https://app.example.com\n", "must not contain spaces or control characters"),
        ("https://app.exa\x00mple.com", "must not contain spaces or control characters"),
        ("https://app.example.com/?next=x", "must be a base URL, without ?query or #fragment"),
        ("https://app.example.com:99999", "must have a port between 0 and 65535"),
        ("http:///path-only", "must be an absolute http(s) URL"),
    ],
)
def test_public_urls_are_plain_base_urls(url: str, rule: str) -> None:
    for key in ("appUrl", "apiUrl"):
        found, _ = problems_of(**{key: url})[key]
        assert found == rule
        assert "hunter2" not in found


@pytest.mark.parametrize("key", ["postgresPassword", "jwtSecret"])
@pytest.mark.parametrize(
    "value", [" " * 40, " padded-secret-value-0123456789abcdef", "padded-secret-value-0123456789abcdef\t"]
)
def test_a_secret_of_spaces_or_with_edge_spaces_is_refused(key: str, value: str) -> None:
    rule, _ = problems_of(**{key: value})[key]
    assert rule in ("must not start or end with a space", "must not contain control characters (newlines, tabs, ...)")


@pytest.mark.parametrize(
    ("key", "value", "path"),
    [
        ("backup", '{"retentionDays": true}', "backup.retentionDays"),
        ("backup", '{"enabled": 1}', "backup.enabled"),
        ("backup", '{"enabled": "yes"}', "backup.enabled"),
        ("resources", '{"redis": {"cpus": true}}', "resources.redis.cpus"),
        ("resources", '{"redis": {"memoryMb": false}}', "resources.redis.memoryMb"),
        ("hostPorts", '{"kibana": true}', "hostPorts.kibana"),
        ("protectData", "1", "protectData"),
        ("protectData", "on", "protectData"),
    ],
)
def test_booleans_and_numbers_do_not_turn_into_each_other(key: str, value: str, path: str) -> None:
    assert list(problems_of(**{key: value})) == [path]


def test_numbers_set_with_path_arrive_as_text_or_numbers() -> None:
    values, secrets = valid()
    values["backup"] = '{"retentionDays": "08", "enabled": "false"}'
    values["resources"] = '{"redis": {"cpus": "1.5", "memoryMb": 512}}'
    problems, settings = collect_problems(values, secrets)
    assert problems == []
    assert settings is not None
    assert (settings.backup.retention_days, settings.backup.enabled) == (8, False)
    assert settings.resources["redis"].cpus == 1.5


@pytest.mark.parametrize(
    "registry",
    ["ghcr.io/../x", "-ghcr.io/x", "ghcr.io//x", "ghcr.io/x/", "ghcr.io/x..y", "ghcr-.io/x", "ghcr.io:port/x"],
)
def test_registries_docker_would_reject(registry: str) -> None:
    assert "imageRegistry" in problems_of(imageRegistry=registry)


@pytest.mark.parametrize("registry", ["ghcr.io/killsearch", "registry.example.com:5000/team/app", "localhost:5000/a_b"])
def test_registries_docker_accepts(registry: str) -> None:
    assert problems_of(imageRegistry=registry) == {}


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("dockerHost", "ssh://-oProxyCommand@host"),
        ("dockerHost", "ssh://deploy@-host"),
        ("dockerHost", "unix:///var/run/docker.sock\x00"),
        ("dockerHost", "unix:///var/run/../docker.sock"),
        ("s3Bucket", "files..prod"),
        ("s3Bucket", "192.168.1.10"),
        ("registryUsername", "ci\nbot"),
    ],
)
def test_names_that_would_be_read_as_something_else(key: str, value: str) -> None:
    problems = (
        secret_problems({key: value}, registryToken="ghp_abc")
        if key == "registryUsername"
        else problems_of(**{key: value})
    )
    assert key in problems


def test_sentry_dsn_refuses_control_characters() -> None:
    rule, _ = secret_problems({}, sentryDsn="https://k3y@o1.ingest.sentry.io/42\n")["sentryDsn"]
    assert rule == "must not contain control characters (newlines, tabs, ...)"


@pytest.mark.parametrize("tree", SENSITIVE_TREES)
def test_a_backup_path_the_policy_pack_would_refuse_is_refused_here_too(tree: str) -> None:
    """The policy pack cannot import the program (it runs in its own virtualenv), so its list is its own: this keeps
    the config rule at least as strict, so that a path never passes `preview` only to fail the pack."""
    for path in (tree, f"{tree}/sentineliq-backups"):
        assert "backup.path" in problems_of(backup=json.dumps({"path": path})), path


# --- the Kubernetes target (issue 11) -----------------------------------------------------------------------

K8S_ONLY_ON_DOCKER = "is a kubernetes setting: it has no effect with platform docker"
DOCKER_ONLY_ON_K8S = "is a docker setting: it has no effect with platform kubernetes"


def k8s_problems(stack: str | None = None, **changes: str | None) -> dict[str, tuple[str, str]]:
    """Problems of the committed Kubernetes stack (Pulumi.k8s.yaml plus test secrets) with some keys changed."""
    config, secrets = with_secrets(stack_config("k8s"))
    values = {k.removeprefix(f"{PROJECT}:"): v for k, v in config.items()}
    for key, value in changes.items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    secret_keys = {k.removeprefix(f"{PROJECT}:") for k in secrets} | ({"kubeconfig"} & set(changes))
    problems, settings = collect_problems(values, secret_keys, stack)
    assert (settings is None) == bool(problems)
    return {p.key: (p.rule, p.fix) for p in problems}


def test_the_kubernetes_example_stack_is_valid() -> None:
    assert k8s_problems(stack="k8s") == {}


def test_docker_keys_are_reported_under_kubernetes() -> None:
    problems = problems_of(platform="kubernetes")
    # Pulumi.prod.yaml sets the edge's TLS mode, its ACME account, a bind address and the edge's limits.
    assert set(problems) == {"publicBindAddress", "edge.tls", "edge.acmeEmail", "resources.edge"}
    assert problems["publicBindAddress"] == (DOCKER_ONLY_ON_K8S, "pulumi config rm sentineliq:publicBindAddress")
    assert problems["edge.tls"][1] == "pulumi config rm --path 'sentineliq:edge.tls'"
    more = k8s_problems(dockerHost="unix:///var/run/docker.sock", backup=json.dumps({"path": "/srv/backups"}))
    assert set(more) == {"dockerHost", "backup.path"}
    shared = k8s_problems(backup=json.dumps({"time": "03:00"}), edge=json.dumps({"maxBodyMb": 10}), seedData="true")
    assert shared == {}, "the keys both targets read are accepted"


def test_kubernetes_keys_are_reported_under_docker() -> None:
    problems = problems_of(kubernetes=json.dumps({"namespace": "sentineliq-prod"}), kubeconfig=KUBECONFIG)
    assert problems["kubernetes"] == (K8S_ONLY_ON_DOCKER, "pulumi config rm sentineliq:kubernetes")
    assert problems["kubeconfig"][0] == K8S_ONLY_ON_DOCKER


def test_server_max_replicas_is_at_least_server_replicas() -> None:
    cluster = {"context": "prod-cluster", "serverMaxReplicas": 2}
    rule, fix = k8s_problems(kubernetes=json.dumps(cluster))["kubernetes.serverMaxReplicas"]
    assert rule == "must be at least serverReplicas (3)"
    assert fix == "pulumi config set --path 'sentineliq:kubernetes.serverMaxReplicas' 3"
    assert k8s_problems(kubernetes=json.dumps({**cluster, "serverMaxReplicas": 3})) == {}


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("namespace", "Sentineliq", "must be a DNS label"),
        ("namespace", "a" * 64, "must be a DNS label"),
        ("namespace", "-prod", "must be a DNS label"),
        ("storageClass", "Fast SSD", "must be a Kubernetes object name"),
        ("ingressClass", "", "must be a Kubernetes object name"),
        ("serverMaxReplicas", "33", "must be between 1 and 32"),
        ("serverMaxReplicas", "true", "must be a number, not true or false"),
        ("ingressNamespace", "ingress_nginx", "must be a DNS label"),
    ],
)
def test_kubernetes_fields_have_rules(field: str, value: str, rule: str) -> None:
    raw = int(value) if value.isdigit() else (True if value == "true" else value)
    problems = k8s_problems(kubernetes=json.dumps({"context": "prod-cluster", field: raw}))
    assert problems[f"kubernetes.{field}"][0].startswith(rule)


@pytest.mark.parametrize("size", ["20GB", "0Gi", "1.5Gi", "20", "Gi", "9999999Gi"])
def test_volume_sizes_are_binary_quantities(size: str) -> None:
    problems = k8s_problems(kubernetes=json.dumps({"volumeSizes": {"postgresData": size}}))
    rule, fix = problems["kubernetes.volumeSizes.postgresData"]
    assert rule == "must be a size in Mi, Gi or Ti, such as 512Mi or 20Gi"
    # The fix reaches the nested field's own example.
    assert fix == "pulumi config set --path 'sentineliq:kubernetes.volumeSizes.postgresData' 50Gi"


def test_the_default_namespace_must_be_a_dns_label() -> None:
    cluster = json.dumps({"context": "prod-cluster"})
    assert k8s_problems(stack="prod", kubernetes=cluster) == {}
    rule, fix = k8s_problems(stack="Prod_EU", kubernetes=cluster)["kubernetes.namespace"]
    assert "'sentineliq-Prod_EU' is not valid" in rule
    assert fix.startswith("pulumi config set --path 'sentineliq:kubernetes.namespace' ")
    assert k8s_problems(stack="Prod_EU") == {}, "a namespace set explicitly needs no valid stack name"


KUBECONFIG = (
    "apiVersion: v1\nclusters:\n- name: c\n  cluster: {server: https://k.example.com}\ncontexts:\n- name: ctx-a\n"
)


def test_a_kubeconfig_is_a_secret_checked_by_shape_never_echoed() -> None:
    assert k8s_problems(kubeconfig=KUBECONFIG, kubernetes=json.dumps({"context": "ctx-a"})) == {}
    rule, _ = k8s_problems(kubeconfig="token: s3cr3t-value")["kubeconfig"]
    assert rule.startswith("must be a kubeconfig with at least one cluster")
    assert "s3cr3t" not in rule
    rule, _ = k8s_problems(kubeconfig="clusters: [unclosed s3cr3t")["kubeconfig"]
    assert "s3cr3t" not in rule
    rule, _ = k8s_problems(kubeconfig=KUBECONFIG + "\x1b[2J")["kubeconfig"]
    assert rule == "must not contain control characters other than newlines and tabs"
    values, secrets = valid()
    values.update(platform="kubernetes", kubeconfig=KUBECONFIG)
    for key in ("publicBindAddress", "edge", "resources"):
        values.pop(key)
    problems, _ = collect_problems(values, secrets)
    assert [p.key for p in problems] == ["kubeconfig"]
    assert problems[0].rule == "is a secret but is stored in plain text"


def test_the_context_must_be_one_of_the_kubeconfigs() -> None:
    rule, fix = k8s_problems(kubeconfig=KUBECONFIG, kubernetes=json.dumps({"context": "ctx-secret-b"}))[
        "kubernetes.context"
    ]
    assert rule == "names no context of the kubeconfig (it has 1)"
    assert "ctx-a" not in rule + fix
    assert fix == "pulumi config rm --path 'sentineliq:kubernetes.context'"


def test_the_ingress_hosts_must_be_distinct_https_names_on_kubernetes() -> None:
    problems = k8s_problems(apiUrl="https://app.sentineliq.com")
    assert (
        problems["apiUrl"][0] == "must name another host than appUrl with platform kubernetes (the edge routes by host)"
    )
    assert "appUrl" in k8s_problems(appUrl="http://app.sentineliq.com")
