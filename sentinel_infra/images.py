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
    """Pulls each distinct image once; a tracked tag is re-pulled when its registry digest changes.

    An image is named after the first service that runs it (`images-postgres`); services that share it (the
    backup jobs) use the same pull.
    """

    images: dict[str, docker.RemoteImage]
    """By service name; services that share an image share the resource."""

    def __init__(self, name: str, args: ImageSetArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sentineliq:images:ImageSet", name, None, opts)
        on_docker = pulumi.ResourceOptions(parent=self, provider=args.provider)
        self.images = {}
        pulled: dict[str, docker.RemoteImage] = {}
        for spec in args.specs:
            if spec.image in pulled:
                self.images[spec.name] = pulled[spec.image]
                continue
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
            self.images[spec.name] = pulled[spec.image] = docker.RemoteImage(
                f"{name}-{spec.name}",
                docker.RemoteImageArgs(name=spec.image, keep_locally=True, pull_triggers=digest),
                opts=on_docker,
            )
        self.register_outputs({"imageIds": {ref: image.image_id for ref, image in pulled.items()}})

    def image_id(self, service: str) -> pulumi.Output[str]:
        return self.images[service].image_id

    def digest(self, service: str) -> pulumi.Output[str]:
        return self.images[service].repo_digest
