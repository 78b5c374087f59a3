"""Change impact: an unchanged `pulumi up` touches nothing, and a change touches exactly what it must.

The blast-radius table below is also in README.md ("What a change touches"); a test keeps the two equal.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable

import pytest
from harness import ROOT, Deployment, changed, deploy_new_build, deploy_stack, deploy_with, stack_config, unwrap

NEW_BUILD = f"sha256:{'e1' * 32}"
"""The registry digest of a new build pushed to a tag the stack already runs (`main`)."""


def new_build(image: str) -> Deployment:
    return deploy_new_build("prod", f"ghcr.io/killsearch/{image}:main", NEW_BUILD)


def memory(service: str, megabytes: int) -> Deployment:
    resources = json.loads(stack_config("prod")["sentineliq:resources"])
    resources[service] = {**resources[service], "memoryMb": megabytes}
    return deploy_stack("prod", resources=json.dumps(resources))


BLAST_RADIUS: dict[str, tuple[Callable[[], Deployment], set[str]]] = {
    "serverTag": (
        lambda: deploy_stack("prod", serverTag="sha-b2c3d4e"),
        {"images-server", "migrate-command", "server-container", "server-2-container"},
    ),
    "clientTag": (lambda: deploy_stack("prod", clientTag="sha-b2c3d4e"), {"images-client", "client-container"}),
    # The same tag, a new build: only the registry's answer differs.
    "serverTag@sha256": (
        lambda: new_build("saas-server"),
        {"images-server", "migrate-command", "server-container", "server-2-container"},
    ),
    "clientTag@sha256": (lambda: new_build("saas-client"), {"images-client", "client-container"}),
    "kibanaEncryptionKey": (
        lambda: deploy_with(kibanaEncryptionKey="another-kibana-key-0123456789abcdefghij"),
        {"kibana-container"},
    ),
    "edge.rateLimitAverage": (
        lambda: deploy_stack("prod", edge='{"tls": "acme", "acmeEmail": "ops@sentineliq.com", "rateLimitAverage": 80}'),
        {"edge-container", "client-container"},
    ),
    "resources.postgres.memoryMb": (lambda: memory("postgres", 2048), {"postgres-container"}),
    "resources.redis.memoryMb": (lambda: memory("redis", 2048), {"redis-container"}),
    "resources.minio.memoryMb": (lambda: memory("minio", 1024), {"minio-container"}),
}
"""change -> (the prod stack with that change, the resources whose inputs change)."""

IN_PLACE = {
    "restart",
    "maxRetryCount",
    "memory",
    "memorySwap",
    "memoryReservation",
    "cpuShares",
    "cpuSet",
    "mustRun",
    "wait",
    "waitTimeout",
    "destroyGraceSeconds",
    "healthcheck",
}
"""Container inputs the provider updates without replacing the container (see provider-notes)."""


def fingerprint(deployment: Deployment) -> str:
    """Every registration (inputs, options, dependencies) as canonical JSON."""
    return json.dumps(
        [
            {
                "type": r.type,
                "name": r.name,
                "urn": r.urn,
                "parent": r.parent,
                "inputs": unwrap(r.inputs),
                "secret": json.dumps(r.inputs, default=lambda o: {"secret": o.value}, sort_keys=True),
                "dependencies": sorted(r.dependencies),
                "protect": r.protect,
                "provider": r.provider,
                "replaceOnChanges": r.replace_on_changes,
                "additionalSecretOutputs": r.additional_secret_outputs,
            }
            for r in sorted(deployment.resources, key=lambda r: r.urn)
        ],
        sort_keys=True,
    )


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_two_evaluations_register_identical_inputs(stack: str) -> None:
    assert fingerprint(deploy_stack(stack)) == fingerprint(deploy_stack(stack))


def test_no_ordering_drift_across_processes() -> None:
    """Python's hash seed changes set and dict-of-set orders between runs: the registrations must not."""
    code = (
        "import sys; sys.path[:0] = ['tests', 'policy', '.']\n"
        "from harness import deploy_stack\nfrom test_change_impact import fingerprint\n"
        "print(fingerprint(deploy_stack('prod')))\n"
    )
    prints = {
        subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(prints) == 1


@pytest.mark.parametrize("key", sorted(BLAST_RADIUS))
def test_blast_radius(key: str) -> None:
    before = deploy_stack("prod")
    after = BLAST_RADIUS[key][0]()
    assert changed(before, after) == BLAST_RADIUS[key][1]


@pytest.mark.parametrize("service", ["postgres", "redis", "minio"])
def test_a_data_service_memory_change_is_an_update_in_place(service: str) -> None:
    before = deploy_stack("prod").named(f"{service}-container")
    after = BLAST_RADIUS[f"resources.{service}.memoryMb"][0]().named(f"{service}-container")
    fields = {k for k in before.inputs.keys() | after.inputs.keys() if before.inputs.get(k) != after.inputs.get(k)}
    assert fields == {"memory", "memorySwap"}
    assert fields <= IN_PLACE


def fields(before: Deployment, after: Deployment, name: str) -> set[str]:
    old, new = before.named(name).inputs, after.named(name).inputs
    return {k for k in old.keys() | new.keys() if old.get(k) != new.get(k)}


def test_a_new_build_of_the_same_tag_deploys_and_migrates() -> None:
    """The image is pulled under its new digest, the server runs its new image id, the migration re-runs with it."""
    before, after = deploy_stack("prod"), new_build("saas-server")
    assert after.named("images-server").inputs["name"] == f"ghcr.io/killsearch/saas-server@{NEW_BUILD}"
    assert fields(before, after, "images-server") == {"name"}
    assert fields(before, after, "server-container") == {"image"}, "a new image id replaces the container"
    assert fields(before, after, "migrate-command") == {"create", "triggers"}
    image_id = after.named("server-container").inputs["image"]
    assert image_id in after.named("migrate-command").inputs["create"]
    assert after.named("migrate-command").inputs["triggers"] == [image_id]
    assert after.outputs["images"]["server"] == "ghcr.io/killsearch/saas-server:main", "the tag stays visible"
    assert after.outputs["imageDigests"]["server"] == f"ghcr.io/killsearch/saas-server@{NEW_BUILD}"


def test_the_readme_shows_the_same_table() -> None:
    readme = (ROOT / "README.md").read_text()
    for key, (_, resources) in BLAST_RADIUS.items():
        row = f"| `{key}` | {', '.join(f'`{r}`' for r in sorted(resources))} |"
        assert row in readme, row
