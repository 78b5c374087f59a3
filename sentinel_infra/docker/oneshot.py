"""One-shot commands run by pulumi-command on the Docker host: migrations, setup and credential steps.

A one-shot runs `docker run --rm -i` (a new container of an image, on the stack network) or `docker exec -i`
(inside a running container) on the host of the stack's Docker engine: locally (`local.Command`) when the engine
is local, over SSH (`remote.Command`) when `dockerHost` is `ssh://…`. Secrets travel on stdin only:
pulumi-command copies the command line into its error messages, and a remote command's environment needs the
server's `AcceptEnv`. The command line carries nothing but names and image ids, stdout and stderr are kept as
secret outputs, and the script reads its secrets from stdin, so they never reach a container's configuration
(`docker inspect`) either.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, replace

import pulumi
import pulumi_command as command
from pydantic import SecretStr

from ..naming import StackNames
from ..settings import Settings
from .platform import LOCAL_ENGINE_ENVIRONMENT

SECRET_OUTPUTS = ["stdout", "stderr"]


@dataclass(frozen=True)
class InNewContainer:
    """Run in a new, removed-after container of `image_id` on the stack network."""

    image_id: pulumi.Input[str]
    network_name: pulumi.Input[str]


@dataclass(frozen=True)
class InRunningContainer:
    """Run inside the running container `container_name`; with `skip_if_absent`, do nothing when there is none."""

    container_name: pulumi.Input[str]
    skip_if_absent: bool = False


@dataclass(frozen=True)
class OneShotArgs:
    """A one-shot step as data: where it runs, its script, the secrets it reads and what it waits for."""

    settings: Settings
    names: StackNames
    where: InNewContainer | InRunningContainer
    script: pulumi.Input[str]
    """A POSIX sh script; it reads its secrets from stdin, one line each. An output (names of other resources) makes
    the command line wait for it."""
    stdin: SecretStr
    """The lines the script reads, passed as a secret output; a change runs the command again."""
    depends_on: Sequence[pulumi.Resource]
    triggers: Sequence[pulumi.Input[str]] = ()
    """Values whose change forces the command to run again."""
    on_update: str | None = None
    """Run instead of the script when another input (the stdin, the command line) changes; None runs the script.

    pulumi-command runs `update` (or `create` when there is none) on any input change, and `create` again only when
    `triggers` change (a replacement): a step that must run once per trigger, not on every rotation, sets this."""


def _docker(settings: Settings) -> list[str]:
    host = settings.docker_host
    # Over SSH the command runs `docker` on the engine's host, as the provider's `docker system dial-stdio` does.
    # Locally, an unset dockerHost is resolved at run time (LOCAL_ENGINE_ENVIRONMENT): the line stays the same
    # on every machine.
    return ["docker"] if host is None or settings.ssh is not None else ["docker", "--host", host]


ONE_SHOT_LIMITS = ("--memory=1g", "--memory-swap=1g", "--cpus=1", "--pids-limit=512")
"""Every one-shot container's limits, as every service's (CIS 5.11, 5.12, 5.29; the policy pack requires them):
Prisma's migrate (Node and its schema engine) and the curl-based setup steps need far less than 1 GiB and one
CPU; the swap limit equal to the memory limit means no swap; 512 processes and threads stop a fork bomb."""


def _script(args: OneShotArgs) -> str:
    """The script, once OneShot has resolved an output one (`dataclasses.replace`)."""
    if not isinstance(args.script, str):
        raise TypeError("the script is an output: OneShot resolves it before the command line is built")
    return args.script


def run_command(args: OneShotArgs, purpose: str, image_id: str, network: str) -> str:
    """`docker run` of the script in a new container; the line holds no secret (the tests assert it)."""
    labels = [f"--label={k}={v}" for k, v in args.names.labels(purpose).items()]
    return shlex.join(
        [
            *_docker(args.settings),
            "run",
            "--rm",
            "--interactive",
            f"--network={network}",
            "--security-opt=no-new-privileges:true",
            "--cap-drop=ALL",
            *ONE_SHOT_LIMITS,
            *labels,
            "--entrypoint=/bin/sh",
            image_id,
            "-c",
            _script(args),
        ]
    )


def exec_command(args: OneShotArgs, container: str, skip_if_absent: bool) -> str:
    """`docker exec` of the script in a running container, optionally skipped when the container is absent."""
    docker = _docker(args.settings)
    line = shlex.join([*docker, "exec", "--interactive", container, "/bin/sh", "-c", _script(args)])
    if not skip_if_absent:
        return line
    probe = shlex.join([*docker, "container", "inspect", container])
    return f"if {probe} >/dev/null 2>&1; then {line}; else echo 'no container {container} yet: nothing to do'; fi"


class OneShot(pulumi.ComponentResource):
    """A one-shot step on the engine's host; `name` also labels its container (`io.sentineliq.service`)."""

    command: command.local.Command | command.remote.Command

    def __init__(self, name: str, args: OneShotArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sentineliq:oneshot:OneShot", name, None, opts)
        where = args.where
        if isinstance(where, InNewContainer):
            create = pulumi.Output.all(where.image_id, where.network_name, args.script).apply(
                lambda values: run_command(replace(args, script=values[2]), name, str(values[0]), str(values[1]))
            )
        else:
            skip = where.skip_if_absent
            create = pulumi.Output.all(where.container_name, args.script).apply(
                lambda values: exec_command(replace(args, script=values[1]), str(values[0]), skip)
            )
        child = pulumi.ResourceOptions(
            parent=self, depends_on=list(args.depends_on), additional_secret_outputs=SECRET_OUTPUTS
        )
        stdin = pulumi.Output.secret(args.stdin.get_secret_value())
        triggers = list(args.triggers) or None
        ssh = args.settings.ssh
        if ssh is None:
            self.command = command.local.Command(
                f"{name}-command",
                command.local.CommandArgs(
                    create=create,
                    update=args.on_update,
                    stdin=stdin,
                    triggers=triggers,
                    interpreter=["/bin/sh", "-c"],
                    # Added to the environment of `pulumi` (pulumi-command appends it to os.Environ()).
                    environment=LOCAL_ENGINE_ENVIRONMENT,
                    add_previous_output_in_env=False,
                ),
                opts=child,
            )
        else:
            key = args.settings.ssh_private_key
            self.command = command.remote.Command(
                f"{name}-command",
                command.remote.CommandArgs(
                    connection=command.remote.ConnectionArgs(
                        host=ssh.host,
                        port=ssh.port,
                        user=ssh.user,
                        private_key=None if key is None else pulumi.Output.secret(key.get_secret_value()),
                        # Without it pulumi-command accepts any host (InsecureIgnoreHostKey), and the database URL,
                        # ALTER ROLE and the Elastic passwords travel on this connection.
                        host_key=args.settings.ssh_host_key,
                    ),
                    create=create,
                    update=args.on_update,
                    stdin=stdin,
                    triggers=triggers,
                    add_previous_output_in_env=False,
                ),
                opts=child,
            )
        self.register_outputs({})
