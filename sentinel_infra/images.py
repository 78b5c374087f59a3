"""Image pulls: one `RemoteImage` per service, so containers run a pulled image id that never drifts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from .service import ServiceSpec


@dataclass(frozen=True)
class ImageSetArgs:
    specs: Sequence[ServiceSpec]
    provider: docker.Provider


class ImageSet(pulumi.ComponentResource):
    """Pulls every service's image; a tracked tag is re-pulled when its registry digest changes."""

    images: dict[str, docker.RemoteImage]

    def __init__(self, name: str, args: ImageSetArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sentineliq:images:ImageSet", name, None, opts)
        on_docker = pulumi.ResourceOptions(parent=self, provider=args.provider)
        self.images = {}
        for spec in args.specs:
            # RemoteImage never re-pulls a tag by itself; the registry digest as a pull trigger makes it follow a
            # mutable tag such as `main`, and the new image id then replaces the container.
            digest = (
                [
                    docker.get_registry_image_output(
                        name=spec.image, opts=pulumi.InvokeOutputOptions(parent=self, provider=args.provider)
                    ).sha256_digest
                ]
                if spec.track_registry_digest
                else None
            )
            self.images[spec.name] = docker.RemoteImage(
                f"{name}-{spec.name}",
                docker.RemoteImageArgs(name=spec.image, keep_locally=True, pull_triggers=digest),
                opts=on_docker,
            )
        self.register_outputs({"imageIds": {k: image.image_id for k, image in self.images.items()}})

    def image_id(self, service: str) -> pulumi.Output[str]:
        return self.images[service].image_id

    def digest(self, service: str) -> pulumi.Output[str]:
        return self.images[service].repo_digest
