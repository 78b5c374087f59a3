"""One-shot containers run by pulumi-command on the Docker host: migrations and setup steps.

The command runs `docker run --rm -i` on the host of the stack's Docker engine: locally (`local.Command`) when the
engine is local, over SSH (`remote.Command`) when `dockerHost` is `ssh://…`. Secrets travel on stdin only:
pulumi-command copies the command line into its error messages, and a remote command's environment needs the
server's `AcceptEnv`. The command line carries nothing but names and image ids, stdout and stderr are kept as
secret outputs, and the container's shell reads the secrets from its stdin, so they never reach the container's
configuration (`docker inspect`) either.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_command as command

from .naming import StackNames
from .settings import Settings

SECRET_OUTPUTS = ["stdout", "stderr"]


@dataclass(frozen=True)
class OneShotArgs:
    settings: Settings
    names: StackNames
    image_id: pulumi.Input[str]
    network_name: pulumi.Input[str]
    script: str
    """A POSIX sh script run in the image; it reads its secrets from stdin, one line each."""
    stdin: pulumi.Output[str]
    """The secret lines the script reads (a secret output)."""
    triggers: Sequence[pulumi.Input[str]]
    """Values whose change forces the command to run again."""
    depends_on: Sequence[pulumi.Resource]


def docker_run(args: OneShotArgs, image_id: str, network: str, purpose: str) -> str:
    """The command line; it holds no secret (asserted by the tests for every one-shot)."""
    host = args.settings.docker_host
    base = ["docker"] if host is None or args.settings.ssh is not None else ["docker", "--host", host]
    labels = [f"--label={k}={v}" for k, v in args.names.labels(purpose).items()]
    return shlex.join(
        [
            *base,
            "run",
            "--rm",
            "--interactive",
            f"--network={network}",
            "--security-opt=no-new-privileges:true",
            *labels,
            "--entrypoint=/bin/sh",
            image_id,
            "-c",
            args.script,
        ]
    )


def one_shot(
    name: str, purpose: str, args: OneShotArgs, parent: pulumi.Resource
) -> command.local.Command | command.remote.Command:
    """Declare the one-shot as a child of `parent`, on the engine's host."""
    create = pulumi.Output.all(args.image_id, args.network_name).apply(
        lambda values: docker_run(args, str(values[0]), str(values[1]), purpose)
    )
    opts = pulumi.ResourceOptions(
        parent=parent, depends_on=list(args.depends_on), additional_secret_outputs=SECRET_OUTPUTS
    )
    ssh = args.settings.ssh
    if ssh is None:
        return command.local.Command(
            name,
            command.local.CommandArgs(
                create=create,
                stdin=args.stdin,
                triggers=list(args.triggers),
                interpreter=["/bin/sh", "-c"],
                add_previous_output_in_env=False,
            ),
            opts=opts,
        )
    key = args.settings.ssh_private_key
    return command.remote.Command(
        name,
        command.remote.CommandArgs(
            connection=command.remote.ConnectionArgs(
                host=ssh.host,
                port=ssh.port,
                user=ssh.user,
                private_key=None if key is None else pulumi.Output.secret(key.get_secret_value()),
            ),
            create=create,
            stdin=args.stdin,
            triggers=list(args.triggers),
            add_previous_output_in_env=False,
        ),
        opts=opts,
    )
