"""Prisma migrations: `prisma migrate deploy` with the server image of this update, before the server starts.

This replaces the seed's manual `prod.sh migrate`. The command runs after PostgreSQL is healthy and the server
depends on it, so a new server image is only started once its schema is in place, and a failing migration fails
the update before the running server is touched. `migrate deploy` applies pending migrations only, so a re-run is
harmless; the image id is the trigger, so every new server image migrates once.
"""

from __future__ import annotations

import pulumi
from pydantic import SecretStr

from .data_services import database_url
from .naming import StackNames
from .oneshot import InNewContainer, OneShotArgs
from .settings import Settings

MIGRATE = "npx prisma migrate deploy --schema=../db/schema.prisma"
"""Run in the Wasp server image's working directory (`.wasp/build/server`), beside its `db/` folder."""

SCRIPT = f"set -eu\nIFS= read -r DATABASE_URL\nexport DATABASE_URL\nexec {MIGRATE}\n"
"""Reads the connection string from stdin, so it reaches neither a command line nor the container's config."""


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
        stdin=SecretStr(database_url(settings).get_secret_value() + "\n"),
        triggers=[server_image_id],
        depends_on=after,
    )
