"""The living architecture: drawn from the program, committed in docs/architecture.md, kept in sync."""

from __future__ import annotations

import pytest
from harness import ROOT, deploy_stack

from sentinel_infra.ops.cli import main
from sentinel_infra.ops.graph import architecture, graph, mermaid


def test_the_committed_diagram_matches_the_code() -> None:
    committed = (ROOT / "docs" / "architecture.md").read_text()
    generated = graph(ROOT, "prod")
    assert f"<!-- architecture:start -->\n{generated.rstrip()}\n<!-- architecture:end -->" in committed, (
        "run: python -m sentinel_infra graph --stack prod --write docs/architecture.md"
    )


def test_the_start_up_waves() -> None:
    waves = architecture(deploy_stack("prod")).waves()
    assert waves[0] == ["elastic-password", "minio", "postgres", "redis"]
    assert set(waves[1]) >= {"elasticsearch", "postgres-password"}
    assert waves[-4:] == [["server", "server-2"], ["edge"], ["client"], ["edge-upstreams"]]
    assert {"migrate", "elastic-setup"} <= set(waves[2])


def test_the_diagram_shows_gates_and_volumes() -> None:
    text = mermaid(architecture(deploy_stack("dev")))
    assert "postgres -->|healthy| migrate" in text
    assert "migrate -->|done| server" in text
    assert "server -->|healthy| edge" in text
    assert "edge -->|healthy| client" in text
    assert "edge -.- sentineliq_dev_edge_data" in text
    assert "postgres -.- sentineliq_dev_postgres_data" in text
    assert "backup" not in text, "dev runs no backup jobs"


def test_the_graph_command_prints_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["graph", "--stack", "dev"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Stack `dev`")
    assert "```mermaid\nflowchart LR" in out
