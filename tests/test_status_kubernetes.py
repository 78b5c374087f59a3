"""`status` for a Kubernetes stack: the real kubectl against a stand-in API server (tests/kube_standin.py) that
answers and fails as a cluster does: pods not ready, crash-looping or missing, a failed backup run, a namespace that
does not exist, 401 and 500, a context that does not exist, a refused connection, no kubectl at all."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kube_standin import Cluster, kubeconfig, pod, serve
from local_servers import require

from sentinel_infra.ops.kubernetes_status import SERVICES
from sentinel_infra.ops.status import run_status

NAMESPACE = "sentineliq-k8s"
IMAGES = {"server": "ghcr.io/killsearch/saas-server:main", "client": "ghcr.io/killsearch/saas-client:main"}


def healthy_pods(namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    """Every service ready (the server in two replicas), and the migration Job's pod done."""
    pods = [pod(f"{s}-0", s, namespace, image=IMAGES.get(s, f"{s}:1")) for s in SERVICES if s != "server"]
    pods += [pod(f"server-{n}", "server", namespace, image=IMAGES["server"]) for n in ("abc12", "def34")]
    return [*pods, pod("migrate-5f2c-x7k", "migrate", namespace, phase="Succeeded")]


@pytest.fixture
def cluster() -> Cluster:
    return Cluster(namespaces={NAMESPACE}, pods=healthy_pods())


@pytest.fixture
def root(tmp_path: Path, cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A project with a Kubernetes stack `k8s` whose context is the stand-in cluster; the kubeconfig's current
    context is another (empty) cluster, so only the configured context can find the pods."""
    require(shutil.which("kubectl"), "kubectl")
    stack_file = tmp_path / "Pulumi.k8s.yaml"
    config = {"sentineliq:platform": "kubernetes", "sentineliq:kubernetes": {"context": "standin"}}
    stack_file.write_text(json.dumps({"config": config}))
    with serve(cluster) as url, serve(Cluster(namespaces={NAMESPACE})) as other:
        kubeconfig(tmp_path / "kubeconfig", {"standin": url, "elsewhere": other}, current="elsewhere")
        monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
        monkeypatch.setenv("HOME", str(tmp_path))  # kubectl's discovery cache
        yield tmp_path


def status(root: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any], str]:
    code = run_status(root, "k8s", as_json=True)
    out, err = capsys.readouterr()
    return code, json.loads(out), err


def rows(report: dict[str, Any]) -> dict[str, tuple[str, str, bool]]:
    return {row["container"]: (row["state"], row["health"], row["ok"]) for row in report["services"]}


def test_a_healthy_stack(root: Path, cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    code, report, _err = status(root, capsys)
    assert code == 0 and report["healthy"] is True
    expected = [name for service in SERVICES for name in [service] * (2 if service == "server" else 1)]
    assert [row["service"] for row in report["services"]] == [*expected, "migrate"]
    assert rows(report)["migrate-5f2c-x7k"] == ("succeeded", "none", True)
    server = next(row for row in report["services"] if row["container"] == "server-abc12")
    assert server["image"] == IMAGES["server"] and server["uptime_seconds"] > 0
    # It asked the configured namespace, for this stack's pods only.
    [listed] = [r for r in cluster.requests if r.startswith(f"/api/v1/namespaces/{NAMESPACE}/pods")]
    assert "labelSelector=app.kubernetes.io%2Fpart-of%3Dsentineliq%2Capp.kubernetes.io%2Finstance%3Dk8s" in listed


def test_the_table(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_status(root, "k8s") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["SERVICE", "CONTAINER", "STATE", "HEALTH", "UPTIME", "IMAGE"]
    assert "stack k8s: all services healthy" in out


@pytest.mark.parametrize(
    ("change", "state", "health"),
    [
        ({"ready": False}, "running", "unhealthy"),
        ({"ready": False, "started": False}, "running", "starting"),
        ({"ready": False, "waiting": "CrashLoopBackOff"}, "waiting: CrashLoopBackOff", "unhealthy"),
        ({"phase": "Pending", "ready": False, "waiting": "ImagePullBackOff"}, "waiting: ImagePullBackOff", "none"),
        ({"phase": "Failed", "ready": False}, "failed", "none"),
    ],
)
def test_a_pod_that_is_not_ready(
    root: Path, cluster: Cluster, capsys: pytest.CaptureFixture[str], change: dict[str, Any], state: str, health: str
) -> None:
    cluster.pods[0] = pod("postgres-0", "postgres", NAMESPACE, **change)
    code, report, _err = status(root, capsys)
    assert code == 1 and report["healthy"] is False
    assert rows(report)["postgres-0"] == (state, health, False)


def test_a_missing_service_and_another_stacks_pods(
    root: Path, cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster.pods = [p for p in cluster.pods if p["metadata"]["name"] != "kibana-0"]
    # The same service of another stack in the same namespace does not stand in for this one.
    cluster.pods.append(pod("kibana-0", "kibana", NAMESPACE, stack="staging"))
    code, report, _err = status(root, capsys)
    assert code == 1
    assert [row for row in report["services"] if row["service"] == "kibana"] == [
        {
            "service": "kibana",
            "container": "-",
            "state": "missing",
            "health": "-",
            "image": "-",
            "uptime_seconds": None,
            "ok": False,
        }
    ]


def test_a_failed_backup_run(root: Path, cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    cluster.pods.append(pod("backup-postgres-29411550-abcde", "backup-postgres", NAMESPACE, phase="Failed"))
    code, report, _err = status(root, capsys)
    assert code == 1 and rows(report)["backup-postgres-29411550-abcde"] == ("failed", "none", False)


def test_a_namespace_that_does_not_exist(root: Path, cluster: Cluster, capsys: pytest.CaptureFixture[str]) -> None:
    cluster.namespaces = set()
    code, report, err = status(root, capsys)
    assert code == 1
    assert {row["state"] for row in report["services"]} == {"missing"} and len(report["services"]) == len(SERVICES)
    assert f"namespace {NAMESPACE} of context standin does not exist: stack k8s is not deployed" in err


# kubectl's own words for each answer (kubectl 1.32; its last stderr line is what status prints).
@pytest.mark.parametrize(
    ("fault", "says"),
    [(500, "Error from server (InternalError)"), (401, "You must be logged in to the server"), (403, "(Forbidden)")],
)
def test_the_cluster_refuses(
    root: Path, cluster: Cluster, capsys: pytest.CaptureFixture[str], fault: int, says: str
) -> None:
    cluster.fault = fault
    assert run_status(root, "k8s", as_json=True) == 2
    out, err = capsys.readouterr()
    assert out == "" and "status: cannot ask Kubernetes (namespace sentineliq-k8s of context standin)" in err
    assert says in err


def test_a_context_that_does_not_exist(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = {"sentineliq:platform": "kubernetes", "sentineliq:kubernetes": {"context": "prod", "namespace": "x"}}
    (root / "Pulumi.k8s.yaml").write_text(json.dumps({"config": config}))
    assert run_status(root, "k8s", as_json=True) == 2
    err = capsys.readouterr().err
    assert "status: cannot ask Kubernetes (namespace x of context prod)" in err and "context" in err.split(": ", 2)[2]


def test_the_default_namespace_and_the_current_context(
    root: Path, cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    """No context configured: the kubeconfig's current one (the empty cluster); no namespace: sentineliq-<stack>."""
    (root / "Pulumi.k8s.yaml").write_text(json.dumps({"config": {"sentineliq:platform": "kubernetes"}}))
    code, report, _err = status(root, capsys)
    assert code == 1 and {row["state"] for row in report["services"]} == {"missing"}
    assert cluster.requests == []


def test_an_unreachable_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    require(shutil.which("kubectl"), "kubectl")
    with serve(Cluster()) as url:
        pass  # stopped: its port now refuses connections
    kubeconfig(tmp_path / "kubeconfig", {"gone": url}, current="gone")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "Pulumi.k8s.yaml").write_text(json.dumps({"config": {"sentineliq:platform": "kubernetes"}}))
    assert run_status(tmp_path, "k8s") == 2
    assert "was refused" in capsys.readouterr().err


def test_no_kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    (tmp_path / "Pulumi.k8s.yaml").write_text(json.dumps({"config": {"sentineliq:platform": "kubernetes"}}))
    assert run_status(tmp_path, "k8s") == 2
    assert "cannot run kubectl" in capsys.readouterr().err
