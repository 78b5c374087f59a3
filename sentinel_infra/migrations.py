"""The database steps that run in the server image of this update, before the server starts.

**Migration.** `prisma migrate deploy` replaces the seed's manual `prod.sh migrate`. It runs after PostgreSQL is
healthy and the server depends on it, so a new server image is only started once its schema is in place, and a
failing migration fails the update before the running server is touched. `migrate deploy` applies pending
migrations only, so a re-run is harmless; the image id is the trigger, so every new server image migrates once.

**Seed data** (`sentineliq:seedData`, the seed's optional `prod.sh migrate` step). `prisma db seed` runs after the
migration and before the server starts, but unlike the migration it is not idempotent: it must run once when
turned on, and again only when the operator asks (`sentineliq:seedDataRun`), never because of a new image or a
rotated password. pulumi-command runs `create` once, `update` (or `create` again, when there is no `update`) on
any input change, and `create` again on a replacement, which a change of `triggers` forces. So:

- the seed's only trigger is `seedDataRun`;
- its command line holds no image id: it runs the stack's local tag `localhost/<project>-<stack>-server:seed`,
  which a `docker.Tag` moves to each new server image (the tag resource, not the seed, changes with the image;
  upstream's `resourceDockerTagDelete` and `Read` are no-ops: kreuzwerker/terraform-provider-docker
  `internal/provider/resource_docker_tag_funcs.go`);
- a change of its other input, the connection string on stdin (a rotated `postgresPassword`), runs `update`, a
  no-op that says how to seed again.

Turning `seedData` off removes the step (nothing runs); turning it on again seeds again.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker
from pydantic import SecretStr

from .data_services import database_url
from .naming import StackNames
from .oneshot import InNewContainer, OneShot, OneShotArgs
from .settings import NAMESPACE, Settings

MIGRATE = "npx prisma migrate deploy --schema=../db/schema.prisma"
"""Run in the Wasp server image's working directory (`.wasp/build/server`), beside its `db/` folder."""

SEED = "npx prisma db seed"
"""The app's seed command (`prisma.seed` in the server's package.json), in the same working directory."""


def _with_database_url(command: str) -> str:
    """A script that reads the connection string from stdin, so it reaches neither a command line nor the
    container's config, then runs `command` with it."""
    return f"set -eu\nIFS= read -r DATABASE_URL\nexport DATABASE_URL\nexec {command}\n"


SCRIPT = _with_database_url(MIGRATE)
SEED_SCRIPT = _with_database_url(SEED)
SEED_KEPT = "echo " + shlex.quote(
    f"seed data: not run again (it runs once; change {NAMESPACE}:seedDataRun to run it again)"
)
"""The seed step's `update`: what a change of anything but `seedDataRun` runs."""


def _database_input(settings: Settings) -> SecretStr:
    return SecretStr(database_url(settings).get_secret_value() + "\n")


def migration(
    settings: Settings,
    names: StackNames,
    server_image_id: pulumi.Input[str],
    network_name: pulumi.Input[str],
    after: list[pulumi.Resource],
) -> OneShotArgs:
    """The migration step; `after` holds the PostgreSQL container (healthy, by its `wait`) and the password step."""
    return OneShotArgs(
        settings=settings,
        names=names,
        where=InNewContainer(server_image_id, network_name),
        script=SCRIPT,
        stdin=_database_input(settings),
        triggers=[server_image_id],
        depends_on=after,
    )


def seed_image(names: StackNames) -> str:
    """The stack's local tag of its current server image: a stable name, never pulled (no registry answers
    `localhost/…` on a Docker host)."""
    return f"localhost/{names.physical('server')}:seed"


def seed_data(
    settings: Settings, names: StackNames, network_name: pulumi.Input[str], after: list[pulumi.Resource]
) -> OneShotArgs:
    """The seed step; `after` holds the migration and the tag of this update's server image."""
    return OneShotArgs(
        settings=settings,
        names=names,
        where=InNewContainer(seed_image(names), network_name),
        script=SEED_SCRIPT,
        stdin=_database_input(settings),
        triggers=[settings.seed_data_run],
        on_update=SEED_KEPT,
        depends_on=after,
    )


@dataclass(frozen=True)
class SeedDataArgs:
    settings: Settings
    names: StackNames
    server_image_id: pulumi.Input[str]
    network_name: pulumi.Input[str]
    provider: docker.Provider
    after: list[pulumi.Resource]
    """The migration (and what it waits for)."""


class SeedData(pulumi.ComponentResource):
    """The seed step and the tag that points it at this update's server image."""

    command: pulumi.Resource
    """The step's command: the server waits for it."""

    def __init__(self, name: str, args: SeedDataArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sentineliq:migrations:SeedData", name, None, opts)
        tag = docker.Tag(
            f"{name}-image",
            docker.TagArgs(source_image=args.server_image_id, target_image=seed_image(args.names)),
            opts=pulumi.ResourceOptions(parent=self, provider=args.provider),
        )
        step = OneShot(
            f"{name}-data",
            seed_data(args.settings, args.names, args.network_name, [*args.after, tag]),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.command = step.command
        self.register_outputs({})
