"""`graph` for a Kubernetes stack: its objects drawn in the same start order as the Docker stack's containers."""

from __future__ import annotations

import re

import pytest
from harness import deploy_stack

from sentinel_infra.ops.cli import main
from sentinel_infra.ops.graph import Architecture, architecture


def _service(node: str) -> str:
    return "server" if re.fullmatch(r"server-[0-9]+", node) else node


def _order(arch: Architecture, drop: str) -> set[tuple[str, str]]:
    """The start order with `drop` taken out (its upstreams go straight to its downstreams) and each replica
    (`server-2`) drawn as its service."""
    edges = set(arch.starts_after)
    for upstream in [a for a, b in edges if b == drop]:
        edges |= {(upstream, b) for a, b in edges if a == drop}
    return {(_service(a), _service(b)) for a, b in edges if drop not in (a, b)}


def test_the_kubernetes_objects_start_in_the_docker_containers_order() -> None:
    """On a cluster the ingress controller is the edge: the Docker order with the edge taken out, among what both
    targets run."""
    docker = _order(architecture(deploy_stack("prod")), drop="edge")
    cluster = _order(architecture(deploy_stack("k8s")), drop="edge")
    common = {a for edge in docker for a in edge} & {a for edge in cluster for a in edge}
    assert {"postgres", "migrate", "elastic-setup", "server", "client", "backup-postgres"} <= common
    assert {e for e in cluster if set(e) <= common} == {e for e in docker if set(e) <= common}


def test_the_drawing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", "--stack", "k8s"]) == 0
    text = capsys.readouterr().out
    assert 'subgraph network["namespace sentineliq-prod"]' in text
    assert "migrate -->|done| server" in text and "postgres -->|healthy| migrate" in text
    assert "postgres -.- claim_postgres_data_postgres_0" in text
    assert "backup_postgres -.- claim_backup_postgres" in text
