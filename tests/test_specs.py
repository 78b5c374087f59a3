"""The target-neutral specs: no Pulumi in them, and the model's own rules.

The Docker rendering of the specs is covered by the snapshots and the stack tests; these tests hold what a second
target (Kubernetes) relies on: that `sentinel_infra.specs` can be imported without any provider SDK, and that every
service declares the ports it listens on, with who may reach them.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from harness import ROOT, Deployment, deploy_stack, stack_settings
from pydantic import SecretStr

from sentinel_infra.docker.containers import LOOPBACK, host_address, port_args
from sentinel_infra.ops.evaluate import CONTAINER
from sentinel_infra.ops.graph import COMMANDS
from sentinel_infra.settings import SERVICE_NAMES
from sentinel_infra.specs.model import HealthCheck, Limits, OneShotSpec, Port, ServiceSpec
from sentinel_infra.specs.plan import PlanError, build_plan, make_plan

SPECS = ROOT / "sentinel_infra" / "specs"
FORBIDDEN = ("pulumi", "pulumi_docker", "pulumi_command", "pulumi_kubernetes")


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth of its code (`TYPE_CHECKING` blocks included)."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


@pytest.mark.parametrize("path", sorted(SPECS.glob("*.py")), ids=lambda path: path.name)
def test_a_spec_module_imports_no_pulumi(path: Path) -> None:
    found = {m for m in imported_modules(path) if m.split(".")[0] in FORBIDDEN}
    assert not found, f"{path.name} imports {sorted(found)}: a spec is target-neutral data"


def test_the_ast_check_sees_an_import(tmp_path: Path) -> None:
    """The check above is not vacuous: it finds both forms of import, nested ones too."""
    path = tmp_path / "probe.py"
    path.write_text("import os\nif True:\n    import pulumi_docker as docker\nfrom pulumi import Output\n")
    assert {"pulumi_docker", "pulumi"} <= imported_modules(path)


def test_importing_every_spec_loads_no_provider_sdk() -> None:
    """Transitively too: the specs (and the shared settings they read) load no target's SDK."""
    modules = [f"sentinel_infra.specs.{path.stem}" for path in sorted(SPECS.glob("*.py"))]
    probe = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pulumi_docker', 'pulumi_command', "
        "'pulumi_kubernetes')))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_every_service_declares_the_ports_it_listens_on() -> None:
    """A Kubernetes Service is made from these; on Docker only the published ones become host ports."""
    specs = build_plan(stack_settings("prod")).services
    ports = {name: {p.container for p in spec.ports} for name, spec in specs.items()}
    assert ports == {
        "postgres": {5432},
        "redis": {6379},
        "minio": {9000, 9001},
        "elasticsearch": {9200},
        "logstash": {5000},
        "kibana": {5601},
        "server": {3001},
        "client": {3000},
        "edge": {8080, 8443, 3001},
    }
    for spec in specs.values():
        names = [p.name for p in spec.ports]
        assert len(names) == len(set(names)), f"{spec.name}: two ports share a name"


def test_a_port_has_a_host_port_exactly_when_it_is_not_internal() -> None:
    Port("api", 9000)
    Port("console", 9001, "operator", 9001)
    with pytest.raises(ValueError, match="host port is given exactly when it is not internal"):
        Port("api", 9000, host=9000)
    with pytest.raises(ValueError, match="host port is given exactly when it is not internal"):
        Port("console", 9001, "public")


def test_docker_binds_operator_ports_to_loopback_and_public_ones_to_the_bind_address() -> None:
    assert host_address(Port("console", 9001, "operator", 9001), "0.0.0.0") == LOOPBACK
    assert host_address(Port("https", 8443, "public", 443), "192.0.2.10") == "192.0.2.10"
    spec = ServiceSpec(
        name="x",
        image="x:1",
        healthcheck=HealthCheck(test=("CMD", "true")),
        ready_timeout=10,
        limits=Limits(cpus=1, memory_mb=64),
        ports=(Port("internal", 80), Port("ui", 81, "operator", 8081), Port("web", 82, "public", 80)),
    )
    published = [(p.internal, p.external, p.ip) for p in port_args(spec, "192.0.2.10") or []]
    assert published == [(81, 8081, LOOPBACK), (82, 80, "192.0.2.10")], "an internal port is never published"


def test_a_rolling_service_may_listen_but_not_publish() -> None:
    base = {
        "name": "x",
        "image": "x:1",
        "healthcheck": HealthCheck(test=("CMD", "true")),
        "ready_timeout": 10,
        "limits": Limits(cpus=1, memory_mb=64),
        "rolling": True,
    }
    ServiceSpec(**base, ports=(Port("http", 80),))
    with pytest.raises(ValueError, match="rolling container cannot publish a host port"):
        ServiceSpec(**base, ports=(Port("http", 80, "public", 80),))


# --- the plan: one start order, checked, and exactly what the Docker target registers -----------------------------


def registered_edges(deployment: Deployment) -> dict[str, set[str]]:
    """Each container's and command's start-order upstreams, by plan name (a replica counts as its service)."""
    runnable = {
        r.urn: re.sub(r"^server-\d+$", "server", r.name.removesuffix("-container").removesuffix("-command"))
        for r in deployment.resources
        if r.type in (CONTAINER, *COMMANDS)
    }
    edges: dict[str, set[str]] = {}
    for resource in deployment.resources:
        if resource.urn in runnable:
            name = runnable[resource.urn]
            found = {runnable[urn] for urn in resource.dependencies if urn in runnable}
            edges.setdefault(name, set()).update(found)
    return edges


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_docker_target_registers_exactly_the_plans_edges(stack: str) -> None:
    """dev has the seed step and backups off; prod has replicas and backups: every edge is the plan's, no more,
    but the Docker target's own step that points the edge at the app containers, after all of them."""
    plan = build_plan(stack_settings(stack))
    expected = {name: set(plan.after(name)) for name in plan.order}
    expected.update({job.name: set(job.after) for job in plan.backups})
    expected["edge-upstreams"] = {"edge", "server", "client"}
    assert registered_edges(deploy_stack(stack)) == expected


def test_the_plan_orders_each_spec_after_its_upstreams() -> None:
    plan = build_plan(stack_settings("dev"))
    position = {name: index for index, name in enumerate(plan.order)}
    assert set(position) == {*plan.services, *plan.steps}
    for name in plan.order:
        assert all(position[upstream] < position[name] for upstream in plan.after(name)), name
    assert "seed-data" in plan.steps and "seed-data" in plan.services["server"].after


def spec(name: str, after: tuple[str, ...] = (), talks_to: tuple[str, ...] = ()) -> ServiceSpec:
    return ServiceSpec(
        name=name,
        image=f"{name}:1",
        healthcheck=HealthCheck(test=("CMD", "true")),
        ready_timeout=10,
        limits=Limits(cpus=1, memory_mb=64),
        after=after,
        talks_to=talks_to,
    )


def step(name: str, service: str, after: tuple[str, ...] = ()) -> OneShotSpec:
    return OneShotSpec(name=name, service=service, script="true", stdin=SecretStr(""), after=after)


def test_a_plan_refuses_unknown_names_cycles_and_clashes() -> None:
    make_plan([spec("db"), spec("app", ("db", "migrate"))], [step("migrate", "app", ("db",))], {}, [])
    with pytest.raises(PlanError, match="app: starts after cache, which does not exist"):
        make_plan([spec("db"), spec("app", ("db", "cache"))], [], {}, [])
    with pytest.raises(PlanError, match="app: talks to queue, which is no service"):
        make_plan([spec("app", talks_to=("queue",))], [], {}, [])
    with pytest.raises(PlanError, match="migrate: runs with api, which is no service"):
        make_plan([spec("db")], [step("migrate", "api", ("db",))], {}, [])
    with pytest.raises(PlanError, match="cycle among app, migrate"):
        make_plan([spec("db"), spec("app", ("migrate",))], [step("migrate", "app", ("app",))], {}, [])
    with pytest.raises(PlanError, match="db: both a service and a step"):
        make_plan([spec("db")], [step("db", "db")], {}, [])
    with pytest.raises(PlanError, match="two specs share a name"):
        make_plan([spec("db"), spec("db")], [], {}, [])


def test_only_a_step_inside_a_running_service_may_skip_an_absent_one() -> None:
    OneShotSpec("rotate", "db", "true", SecretStr(""), in_service=True, skip_if_absent=True)
    with pytest.raises(ValueError, match="only a step inside a running service can skip an absent one"):
        OneShotSpec("rotate", "db", "true", SecretStr(""), skip_if_absent=True)


def test_each_data_service_declares_its_backup_and_gets_one_job() -> None:
    plan = build_plan(stack_settings("prod"))
    with_backup = [name for name, spec in plan.services.items() if spec.backup is not None]
    assert with_backup == ["postgres", "redis", "minio"]
    assert [(job.name, job.image, job.after) for job in plan.backups] == [
        (f"backup-{name}", plan.services[name].image, (name,)) for name in with_backup
    ]
    off = build_plan(stack_settings("prod", backup='{"enabled": false}'))
    assert off.backups == ()


def test_the_settings_service_names_are_the_plans_services() -> None:
    """`resources.<service>` and `status` name the services by `ServiceName`: exactly the plan's, in its order."""
    assert tuple(build_plan(stack_settings("dev")).services) == SERVICE_NAMES


@pytest.mark.parametrize(
    ("argv", "absent"),
    [
        (["config-reference"], ["sentinel_infra.ops.evaluate", "pulumi_docker", "pulumi_command"]),
        (
            ["status", "--stack", "no-such-stack", "--docker-host", "unix:///nonexistent.sock"],
            ["sentinel_infra.ops.evaluate"],
        ),
    ],
    ids=["config-reference", "status"],
)
def test_an_operator_command_loads_only_what_it_needs(argv: list[str], absent: list[str]) -> None:
    """The CLI's subcommands import lazily: the config reference needs no SDK, status no offline evaluation."""
    probe = (
        "import sys\n"
        "from sentinel_infra.ops.cli import main\n"
        f"main({argv!r})\n"
        f"print(sorted(m for m in {absent!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout + result.stderr
