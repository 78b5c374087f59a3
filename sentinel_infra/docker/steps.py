"""The one-shot steps on Docker: each step's script and stdin (from `sentinel_infra.specs`) placed on the engine.

A step runs in a new container of an image on the stack network, or inside a running container (the rotations),
and waits for the resources its caller names. The seed step runs the stack's local tag
`localhost/<project>-<stack>-server:seed`, which a `docker.Tag` moves to each new server image: its command line
holds no image id, so a new image does not seed again (the tag resource, not the seed, changes with the image;
upstream's `resourceDockerTagDelete` and `Read` are no-ops: kreuzwerker/terraform-provider-docker
`internal/provider/resource_docker_tag_funcs.go`). pulumi-command runs `create` once, `update` (or `create`
again, when there is no `update`) on any input change, and `create` again on a replacement, which a change of
`triggers` forces: the seed's only trigger is `seedDataRun`, and a change of its stdin (a rotated
`postgresPassword`) runs `update`, a no-op that says how to seed again.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from ..naming import StackNames
from ..settings import Settings
from ..specs.elastic_setup import SETUP_SCRIPT, setup_input
from ..specs.migrate import SCRIPT, SEED_KEPT, SEED_SCRIPT, database_input
from ..specs.minio_setup import minio_setup_input, minio_setup_script
from ..specs.rotation import ELASTIC_SCRIPT, POSTGRES_SCRIPT, elastic_input, postgres_statements
from .oneshot import InNewContainer, InRunningContainer, OneShot, OneShotArgs


def minio_setup(
    settings: Settings,
    names: StackNames,
    image_id: pulumi.Input[str],
    network_name: pulumi.Input[str],
    minio: pulumi.CustomResource,
) -> OneShotArgs:
    """The bucket and the application's least-privilege user, with `mc` from the MinIO image itself.

    It runs once MinIO is healthy, again when its input changes (root or application password, bucket: stdin and
    script) or the MinIO container is new.
    """
    return OneShotArgs(
        settings=settings,
        names=names,
        where=InNewContainer(image_id, network_name),
        script=minio_setup_script(settings.s3_bucket),
        stdin=minio_setup_input(settings),
        triggers=[minio.id],
        depends_on=[minio],
    )


def elastic_setup(
    settings: Settings,
    names: StackNames,
    image_id: pulumi.Input[str],
    network_name: pulumi.Input[str],
    elasticsearch: pulumi.CustomResource,
) -> OneShotArgs:
    """The security setup that Elastic's own compose file does in its `setup` service, as a one-shot step.

    It runs once Elasticsearch is healthy, again when a password changes (stdin) or the container is new.
    """
    return OneShotArgs(
        settings=settings,
        names=names,
        where=InNewContainer(image_id, network_name),
        script=SETUP_SCRIPT,
        stdin=setup_input(settings),
        triggers=[elasticsearch.id],
        depends_on=[elasticsearch],
    )


def migration(
    settings: Settings,
    names: StackNames,
    server_image_id: pulumi.Input[str],
    network_name: pulumi.Input[str],
    after: list[pulumi.Resource],
) -> OneShotArgs:
    """The migration step; `after` holds the PostgreSQL container (healthy, by its `wait`) and the password step.
    The image id is the trigger, so every new server image migrates once."""
    return OneShotArgs(
        settings=settings,
        names=names,
        where=InNewContainer(server_image_id, network_name),
        script=SCRIPT,
        stdin=database_input(settings),
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
        stdin=database_input(settings),
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


def postgres_password(settings: Settings, names: StackNames, postgres: pulumi.Resource) -> OneShotArgs:
    """Applies `postgresPassword` to the `sentineliq` role of the running database, once it is healthy."""
    return OneShotArgs(
        settings=settings,
        names=names,
        where=InRunningContainer(names.physical("postgres")),
        script=POSTGRES_SCRIPT,
        stdin=postgres_statements(settings.postgres_password),
        depends_on=[postgres],
    )


def elastic_password(settings: Settings, names: StackNames) -> OneShotArgs:
    """Applies `elasticPassword` to the `elastic` user of the running cluster, before its container is replaced."""
    return OneShotArgs(
        settings=settings,
        names=names,
        where=InRunningContainer(names.physical("elasticsearch"), skip_if_absent=True),
        script=ELASTIC_SCRIPT,
        stdin=elastic_input(settings),
        depends_on=[],
    )
