"""Digest pulls and image removal against a real engine and a real registry (Debian's dockerd and
docker-registry, both private to the test, on loopback).

The provider's image create is `findImage` (kreuzwerker/terraform-provider-docker at 5074970c,
`internal/provider/resource_docker_image_funcs.go`): `ImageInspect(name)`, and only when nothing local answers,
`ImagePull(name)` then `ImageInspect(name)` again. Its delete is `ImageRemove(name, Force: force_remove)` unless
`keep_locally`. The docker CLI calls the same engine endpoints with the name as given (`image inspect`, `pull`,
`image rm [--force]`), so `find_image` below is that create, step for step, and the removals are that delete.
What stays a mock-only claim: that pulumi-docker hands `name` to those calls unchanged (it is the Terraform
provider's own code, which cannot run here).
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator

import pytest
from local_servers import docker_engine, registry, tiny_image

from sentinel_infra.docker.images import pinned

# The Accept headers of the provider's registry lookup (`setupHTTPHeadersForRegistryRequests`,
# internal/provider/authentication_helpers.go), behind `get_registry_image(...).sha256_digest`.
MANIFEST_TYPES = (
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
)


@pytest.fixture(scope="module")
def world() -> Iterator[tuple[str | None, str, str]]:
    """(engine host, registry address, a local base image)."""
    with docker_engine() as host, registry() as address:
        yield host, address, tiny_image(host, "sentineliq-test/base:1")


def docker(host: str | None, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    command = ["docker", *(["--host", host] if host else []), *args]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    if check:
        assert result.returncode == 0, f"{' '.join(args)}: {result.stderr}"
    return result


def push_build(host: str | None, base: str, tag: str, build: str) -> str:
    """Build `build` (a file /build in the base image), push it to `tag`, drop it locally; return its digest."""
    container = f"siq-build-{build}"
    docker(host, "run", f"--name={container}", "--network=none", base, "sh", "-c", f"echo {build} > /build")
    docker(host, "commit", container, tag)
    docker(host, "rm", container)
    docker(host, "push", tag)
    (digest,) = json.loads(docker(host, "image", "inspect", "--format", "{{json .RepoDigests}}", tag).stdout)
    docker(host, "image", "rm", "--force", tag)
    return str(digest).split("@", 1)[1]


def registry_digest(address: str, repository: str, tag: str) -> str:
    """What the provider's `getRegistryImage` answers: the manifest's Docker-Content-Digest."""
    url = f"http://{address}/v2/{repository}/manifests/{tag}"
    request = urllib.request.Request(url, method="HEAD", headers={"Accept": ", ".join(MANIFEST_TYPES)})
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.headers["Docker-Content-Digest"])


def image_id(host: str | None, name: str) -> str | None:
    found = docker(host, "image", "inspect", "--format", "{{.Id}}", name, check=False)
    return found.stdout.strip() if found.returncode == 0 else None


def find_image(host: str | None, name: str) -> str:
    """The provider's create: a local image of that name if there is one, else a pull of it."""
    local = image_id(host, name)
    if local is not None:
        return local
    docker(host, "pull", name)
    pulled = image_id(host, name)
    assert pulled is not None
    return pulled


def build_of(host: str | None, image: str) -> str:
    return docker(host, "run", "--rm", "--network=none", image, "cat", "/build").stdout.strip()


def test_a_new_build_of_a_tag_is_only_deployed_when_pulled_by_digest(world: tuple[str | None, str, str]) -> None:
    host, address, base = world
    repository = "sentineliq/app-deploy"
    tag = f"{address}/{repository}:main"
    first = push_build(host, base, tag, "1")
    assert registry_digest(address, repository, "main") == first
    second = push_build(host, base, tag, "2")
    assert second != first
    assert registry_digest(address, repository, "main") == second, "what get_registry_image answers now"
    # The host pulled `main` when it was the first build (a pull by tag records the tag and the digest).
    docker(host, "pull", f"{address}/{repository}@{first}")
    docker(host, "tag", f"{address}/{repository}@{first}", tag)
    assert build_of(host, tag) == "1"

    # By tag (main before this change): the provider finds the old local `main` and never pulls.
    assert build_of(host, find_image(host, tag)) == "1"
    # By digest (images.py): nothing local has that name, so the provider pulls exactly the new build.
    name = pinned(tag, registry_digest(address, repository, "main"))
    assert image_id(host, name) is None
    pulled = find_image(host, name)
    assert build_of(host, pulled) == "2"
    # What the provider's Read stores as repo_digest (the image's only RepoDigest): the name itself.
    digests = json.loads(docker(host, "image", "inspect", "--format", "{{json .RepoDigests}}", name).stdout)
    assert digests == [name]
    # A second `pulumi up` finds it locally: no pull, the same image id.
    assert find_image(host, name) == pulled


def test_removing_a_replaced_build_never_touches_a_running_container(world: tuple[str | None, str, str]) -> None:
    host, address, base = world
    repository = "sentineliq/app-remove"
    tag = f"{address}/{repository}:main"
    old = pinned(tag, push_build(host, base, tag, "old"))
    running = pinned(tag, push_build(host, base, tag, "running"))
    old_id, running_id = find_image(host, old), find_image(host, running)
    container = "siq-remove-user"
    docker(host, "run", "--detach", f"--name={container}", "--network=none", running, "sleep", "600")
    try:
        # force_remove=False: the engine refuses to drop the only name of an image a container uses, and the
        # provider's delete (so `pulumi up`) fails, e.g. when another stack on the host still runs that build.
        refused = docker(host, "image", "rm", running, check=False)
        assert refused.returncode != 0 and "must force" in refused.stderr
        # force_remove=True (images.py): the name goes, the image stays while the container runs.
        docker(host, "image", "rm", "--force", running)
        assert image_id(host, running) is None
        assert image_id(host, running_id) == running_id
        state = docker(host, "inspect", "--format", "{{.State.Running}}", container).stdout.strip()
        assert state == "true"
        # A build nothing runs is deleted, which is what keeps old builds from piling up on the host.
        docker(host, "image", "rm", "--force", old)
        assert image_id(host, old_id) is None
    finally:
        docker(host, "rm", "--force", container, check=False)
    # Once its container is gone, the unnamed image is what `docker image prune` removes.
    docker(host, "image", "prune", "--force")
    assert image_id(host, running_id) is None
