"""The database steps that run in the server image of this update, before the server starts.

**Migration.** `prisma migrate deploy` replaces the seed's manual `prod.sh migrate`. It runs after PostgreSQL is
ready and the server waits for it, so a new server image is only started once its schema is in place, and a
failing migration fails the update before the running server is touched. `migrate deploy` applies pending
migrations only, so a re-run is harmless; every new server image migrates once.

**Seed data** (`sentineliq:seedData`, the seed's optional `prod.sh migrate` step). `prisma db seed` runs after the
migration and before the server starts, but unlike the migration it is not idempotent: it must run once when
turned on, and again only when the operator asks (`sentineliq:seedDataRun`), never because of a new image or a
rotated password. Turning `seedData` off removes the step (nothing runs); turning it on again seeds again.
"""

from __future__ import annotations

import shlex

from pydantic import SecretStr

from ..settings import NAMESPACE, Settings
from .model import NewImage, OneShotSpec, Setting
from .postgres import database_url

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


def database_input(settings: Settings) -> SecretStr:
    """Both steps' stdin: the connection string, one line."""
    return SecretStr(database_url(settings).get_secret_value() + "\n")


def migrate_step(settings: Settings) -> OneShotSpec:
    """In the server image of this update, after PostgreSQL and its password step; again for each new image."""
    return OneShotSpec(
        name="migrate",
        service="server",
        script=SCRIPT,
        stdin=database_input(settings),
        after=("postgres", "postgres-password"),
        talks_to=("postgres",),
        reruns=(NewImage(),),
    )


def seed_step(settings: Settings) -> OneShotSpec:
    """After the migration, once; again only when `seedDataRun` changes (never for a new image or a rotation)."""
    return OneShotSpec(
        name="seed-data",
        service="server",
        script=SEED_SCRIPT,
        stdin=database_input(settings),
        after=("migrate",),
        talks_to=("postgres",),
        reruns=(Setting("seedDataRun", settings.seed_data_run),),
        on_input_change=SEED_KEPT,
    )
