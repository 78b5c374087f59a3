"""The living architecture: the stack drawn from the program itself, evaluated offline (no engine, no Docker).

`python -m sentinel_infra graph --stack prod` evaluates the program under mocks with the stack file's config (and
placeholder secrets, which shape nothing that is drawn), then renders its services, one-shot steps, volumes and
network as a Mermaid diagram whose arrows are the health-gated start order, and the start-up waves: what starts
concurrently once everything before it is ready. A Kubernetes stack is drawn from its objects the same way: its
Deployments and StatefulSets (and the backups' CronJobs) as services, its Jobs as steps, its claims as volumes,
inside its namespace, with the start order of their registrations (the plan's, as on Docker).
`docs/architecture.md` embeds the prod diagram; a test fails when the committed one no longer matches the code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..naming import LABEL_PREFIX
from ..settings import NAMESPACE, Settings, is_secret
from .evaluate import CONTAINER, Evaluation, Registration, evaluate, unwrap
from .stack_file import StackConfig, placeholder, stack_file_config

VOLUME = "docker:index/volume:Volume"
NETWORK = "docker:index/network:Network"
IMAGE = "docker:index/remoteImage:RemoteImage"
COMMANDS = ("command:local:Command", "command:remote:Command")
WORKLOADS = {
    "kubernetes:apps/v1:StatefulSet": "service",
    "kubernetes:apps/v1:Deployment": "service",
    "kubernetes:batch/v1:CronJob": "service",  # a backup job, a service on Docker too
    "kubernetes:batch/v1:Job": "step",
}
"""The Kubernetes objects that run pods, and the node each is drawn as."""
CLAIM = "kubernetes:core/v1:PersistentVolumeClaim"
KUBERNETES_NAMESPACE = "kubernetes:core/v1:Namespace"
SERVICE_LABEL = "app.kubernetes.io/name"


def placeholder_secrets(config: StackConfig) -> dict[str, str]:
    """Stand-ins for the secrets a stack needs and its file does not hold: they are never drawn."""
    fields = Settings.model_fields.values()
    needed = [f"{NAMESPACE}:{field.alias}" for field in fields if is_secret(field) and field.is_required()]
    if config.get(f"{NAMESPACE}:dockerHost", "").startswith("ssh://"):
        # The host key is no secret, but a stack file that names an ssh:// host may leave it to the deploy.
        needed += [f"{NAMESPACE}:sshPrivateKey", f"{NAMESPACE}:sshHostKey"]
    if f"{NAMESPACE}:registryUsername" in config:
        needed.append(f"{NAMESPACE}:registryToken")
    return {key: placeholder(key) for key in needed if key not in config}


@dataclass(frozen=True)
class Node:
    name: str
    detail: str
    kind: str
    """service, step, volume."""

    @property
    def id(self) -> str:
        """A Mermaid node id (word characters only: a hyphen could be misread as an arrow)."""
        return re.sub(r"\W", "_", self.name)

    @property
    def label(self) -> str:
        return f"{self.name}<br/>{self.detail}" if self.detail else self.name


@dataclass(frozen=True)
class Architecture:
    boundary: str
    """What holds the services: the stack's bridge network, or its namespace."""
    nodes: list[Node]
    starts_after: list[tuple[str, str]]
    """(upstream, downstream) names: downstream starts once upstream is healthy (a container) or done (a step)."""
    mounts: list[tuple[str, str]]
    """(service, volume) names."""

    def waves(self) -> list[list[str]]:
        """Start-up waves: each starts concurrently once every earlier wave is ready."""
        runnable = [n.name for n in self.nodes if n.kind != "volume"]
        upstream = {node: {a for a, b in self.starts_after if b == node} for node in runnable}
        done: set[str] = set()
        waves = []
        while len(done) < len(runnable):
            wave = sorted(n for n in runnable if n not in done and upstream[n] <= done)
            if not wave:
                raise ValueError("the start order has a cycle")
            waves.append(wave)
            done.update(wave)
        return waves


def _edges(runnable: dict[str, tuple[Registration, Node]]) -> list[tuple[str, str]]:
    """(upstream, downstream): each registration's dependencies among the drawn ones."""
    return sorted(
        (runnable[urn][1].name, node.name)
        for resource, node in runnable.values()
        for urn in resource.dependencies
        if urn in runnable
    )


def _kubernetes_architecture(evaluation: Evaluation) -> Architecture:
    runnable: dict[str, tuple[Registration, Node]] = {}
    mounts: set[tuple[str, str]] = set()
    for resource in evaluation.resources:
        kind = WORKLOADS.get(resource.type)
        if kind is None:
            continue
        props = unwrap(resource.inputs)
        metadata, spec = props["metadata"], props["spec"]
        name = (metadata.get("labels") or {}).get(SERVICE_LABEL) or metadata["name"]
        job = spec["jobTemplate"]["spec"] if resource.type.endswith(":CronJob") else spec
        pod = job["template"]["spec"]
        detail = pod["containers"][0]["image"] if kind == "service" else "(one-shot)"
        runnable[resource.urn] = (resource, Node(name, detail, kind))
        # A StatefulSet's pod N gets the claim <template>-<statefulset>-N: the first one is drawn. A claim may be
        # named as the CronJob that mounts it: drawn as `claim <name>`.
        templates = spec.get("volumeClaimTemplates") or []
        mounts |= {(name, f"claim {t['metadata']['name']}-{metadata['name']}-0") for t in templates}
        mounts |= {
            (name, f"claim {volume['persistentVolumeClaim']['claimName']}")
            for volume in pod.get("volumes") or []
            if "persistentVolumeClaim" in volume
        }
    volumes = sorted({volume for _, volume in mounts})
    nodes = [node for _, node in runnable.values()] + [Node(volume, "", "volume") for volume in volumes]
    [namespace] = evaluation.of_type(KUBERNETES_NAMESPACE)
    boundary = f"namespace {namespace.plain('metadata')['name']}"
    return Architecture(boundary, sorted(nodes, key=lambda n: n.name), _edges(runnable), sorted(mounts))


def architecture(evaluation: Evaluation) -> Architecture:
    """The drawable parts of an evaluation: services, steps, volumes and their start-order edges."""
    if evaluation.of_type(KUBERNETES_NAMESPACE):
        return _kubernetes_architecture(evaluation)
    images = {r.urn: str(r.inputs["name"]) for r in evaluation.of_type(IMAGE)}
    volumes = {str(r.plain("name")): r for r in evaluation.of_type(VOLUME)}
    runnable: dict[str, tuple[Registration, Node]] = {}
    for resource in evaluation.resources:
        if resource.type == CONTAINER:
            service = resource.name.removesuffix("-container")  # a replica is its own node: `server-2`
            labels = {item["label"]: item["value"] for item in resource.plain("labels") or []}
            # A digest-pinned image is drawn with the tag it was resolved from (its label): the tag is the design.
            image = labels.get(f"{LABEL_PREFIX}.image") or next(
                images[urn] for urn in resource.property_dependencies["image"] if urn in images
            )
            runnable[resource.urn] = (resource, Node(service, image, "service"))
        elif resource.type in COMMANDS:
            runnable[resource.urn] = (resource, Node(resource.name.removesuffix("-command"), "(one-shot)", "step"))
    nodes = [node for _, node in runnable.values()]
    nodes += [Node(name, "", "volume") for name in volumes]
    starts_after = _edges(runnable)
    mounts = sorted(
        (node.name, str(mount["volumeName"]))
        for resource, node in runnable.values()
        if resource.type == CONTAINER
        for mount in resource.plain("volumes") or []
        if mount.get("volumeName") in volumes
    )
    [network] = evaluation.of_type(NETWORK)
    boundary = f"bridge network {network.plain('name')}"
    return Architecture(boundary, sorted(nodes, key=lambda n: n.name), starts_after, mounts)


def mermaid(arch: Architecture) -> str:
    lines = ["flowchart LR", f'  subgraph network["{arch.boundary}"]']
    for node in arch.nodes:
        if node.kind == "service":
            lines.append(f'    {node.id}["{node.label}"]')
        elif node.kind == "step":
            lines.append(f'    {node.id}[["{node.label}"]]')
    lines.append("  end")
    lines += [f'  {node.id}[("{node.label}")]' for node in arch.nodes if node.kind == "volume"]
    by_name = {node.name: node for node in arch.nodes}
    for upstream, downstream in arch.starts_after:
        gate = "healthy" if by_name[upstream].kind == "service" else "done"
        lines.append(f"  {by_name[upstream].id} -->|{gate}| {by_name[downstream].id}")
    lines += [f"  {by_name[service].id} -.- {by_name[volume].id}" for service, volume in arch.mounts]
    return "\n".join(lines)


def render(arch: Architecture, stack: str) -> str:
    """The Markdown section docs/architecture.md embeds."""
    waves = "\n".join(
        f"{number}. {', '.join(f'`{name}`' for name in wave)}" for number, wave in enumerate(arch.waves(), start=1)
    )
    return (
        f"Stack `{stack}`: solid arrows are the start order (the next starts once the previous is healthy or done),\n"
        "dotted lines the named volumes each service mounts.\n\n"
        f"```mermaid\n{mermaid(arch)}\n```\n\n"
        "Start-up waves (everything in a wave starts concurrently):\n\n"
        f"{waves}\n"
    )


def graph(root: Path, stack: str) -> str:
    """Evaluate the stack file `Pulumi.<stack>.yaml` offline and render its architecture."""
    config = stack_file_config(root / f"Pulumi.{stack}.yaml")
    secrets = placeholder_secrets(config)
    evaluation = evaluate({**config, **secrets}, config.secret_keys | set(secrets), stack)
    return render(architecture(evaluation), stack)
