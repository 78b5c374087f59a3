"""What the Kubernetes renderer must know about each image that the neutral specs do not (yet) say.

Docker starts the data images as root and lets their entrypoints drop privileges (the specs' `cap_add`); the Pod
Security Standard "restricted" forbids root and every added capability but NET_BIND_SERVICE, so on a cluster each
container starts directly as its image's own unprivileged user (the spec's `run_as`, or `uid`/`gid` here for the
images whose spec names none), on a volume whose group is that user's (`fsGroup`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Probe = tuple[Literal["exec"], tuple[str, ...]] | tuple[Literal["tcp"], int]
"""A liveness check: a command in the container, or a TCP connection to one of its ports."""


@dataclass(frozen=True)
class ImageFacts:
    read_only_root: bool
    """Whether the image runs with a read-only root filesystem, given `writable` as emptyDirs."""
    uid: int | None = None
    """The image's own unprivileged user (runAsUser), where the spec's `run_as` names none."""
    gid: int | None = None
    """Its group: runAsGroup and fsGroup (volumes are made writable for it)."""
    writable: tuple[str, ...] = ()
    """Paths the image writes outside its volumes: each an emptyDir (the spec's `tmpfs` are added)."""
    liveness: Probe | None = None
    """A check that fails only when the process itself is stuck (never because a dependency is down), or None:
    a liveness probe restarts the container, which must not happen to a database under load or to a service
    whose health check follows Elasticsearch's."""
    env: dict[str, str] = field(default_factory=dict)
    """Environment the image needs on a cluster only (it overrides the spec's)."""
    drop_env: tuple[str, ...] = ()
    """The spec's variables that only mean something on Docker."""


FACTS: dict[str, ImageFacts] = {
    # postgres:16-alpine: `adduser -u 70 ... postgres` (docker-library/postgres 16/alpine Dockerfile). Its entrypoint
    # skips the chown when not root. PGDATA one level below the mount: a fresh volume's root may hold lost+found,
    # which initdb refuses (the image's documentation on PGDATA).
    "postgres": ImageFacts(
        read_only_root=True,
        env={"PGDATA": "/var/lib/postgresql/data/pgdata"},
    ),
    # redis:7-alpine: `addgroup -S -g 1000 redis; adduser -S -G redis -u 999 redis` (docker-library/redis). Its
    # configuration is mounted, not uploaded, so the root can be read-only; it writes only /data.
    "redis": ImageFacts(read_only_root=True),
    # minio/minio has no user of its own and runs as any uid on a volume it can write; HOME (and so mc's config,
    # which `mc ready local` writes, and minio's certs folder) on an emptyDir.
    "minio": ImageFacts(
        uid=1000,
        gid=1000,
        read_only_root=True,
        writable=("/tmp",),  # noqa: S108 - an emptyDir inside the pod
        env={"HOME": "/tmp", "MC_CONFIG_DIR": "/tmp/.mc"},  # noqa: S108
    ),
    # The Elastic images: uid 1000 (`useradd --uid 1000 --gid 1000 -G 0`, elastic/dockerfiles). They write their
    # keystore, logs and data directories inside the image at start: not read-only. The cluster cannot be assumed
    # to have vm.max_map_count raised (that needs a privileged init container, which "restricted" forbids).
    "elasticsearch": ImageFacts(
        read_only_root=False,
        env={"node.store.allow_mmap": "false"},
    ),
    "logstash": ImageFacts(
        read_only_root=False,
        liveness=("exec", ("curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:9600/")),
    ),
    # Kibana answers 503 while Elasticsearch is away: alive means it answers HTTP at all (no -f).
    "kibana": ImageFacts(
        read_only_root=False,
        liveness=("exec", ("curl", "-sS", "-o", "/dev/null", "http://127.0.0.1:5601/api/status")),
    ),
    # The Wasp server image is Node's (`node` user, uid 1000, in the official node images); it writes nothing but
    # temporary files. Its /health may follow the database: alive is accepting connections.
    "server": ImageFacts(
        uid=1000,
        gid=1000,
        read_only_root=True,
        writable=("/tmp",),  # noqa: S108
        liveness=("tcp", 3001),
    ),
    # nginx:alpine's `nginx` user is uid 101 (nginxinc/docker-nginx). Not read-only: its entrypoint may render
    # /etc/nginx/templates into /etc/nginx/conf.d. Its cache and pid file need writable folders as non-root. It
    # proxies API calls to `server` (the seed's client -> server:3001).
    "client": ImageFacts(
        uid=101,
        gid=101,
        read_only_root=False,
        writable=("/var/cache/nginx", "/var/run", "/tmp"),  # noqa: S108
        liveness=("exec", ("wget", "-q", "-O", "/dev/null", "http://127.0.0.1:3000/")),
        # On Docker, nginx reaches the API through the edge (`edge:3001`); on a cluster the `server` Service
        # balances over the ready pods itself.
        env={"REACT_APP_API_BASE_URL": "http://server:3001"},
        drop_env=("SENTINELIQ_EDGE_CONFIG",),
    ),
}
