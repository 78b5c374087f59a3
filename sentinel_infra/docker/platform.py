"""The ground every service stands on: the Docker provider, the stack network and the named volumes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from ..naming import StackNames
from ..settings import NAMESPACE, Settings
from .ssh import provider_ssh_options

LOCAL_ENGINE_ENVIRONMENT = {"DOCKER_CONTEXT": "default"}
"""What makes a local `docker` command talk to the provider's engine, on any machine.

The Docker provider talks to its `host` (`dockerHost`), else `DOCKER_HOST`, else `unix:///var/run/docker.sock`
(kreuzwerker/terraform-provider-docker at 5074970c, `internal/provider/provider.go`, `host`'s DefaultFunc), and
never reads the docker CLI's current context (`docker context use`, kept in the CLI's config.json). Plain
`docker` does, unless `DOCKER_HOST` is set; `DOCKER_CONTEXT=default` makes it resolve as the provider does:
`DOCKER_HOST` when set, else the default socket (docker/cli `resolveContextName`). The value is the same on
every machine, so it can be a command's input without re-running the command elsewhere."""


def check_engine_environment(environ: Mapping[str, str]) -> None:
    """Refuse a `DOCKER_CONTEXT` in the environment of `pulumi`.

    The provider reads it (`context`'s DefaultFunc) and then deploys to that context's engine, even over an
    explicit `host` ("Overrides the `host` if set"), while the one-shot commands and `status` follow
    `dockerHost`: the stack would be split across two engines.
    """
    if environ.get("DOCKER_CONTEXT"):
        raise pulumi.RunError(
            "DOCKER_CONTEXT is set: the Docker provider would deploy to that docker CLI context's engine instead "
            f"of {NAMESPACE}:dockerHost (or DOCKER_HOST, or the local socket).\n"
            f"      fix: unset DOCKER_CONTEXT; to deploy to another engine: pulumi config set {NAMESPACE}:dockerHost "
            "unix:///path/to/docker.sock (or ssh://user@host)"
        )


def _registry_auth(settings: Settings) -> list[docker.ProviderRegistryAuthArgs] | None:
    """Pull credentials for the application's registry, when it is private."""
    if settings.registry_username is None or settings.registry_token is None:
        return None
    return [
        docker.ProviderRegistryAuthArgs(
            address=settings.image_registry.split("/", 1)[0],
            username=settings.registry_username,
            password=pulumi.Output.secret(settings.registry_token.get_secret_value()),
        )
    ]


def _ssh_options(settings: Settings) -> list[str] | None:
    """The provider's own `ssh` checks `sshHostKey` strictly, on the port the one-shot commands use."""
    ssh = settings.ssh
    if ssh is None:
        return None
    if settings.ssh_host_key is None:  # the settings refuse an ssh:// dockerHost without it
        raise ValueError("an ssh:// dockerHost needs sshHostKey")
    return provider_ssh_options(settings.ssh_host_key, ssh.port)


@dataclass(frozen=True)
class DockerPlatformArgs:
    settings: Settings
    names: StackNames
    volumes: Sequence[str]
    """The data volumes the specs mount (`postgres-data`, ...): everything the stack must never lose lives on one
    of them (`edge-data`: the ACME account and certificates; losing it re-issues every certificate and can hit the
    CA's rate limits)."""


class DockerPlatform(pulumi.ComponentResource):
    """The Docker provider every resource uses explicitly, one bridge network and the specs' data volumes.

    Its type token stays `sentineliq:platform:Platform` (the URNs of the protected volumes under it, which the
    README's runbook cites); the class is named for its target, since `sentineliq:platform` is now a config key.
    """

    provider: docker.Provider
    network: docker.Network
    volumes: dict[str, docker.Volume]

    def __init__(self, name: str, args: DockerPlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sentineliq:platform:Platform", name, None, opts)
        settings, names = args.settings, args.names
        self.provider = docker.Provider(
            f"{name}-docker",
            docker.ProviderArgs(
                host=settings.docker_host,
                ssh_opts=_ssh_options(settings),
                registry_auth=_registry_auth(settings),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        on_docker = pulumi.ResourceOptions(parent=self, provider=self.provider)
        self.network = docker.Network(
            f"{name}-network",
            docker.NetworkArgs(
                name=names.physical("network"),
                driver="bridge",
                labels=[docker.NetworkLabelArgs(label=k, value=v) for k, v in names.labels().items()],
            ),
            opts=on_docker,
        )
        # A volume delete is a forced remove: with protectData the engine refuses to delete them, and even a
        # removal from the program only drops them from the state.
        # Labels are ignored after creation. Docker's volume create returns an existing volume (an adopted
        # `volumeNames.*`, or one left on the host) with its own labels, the provider's Read stores those, and
        # labels are ForceNew: without this, every later `pulumi up` would replace the data volume (a protected
        # one fails the run). Registering no labels would not help: labels are not Computed upstream, so a
        # labelled existing volume (compose's) would differ from an empty set just the same. Ignoring them on
        # every volume also means a label change never deletes data (Docker cannot relabel a volume).
        keep = pulumi.ResourceOptions(
            protect=settings.protect_data, retain_on_delete=settings.protect_data, ignore_changes=["labels"]
        )
        self.volumes = {
            volume: docker.Volume(
                f"{name}-{volume}",
                docker.VolumeArgs(
                    name=settings.volume_names.of(volume) or names.physical(volume),
                    labels=[docker.VolumeLabelArgs(label=k, value=v) for k, v in names.labels().items()],
                ),
                opts=pulumi.ResourceOptions.merge(on_docker, keep),
            )
            for volume in args.volumes
        }
        self.register_outputs(
            {
                "networkName": self.network.name,
                "volumeNames": {key: volume.name for key, volume in self.volumes.items()},
            }
        )
