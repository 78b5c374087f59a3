"""The optional seed-data step (`sentineliq:seedData`): when it runs, and what it runs.

When: pulumi-command (provider-notes, pulumi-command section) runs `create` once, `update` (or `create` again when
there is no `update`) whenever any input changes, and `create` again when `triggers` change (a replacement). The
seed must run once when turned on and again only when the operator changes `seedDataRun`, so these tests compare
the seed command's registered inputs across evaluations: a new server build, a new tag or a rotated password must
leave its `create` and `triggers` alone (and a stdin change must meet an `update` that does not seed), while a new
`seedDataRun` must change exactly its `triggers`.

What: its command line runs for real against stand-ins (as tests/test_scripts.py does for the migration): the
connection string arrives from stdin, `npx prisma db seed` runs with it, a failing seed fails the step, and the
`update` seeds nothing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import (
    PROJECT,
    TEST_SECRETS,
    Deployment,
    deploy_new_build,
    deploy_stack,
    deploy_with,
    unwrap,
)
from pydantic import SecretStr
from test_scripts import FAKE_DOCKER, TRICKY, run, write_tool

from sentinel_infra.docker.oneshot import run_command
from sentinel_infra.docker.steps import StepContext, seed_image, step_args
from sentinel_infra.naming import StackNames
from sentinel_infra.settings import Settings, collect_problems
from sentinel_infra.specs.migrate import SEED_KEPT, SEED_SCRIPT, seed_step

SEED = "seed-data-command"
SERVER = "ghcr.io/killsearch/saas-server:main"


def inputs(deployment: Deployment, name: str = SEED) -> dict[str, object]:
    return dict(deployment.named(name).inputs)


def test_the_dev_stack_seeds_after_the_migration_and_before_the_server() -> None:
    dev = deploy_stack("dev")
    seed = dev.named(SEED)
    assert {"migrate-command", "seed-image"} <= dev.depends_on(seed)
    assert SEED in dev.depends_on(dev.containers()["server"])
    tag = dev.named("seed-image")
    [server_image] = [r for r in dev.of_type("docker:index/remoteImage:RemoteImage") if r.name == "images-server"]
    assert tag.provider == server_image.provider, "the tag is made on the stack's engine"
    assert tag.property_dependencies["sourceImage"] == {server_image.urn}
    assert tag.plain("targetImage") == "localhost/sentineliq-dev-server:seed"
    assert f" {tag.plain('targetImage')} -c " in str(seed.plain("create")), "the seed runs the tagged image"
    assert seed.plain("triggers") == ["1"]
    assert seed.plain("update") == SEED_KEPT
    assert TEST_SECRETS["postgresPassword"] not in str(seed.plain("create"))
    assert TEST_SECRETS["postgresPassword"] in str(seed.plain("stdin"))
    assert "sentineliq:seedData: true" in (Path(__file__).parent.parent / "Pulumi.dev.yaml").read_text()


def test_prod_runs_no_seed_step() -> None:
    prod = deploy_stack("prod")
    assert not [r for r in prod.resources if r.name.startswith("seed")]
    assert not prod.of_type("docker:index/tag:Tag")


def test_a_new_server_build_does_not_seed_again() -> None:
    before = deploy_stack("dev")
    after = deploy_new_build("dev", SERVER, "sha256:" + "7" * 64)
    assert inputs(after, "migrate-command") != inputs(before, "migrate-command"), "the new build is deployed"
    assert inputs(after, "seed-image") != inputs(before, "seed-image"), "the tag follows it"
    assert inputs(after) == inputs(before), "the seed step's inputs do not move"


def test_a_new_server_tag_does_not_seed_again() -> None:
    before = deploy_stack("dev")
    after = deploy_stack("dev", serverTag="sha-a1b2c3d")
    assert inputs(after, "seed-image") != inputs(before, "seed-image")
    assert inputs(after) == inputs(before)


def test_a_rotated_password_runs_the_update_that_does_not_seed() -> None:
    before = deploy_with("dev")
    after = deploy_with("dev", postgresPassword="a-rotated-Password-0099")
    changed = {key for key in inputs(before) if unwrap(inputs(before)[key]) != unwrap(inputs(after)[key])}
    assert changed == {"stdin"}, "the connection string changes, nothing else"
    assert unwrap(inputs(after)["update"]) == SEED_KEPT, "so pulumi-command runs `update`, not the seed"


def test_a_new_seed_data_run_seeds_again() -> None:
    before = deploy_stack("dev")
    after = deploy_stack("dev", seedDataRun="2026-11-27")
    changed = {key for key in inputs(before) if inputs(before)[key] != inputs(after)[key]}
    assert changed == {"triggers"}, "a new trigger: pulumi-command replaces the step, which runs `create` again"
    assert unwrap(inputs(after)["triggers"]) == ["2026-11-27"]


@pytest.mark.parametrize(("value", "ok"), [("true", True), ("false", True), ("yes", False), ("1", False), ("", False)])
def test_seed_data_is_a_strict_bool(value: str, ok: bool) -> None:
    values = {"serverTag": "main", "clientTag": "main", "seedData": value, **TEST_SECRETS}
    problems, _ = collect_problems(values, set(TEST_SECRETS))
    assert (problems == []) is ok
    if not ok:
        assert [(p.key, p.rule) for p in problems] == [("seedData", "must be true or false")]


@pytest.mark.parametrize("value", ["", "-1", "has space", "x" * 65, "a/b"])
def test_seed_data_run_is_a_plain_label(value: str) -> None:
    values = {"serverTag": "main", "clientTag": "main", "seedDataRun": value, **TEST_SECRETS}
    problems, _ = collect_problems(values, set(TEST_SECRETS))
    assert [p.key for p in problems] == ["seedDataRun"]
    assert f"{PROJECT}:seedDataRun" in problems[0].render()


# --- the command line, run for real --------------------------------------------------------------------------


def seed_command_line() -> tuple[str, SecretStr]:
    settings = Settings.model_validate(
        {**TEST_SECRETS, "postgresPassword": TRICKY, "serverTag": "main", "clientTag": "main"}
    )
    names = StackNames("sentineliq", "test")
    # Only what the command line is made of: the step's script, settings and names (no resource is rendered).
    context = StepContext(settings, names, "sentineliq-test-network", None, str, {}, {"migrate": None})
    args = step_args(seed_step(settings), context, image=seed_image(names))
    return run_command(args, "seed-data", seed_image(names), "sentineliq-test-network"), args.stdin


@pytest.fixture
def shell(tmp_path: Path) -> Path:
    """A folder whose bin/ holds the stand-in docker of tests/test_scripts.py (it runs the script here)."""
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "docker").write_text(FAKE_DOCKER)
    (tmp_path / "bin" / "docker").chmod(0o755)
    return tmp_path


def test_the_seed_command_line_hands_the_url_from_stdin_to_prisma(shell: Path) -> None:
    write_tool(shell, "npx", 'printf "%s" "$DATABASE_URL" > "$WORK/url"; echo "$@" > "$WORK/npx-args"\n')
    line, stdin = seed_command_line()
    result = run(shell, line, stdin=stdin.get_secret_value())
    assert result.returncode == 0, result.stderr
    assert (shell / "npx-args").read_text().strip() == "prisma db seed"
    assert (shell / "url").read_text() == stdin.get_secret_value().rstrip("\n")
    docker_args = (shell / "docker-args").read_text()
    assert "localhost/sentineliq-test-server:seed" in docker_args
    assert "--network=sentineliq-test-network" in docker_args
    assert TRICKY not in docker_args
    assert SEED_SCRIPT.splitlines()[-1] == "exec npx prisma db seed"


def test_a_failing_seed_fails_the_step(shell: Path) -> None:
    write_tool(shell, "npx", "echo 'Unique constraint failed on the fields: (`email`)' >&2; exit 1\n")
    line, stdin = seed_command_line()
    assert run(shell, line, stdin=stdin.get_secret_value()).returncode != 0


def test_the_update_seeds_nothing(shell: Path) -> None:
    write_tool(shell, "npx", 'echo called > "$WORK/npx-called"\n')
    result = run(shell, SEED_KEPT, stdin="postgresql://u:p@postgres/db\n")
    assert result.returncode == 0
    assert "change sentineliq:seedDataRun to run it again" in result.stdout
    assert not (shell / "npx-called").exists()
    assert not (shell / "docker-args").exists()
