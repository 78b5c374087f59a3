"""The whole stack on a cluster, in the plan's order: each workload after what its `after` names is ready (a
StatefulSet or Deployment) or done (a Job), each backup CronJob after its data service, the Ingress after the
client and the server.

What the cluster does not have, and the renderer leaves out:
- the edge (Traefik): the Ingress controller and cert-manager take its place (ingress.py). A service that talks to
  the edge talks to the edge's upstreams instead (the client's nginx to the `server` Service).
- the steps that run inside a running container (`in_service`: the PostgreSQL and Elasticsearch password
  rotations): Pulumi has no `kubectl exec`; on a cluster a password is changed by hand (README: Kubernetes).
"""

from __future__ import annotations

import pulumi

from ..naming import StackNames
from ..settings import Settings
from ..specs.model import FileUpload, NewImage, NewInstance, OneShotSpec, ServiceSpec, Setting
from ..specs.plan import Plan
from .cluster import Cluster, ClusterArgs
from .images import FACTS
from .ingress import Entry, EntryArgs
from .jobs import BackupArgs, BackupSchedule, Step, StepArgs
from .pods import digest, user
from .policies import Edge, NetworkPolicies, PoliciesArgs
from .workloads import Scaling, Storage, Workload, WorkloadArgs

EDGE = "edge"
PUBLIC = ("client", "server")
"""What the Ingress routes to."""


def talks_to(plan: Plan, spec: ServiceSpec) -> list[str]:
    """A service's traffic edges on the cluster: the edge replaced by its upstreams (other than the service)."""
    targets: list[str] = []
    for target in spec.talks_to:
        upstream = plan.services[EDGE].talks_to if target == EDGE else (target,)
        targets += [t for t in upstream if t != spec.name and t not in targets]
    return targets


def _ports(spec: ServiceSpec) -> tuple[int, ...]:
    """The ports other pods connect to (the internal ones; an operator's console is reached by port-forward)."""
    return tuple(p.container for p in spec.ports if p.exposure != "operator")


def edges(plan: Plan, services: list[str], steps: list[OneShotSpec], backups: list[str]) -> list[Edge]:
    found = [
        Edge(name, target, _ports(plan.services[target]))
        for name in services
        for target in talks_to(plan, plan.services[name])
    ]
    found += [Edge(step.name, target, _ports(plan.services[target])) for step in steps for target in step.talks_to]
    found += [Edge(f"backup-{service}", service, _ports(plan.services[service])) for service in backups]
    return found


def job_name_part(step: OneShotSpec, plan: Plan, settings: Settings) -> str | None:
    """What a step is named after: the server image's tag (migrate), the setting that reruns it (seed-data)."""
    for rerun in step.reruns:
        if isinstance(rerun, NewImage):
            return plan.services[step.service].image.rsplit(":", 1)[-1]
        if isinstance(rerun, Setting):
            return rerun.value
        if isinstance(rerun, NewInstance):
            # A new instance on a cluster is a new pod template: its image and plain environment here (a new
            # secret is a new Secret, which replaces this step's own input Secret where the step reads it).
            service = plan.services[rerun.service]
            plain = {k: v for k, v in service.env.items() if isinstance(v, str)}
            return digest({"image": service.image, "env": plain})[:6]
    del settings
    return None


def build(settings: Settings, names: StackNames, plan: Plan) -> dict[str, pulumi.Input[object]]:
    """Declare every object of the stack on the cluster and return the stack outputs."""
    cluster = Cluster("cluster", ClusterArgs(settings=settings, names=names))
    namespace = cluster.namespace_name
    namespace_name = settings.namespace(names.stack)
    pull = cluster.pull_secret
    services = [name for name in plan.order if name in plan.services and name != EDGE]
    steps = [plan.steps[name] for name in plan.order if name in plan.steps and not plan.steps[name].in_service]
    storage = Storage(
        storage_class=settings.kubernetes.storage_class,
        sizes={
            m.volume: settings.kubernetes.volume_sizes.of(m.volume) for s in services for m in plan.services[s].volumes
        },
        protect=settings.protect_data,
    )
    done: dict[str, pulumi.Resource] = {}

    def after(names_: tuple[str, ...]) -> list[pulumi.Resource]:
        # The edge and the in-service steps are not on the cluster: nothing to wait for.
        return [done[name] for name in names_ if name in done]

    for name in plan.order:
        if name in services:
            spec = plan.services[name]
            replicas = 1 + len(plan.replicas.get(name, ()))
            scaling = Scaling(replicas, settings.server_max_replicas) if name == "server" else None
            done[name] = Workload(
                name,
                WorkloadArgs(
                    spec=spec,
                    facts=FACTS[name],
                    names=names,
                    namespace=namespace,
                    provider=cluster.provider,
                    storage=storage,
                    scaling=scaling,
                    pull_secret=pull if spec.follow_tag else None,
                    depends_on=after(spec.after),
                ),
            )
        elif name in plan.steps and not plan.steps[name].in_service:
            step = plan.steps[name]
            image_spec = plan.services[step.service]
            done[name] = Step(
                name,
                StepArgs(
                    step=name,
                    image=image_spec.image,
                    run_as=user(image_spec, FACTS[step.service]),
                    script=step.script,
                    stdin=step.stdin,
                    names=names,
                    namespace=namespace,
                    provider=cluster.provider,
                    pull_secret=pull if image_spec.follow_tag else None,
                    named_after=job_name_part(step, plan, settings),
                    stdin_reruns=step.on_input_change is None,
                    depends_on=after(step.after),
                ),
            )

    backups = []
    hour, minute = settings.backup.time.split(":")
    for job in plan.backups:
        service = job.name.removeprefix("backup-")
        backups.append(service)
        BackupSchedule(
            job.name,
            BackupArgs(
                service=service,
                image=job.image,
                run_as=user(plan.services[service], FACTS[service]),
                scripts={f.path.rsplit("/", 1)[-1]: _text(f) for f in job.files},
                env={k: v for k, v in job.env.items() if k not in ("BACKUP_TIME", "BACKUP_STATUS_FILE")},
                schedule=f"{int(minute)} {int(hour)} * * *",
                names=names,
                namespace=namespace,
                provider=cluster.provider,
                size=settings.kubernetes.volume_sizes.backups,
                storage_class=settings.kubernetes.storage_class,
                protect=settings.protect_data,
                depends_on=[done[service]],
            ),
        )

    NetworkPolicies(
        "policies",
        PoliciesArgs(
            names=names,
            namespace=namespace,
            provider=cluster.provider,
            edges=edges(plan, services, steps, backups),
            ingress_namespace=settings.kubernetes.ingress_namespace,
            public={service: tuple(p.container for p in plan.services[service].ports) for service in PUBLIC},
            internet=("server",) if settings.sentry_dsn is not None else (),
        ),
    )
    Entry(
        "entry",
        EntryArgs(
            settings=settings,
            names=names,
            namespace=namespace_name,
            provider=cluster.provider,
            depends_on=[cluster.namespace, *(done[service] for service in PUBLIC)],
        ),
    )
    forward = f"kubectl port-forward --namespace {namespace_name}"
    return {
        "platform": "kubernetes",
        "appUrl": settings.app_url,
        "apiUrl": settings.api_url,
        "namespace": namespace,
        "kibana": f"{forward} service/kibana 5601:5601, then http://127.0.0.1:5601",
        "minioConsole": f"{forward} service/minio 9001:9001, then http://127.0.0.1:9001",
        "workloads": {
            name: f"{type(w.workload).__name__.lower()}/{name}" for name, w in done.items() if isinstance(w, Workload)
        },
        "images": {name: plan.services[name].image for name in services},
        "backups": f"CronJobs backup-<service> at {settings.backup.time} UTC, onto claims backup-<service>"
        if backups
        else "disabled",
    }


def _text(upload: FileUpload) -> str:
    content = upload.content
    return content if isinstance(content, str) else content.get_secret_value()
