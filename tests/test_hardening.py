"""Hardening details that no other test pinned, found by the mutation campaign (`scripts/mutation`).

Mock layer: what the program registers. Each test names the mutant it kills.
"""

from __future__ import annotations

from harness import Deployment
from test_stack import remote

COMMANDS = ("command:local:Command", "command:remote:Command")


def test_tmpfs_mounts_allow_no_executables_and_no_setuid(prod: Deployment) -> None:
    """Kills `container-tmpfs-exec`: the writable tmpfs of a read-only root must not become a place to run code."""
    mounts = {name: c.plain("tmpfs") for name, c in prod.containers().items() if c.plain("tmpfs")}
    assert mounts, "the read-only PostgreSQL has tmpfs mounts"
    for name, paths in mounts.items():
        for path, options in paths.items():
            assert {"noexec", "nosuid"} <= set(options.split(",")), f"{name}: tmpfs {path} is {options}"


def test_a_one_shot_never_gets_its_previous_output_in_its_environment(prod: Deployment) -> None:
    """Kills `oneshot-previous-output-env`: pulumi-command would hand the previous run's stdout and stderr (secret
    outputs: they may echo a password) to the next run's environment (PULUMI_COMMAND_STDOUT, ..._STDERR)."""
    for deployment in (prod, remote()):
        commands = [r for r in deployment.resources if r.type in COMMANDS]
        assert len(commands) >= 4
        for command in commands:
            assert command.inputs.get("addPreviousOutputInEnv") is False, f"{command.type} {command.name}"
