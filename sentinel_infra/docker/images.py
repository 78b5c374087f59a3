"""Image pulls: one `RemoteImage` per image, so containers run a pulled image id that never drifts.

A moving tag (`main`) is pulled by its registry digest, never by its name. The provider's create (`findImage` in
kreuzwerker/terraform-provider-docker, `internal/provider/resource_docker_image_funcs.go`) inspects the name
locally and returns any local image of that name *before* it pulls: a RemoteImage named `saas-server:main` that is
replaced because the tag moved finds the old local `:main`, keeps the old image id, and the deploy reports success
with the old build (pulumi/pulumi-docker#342, kreuzwerker/terraform-provider-docker#172). A name
`repo@sha256:<digest>` of a build the host does not have finds nothing locally, so the provider pulls exactly
that build (`ImagePull` hands the digest to the engine as the reference to fetch), and a new build is a new name:
the RemoteImage is replaced (`name` is ForceNew) and its new image id replaces the containers and re-runs the
migration. The tag stays visible: in the `images` output and in the containers' `io.sentineliq.image` label.

Old builds do not pile up on the host: a digest-pinned image is removed when its RemoteImage is replaced or
destroyed (`keep_locally=False`) with `force_remove=True`, which makes the engine drop the `repo@sha256:…`
reference and delete the image only if no running container uses it. The provider's delete (`removeImage`) calls
`ImageRemove(name, Force: force_remove)`; without force the engine refuses to remove the only reference of an
image that any container uses ("conflict: unable to remove repository reference … (must force)"), which would
fail `pulumi up` whenever another stack on the host still runs the previous build. With force, an image still
in use stays, unnamed, until `docker image prune` (tests/test_images_engine.py shows both on a real engine).
Pinned third-party images (`postgres:16-alpine`, …) keep `keep_locally=True`: their tag only changes with the
program, and removing a tag another stack on the host also runs would make its next refresh pull the tag again.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from ..specs.model import ServiceSpec

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def repository(reference: str) -> str:
    """`ghcr.io/acme/app:main` -> `ghcr.io/acme/app` (a registry's `host:port` is not a tag)."""
    reference = reference.split("@", 1)[0]
    head, slash, last = reference.rpartition("/")
    return f"{head}{slash}{last.split(':', 1)[0]}"


def pinned(reference: str, digest: str) -> str:
    """The by-digest name of a tagged reference: `ghcr.io/acme/app@sha256:…`."""
    if not DIGEST.fullmatch(digest):
        raise ValueError(f"the registry answered {digest!r} for {reference}, not a sha256 digest")
    return f"{repository(reference)}@{digest}"


@dataclass(frozen=True)
class ImageSetArgs:
    specs: Sequence[ServiceSpec]
    provider: docker.Provider


class ImageSet(pulumi.ComponentResource):
    """Pulls each distinct image once: by registry digest for a tracked tag, by name for a pinned one.

    An image is named after the first service that runs it (`images-postgres`); services that share it (the
    backup jobs) use the same pull.
    """

    images: dict[str, docker.RemoteImage]
    """By service name; services that share an image share the resource."""

    def __init__(self, name: str, args: ImageSetArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("sentineliq:images:ImageSet", name, None, opts)
        on_docker = pulumi.ResourceOptions(parent=self, provider=args.provider)
        self.images = {}
        self.references: dict[str, str] = {}
        pulled: dict[str, docker.RemoteImage] = {}
        for spec in args.specs:
            self.references[spec.name] = spec.image
            if spec.image in pulled:
                self.images[spec.name] = pulled[spec.image]
                continue
            if spec.follow_tag:
                digest = docker.get_registry_image_output(
                    name=spec.image, opts=pulumi.InvokeOutputOptions(parent=self, provider=args.provider)
                ).sha256_digest
                image_args = docker.RemoteImageArgs(
                    name=digest.apply(functools.partial(pinned, spec.image)),
                    keep_locally=False,
                    force_remove=True,
                )
            else:
                image_args = docker.RemoteImageArgs(name=spec.image, keep_locally=True)
            self.images[spec.name] = pulled[spec.image] = docker.RemoteImage(
                f"{name}-{spec.name}", image_args, opts=on_docker
            )
        self.register_outputs({"imageIds": {ref: image.image_id for ref, image in pulled.items()}})

    def image_id(self, service: str) -> pulumi.Output[str]:
        return self.images[service].image_id

    def digest(self, service: str) -> pulumi.Output[str]:
        """What the service runs, `repo@sha256:…` (the provider reads it back from the image's RepoDigests)."""
        return self.images[service].repo_digest

    def reference(self, service: str) -> str:
        """The image as configured, with its tag: `ghcr.io/killsearch/saas-server:main`."""
        return self.references[service]
