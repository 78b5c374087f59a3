"""The pack's Kubernetes rules: the Pod Security Standard "restricted" for every Pod template, no service-account
token, no secret value in a Pod spec, namespaces that enforce "restricted", and a default-deny NetworkPolicy.

pulumi-kubernetes registers an object as the API has it (`apiVersion`, `kind`, `metadata`, `spec`, the API's own
camelCase names), so these checks read a `kubernetes:*` resource's props and a rendered manifest alike (the tests
run them on both). The Pod Security Standard checks follow the admission controller's own code,
kubernetes/pod-security-admission `policy/check_*.go` (read at 8f84a87): a container-level setting overrides the
pod's, every container counts (init and ephemeral ones too), and an unset `allowPrivilegeEscalation` is a
violation. Where the pack is stricter than "restricted" it says so: seccomp must be `RuntimeDefault` (a
`Localhost` profile is a file on the node the pack cannot read) and a Pod sets no sysctl at all.

The resource rules use the same `Rule` machinery as the Docker rules (total checks, an exception reported as a
violation, unknown values left to the framework); the two stack rules see every resource at once.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .rules import Check, Rule, StackResource, StackRule, Subject
from .values import fields, flag, integer, is_set, items, present, text

PREFIX = "kubernetes:"
POD = "kubernetes:core/v1:Pod"
TEMPLATE = ("spec", "template", "spec")
POD_SPECS: dict[str, tuple[str, ...]] = {
    POD: ("spec",),
    "kubernetes:core/v1:ReplicationController": TEMPLATE,
    "kubernetes:apps/v1:Deployment": TEMPLATE,
    "kubernetes:apps/v1:StatefulSet": TEMPLATE,
    "kubernetes:apps/v1:DaemonSet": TEMPLATE,
    "kubernetes:apps/v1:ReplicaSet": TEMPLATE,
    "kubernetes:batch/v1:Job": TEMPLATE,
    "kubernetes:batch/v1:CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}
"""Every kind that holds a Pod template, and the path to its Pod spec."""
NAMESPACE = "kubernetes:core/v1:Namespace"
NETWORK_POLICY = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
SECRET = "kubernetes:core/v1:Secret"  # noqa: S105 - a type token
PSA_ENFORCE = "pod-security.kubernetes.io/enforce"

CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")
RESTRICTED_VOLUMES = (
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
)
"""The volume types "restricted" allows (check_restrictedVolumes.go): never hostPath, nor a network volume."""
SELINUX_TYPES = ("", "container_t", "container_init_t", "container_kvm_t", "container_engine_t")
"""The SELinux types "baseline" allows (check_seLinuxOptions.go, 1.31)."""


def resource_type(manifest: Mapping[str, Any]) -> str:
    """The pulumi-kubernetes type token of a manifest: `apps/v1` `Deployment` is `kubernetes:apps/v1:Deployment`."""
    api_version = text(manifest.get("apiVersion"))
    return f"{PREFIX}{api_version if '/' in api_version else 'core/' + api_version}:{text(manifest.get('kind'))}"


def pod_spec(resource: str, props: Mapping[str, Any]) -> Mapping[str, Any]:
    spec: Mapping[str, Any] = props
    for key in POD_SPECS.get(resource, ()):
        spec = fields(spec.get(key))
    return spec


def pod_metadata(resource: str, props: Mapping[str, Any]) -> Mapping[str, Any]:
    """The Pod's own metadata: the template's (or a Pod's), where AppArmor's annotations live."""
    owner: Mapping[str, Any] = props
    for key in POD_SPECS.get(resource, ("spec",))[:-1]:
        owner = fields(owner.get(key))
    return fields(owner.get("metadata"))


def containers(spec: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every container of a Pod spec (init and ephemeral ones too), with its name for messages."""
    for key in CONTAINER_LISTS:
        for index, container in enumerate(items(spec.get(key))):
            name = text(fields(container).get("name"))[:63] or f"{key}[{index}]"
            yield name, fields(container)


def _context(owner: Mapping[str, Any]) -> Mapping[str, Any]:
    return fields(owner.get("securityContext"))


def _pods(check: Check) -> dict[str, Check]:
    return dict.fromkeys(POD_SPECS, check)


def _spec(s: Subject) -> Mapping[str, Any]:
    return pod_spec(s.resource_type, s.props)


def _inherited(s: Subject, key: str) -> Iterator[tuple[str, Any]]:
    """Each container's effective `securityContext.<key>`: its own, else the pod's (as the kubelet applies it)."""
    spec = _spec(s)
    pod = _context(spec).get(key)
    for name, container in containers(spec):
        own = _context(container).get(key)
        yield name, pod if own is None else own


# --- the Pod Security Standard -----------------------------------------------------------------------------------


def _run_as_non_root(s: Subject) -> Iterator[str]:
    spec = _spec(s)
    pod = _context(spec).get("runAsNonRoot")
    if pod is not None and flag(pod) is not True:
        yield "the pod sets runAsNonRoot false. Fix: securityContext.runAsNonRoot true (with the image's uid)"
    for name, value in _inherited(s, "runAsNonRoot"):
        if flag(value) is not True:
            yield f"container {name} may run as root. Fix: securityContext.runAsNonRoot true (with the image's uid)"
    if integer(_context(spec).get("runAsUser")) == 0:
        yield "the pod sets runAsUser 0. Fix: the image's own non-zero uid"
    for name, container in containers(spec):
        if integer(_context(container).get("runAsUser")) == 0:
            yield f"container {name} sets runAsUser 0. Fix: the image's own non-zero uid"


def _no_privilege_escalation(s: Subject) -> Iterator[str]:
    for name, container in containers(_spec(s)):
        if flag(_context(container).get("allowPrivilegeEscalation")) is not False:
            yield f"container {name} may gain privileges. Fix: securityContext.allowPrivilegeEscalation false"


def _drop_capabilities(s: Subject) -> Iterator[str]:
    for name, container in containers(_spec(s)):
        capabilities = fields(_context(container).get("capabilities"))
        if "ALL" not in (text(drop) for drop in items(capabilities.get("drop"))):
            yield f"container {name} keeps the runtime's default capabilities. Fix: capabilities.drop [ALL]"
        adds = capabilities.get("add")
        if any(text(add) != "NET_BIND_SERVICE" for add in items(adds)) or (present(adds) and not items(adds)):
            yield f"container {name} adds capabilities. Fix: add none (restricted allows NET_BIND_SERVICE alone)"


def _seccomp(s: Subject) -> Iterator[str]:
    for name, value in _inherited(s, "seccompProfile"):
        if text(fields(value).get("type")) != "RuntimeDefault":
            yield f"container {name} runs without the runtime's seccomp profile. Fix: seccompProfile RuntimeDefault"


def _no_privileged(s: Subject) -> Iterator[str]:
    spec = _spec(s)
    if is_set(fields(_context(spec).get("windowsOptions")).get("hostProcess")):
        yield "the pod asks for a Windows host process. Fix: remove windowsOptions.hostProcess"
    for name, container in containers(spec):
        context = _context(container)
        if is_set(context.get("privileged")):
            yield f"container {name} runs privileged. Fix: remove securityContext.privileged"
        if text(context.get("procMount")) not in ("", "Default"):
            yield f"container {name} unmasks /proc (procMount). Fix: remove securityContext.procMount"
        if is_set(fields(context.get("windowsOptions")).get("hostProcess")):
            yield f"container {name} asks for a Windows host process. Fix: remove windowsOptions.hostProcess"


def _no_host_namespaces(s: Subject) -> Iterator[str]:
    spec = _spec(s)
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if is_set(spec.get(key)):
            yield f"shares the node's namespace ({key}). Fix: remove {key}"
    for name, container in containers(spec):
        for port in items(container.get("ports")):
            if fields(port).get("hostPort") not in (None, 0):
                yield f"container {name} binds a node port (hostPort). Fix: a Service; remove hostPort"
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            handler = fields(container.get(probe))
            if any(text(fields(handler.get(k)).get("host")) for k in ("httpGet", "tcpSocket")):
                yield f"container {name}'s {probe} targets another host. Fix: remove its host (the pod's own IP)"


def _volume_types(s: Subject) -> Iterator[str]:
    for index, volume in enumerate(items(_spec(s).get("volumes"))):
        kinds = sorted(key for key in fields(volume) if key != "name")
        name = text(fields(volume).get("name"))[:63] or f"volumes[{index}]"
        if len(kinds) != 1 or kinds[0] not in RESTRICTED_VOLUMES:
            shown = "hostPath" if "hostPath" in kinds else "a type restricted does not allow"
            yield f"volume {name} is {shown}. Fix: a PersistentVolumeClaim, an emptyDir, a ConfigMap or a Secret"


def _security_profiles(s: Subject) -> Iterator[str]:
    spec = _spec(s)
    owners = [("the pod", _context(spec)), *((f"container {n}", _context(c)) for n, c in containers(spec))]
    for owner, context in owners:
        if text(fields(context.get("appArmorProfile")).get("type")) not in ("", "RuntimeDefault", "Localhost"):
            yield f"{owner} disables AppArmor. Fix: remove appArmorProfile (RuntimeDefault)"
        selinux = fields(context.get("seLinuxOptions"))
        if text(selinux.get("type")) not in SELINUX_TYPES or selinux.get("user") or selinux.get("role"):
            yield f"{owner} sets an SELinux type, user or role. Fix: at most a level in seLinuxOptions"
    if present(_context(spec).get("sysctls")):
        yield "the pod sets sysctls. Fix: remove them (a node's sysctls are the node's business)"
    for key, value in fields(fields(pod_metadata(s.resource_type, s.props)).get("annotations")).items():
        if text(key).startswith("container.apparmor.security.beta.kubernetes.io/") and text(value) == "unconfined":
            yield "an annotation disables AppArmor. Fix: remove it"


def _service_account_token(s: Subject) -> Iterator[str]:
    if flag(_spec(s).get("automountServiceAccountToken")) is not False:
        yield (
            "mounts a service-account token the app never uses (an API credential for whoever breaks in). "
            "Fix: automountServiceAccountToken false"
        )


# --- secrets in the Pod spec -------------------------------------------------------------------------------------

SECRET_WORDS = ("PASSWORD", "PASSWD", "PWD", "SECRET", "TOKEN", "AUTH", "DSN", "CREDENTIAL", "CREDENTIALS", "APIKEY")
"""Words of an environment variable's name that say its value is a secret (`REDISCLI_AUTH`, `JWT_SECRET`)."""
URL_PASSWORD = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/@\s:]*:([^/@\s]+)@")
REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def secret_name(name: str) -> bool:
    """Whether a variable's name says it holds a secret: a secret word, or a name ending in KEY
    (`KIBANA_ENCRYPTION_KEY`, `SSH_PRIVATE_KEY`; `S3_ACCESS_KEY_ID` is an identifier, not a key)."""
    words = re.split(r"[^A-Za-z0-9]+", name.upper())
    return any(word in SECRET_WORDS for word in words) or words[-1] in ("KEY", "KEYS")


def _from_secret(variable: Mapping[str, Any]) -> bool:
    return present(fields(fields(variable.get("valueFrom")).get("secretKeyRef")))


def _url_passwords(value: str, secret_refs: set[str]) -> Iterator[str]:
    """The passwords written into URLs of a value, but `$(VAR)` of a variable taken from a Secret: Kubernetes
    expands that reference when it starts the container, so the Pod spec itself holds no secret."""
    for match in URL_PASSWORD.finditer(value):
        reference = REFERENCE.fullmatch(match.group(1))
        if reference is None or reference.group(1) not in secret_refs:
            yield match.group(1)


def _secret_env(s: Subject) -> Iterator[str]:
    for name, container in containers(_spec(s)):
        secret_refs: set[str] = set()
        for variable in map(fields, items(container.get("env"))):
            key = text(variable.get("name"))[:80]
            if _from_secret(variable):
                secret_refs.add(key)
                continue
            literal = variable.get("value") is not None and text(variable.get("value")) != ""
            from_config = present(fields(variable.get("valueFrom")).get("configMapKeyRef"))
            if secret_name(key) and (literal or from_config):
                where = "literally" if literal else "from a ConfigMap"
                yield f"container {name} sets {key} {where}. Fix: valueFrom.secretKeyRef of a Secret"
            elif any(_url_passwords(text(variable.get("value")), secret_refs)):
                yield (
                    f"container {name} sets {key} to a URL with a password. Fix: the password from a "
                    "secretKeyRef variable, written $(VARIABLE) in the URL"
                )
        for key in ("command", "args"):
            if any(any(_url_passwords(text(word), secret_refs)) for word in items(container.get(key))):
                yield f"container {name} has a URL with a password in its {key}. Fix: $(VARIABLE) of a secretKeyRef"


# --- stack rules -------------------------------------------------------------------------------------------------


def _namespace_of(resource: StackResource) -> str:
    return text(fields(resource.props.get("metadata")).get("namespace"))


def _name_of(resource: StackResource) -> str:
    return text(fields(resource.props.get("metadata")).get("name"))


def _shown(namespace: str) -> str:
    return namespace[:63] if namespace else "the provider's default namespace"


def _workload_namespaces(resources: Sequence[StackResource]) -> dict[str, list[str]]:
    """Each namespace Pods run in, with the workloads that run there."""
    found: dict[str, list[str]] = {}
    for resource in resources:
        if resource.resource_type in POD_SPECS:
            found.setdefault(_namespace_of(resource), []).append(resource.name)
    return found


def _restricted_namespaces(resources: Sequence[StackResource]) -> Iterator[str]:
    created = {_name_of(r): r for r in resources if r.resource_type == NAMESPACE}
    for name in sorted(created):
        labels = fields(fields(created[name].props.get("metadata")).get("labels"))
        if text(labels.get(PSA_ENFORCE)) != "restricted":
            yield (
                f"namespace {_shown(name)} does not enforce the restricted Pod Security Standard. "
                f"Fix: label it {PSA_ENFORCE}=restricted"
            )
    for namespace, workloads in sorted(_workload_namespaces(resources).items()):
        if not namespace or namespace not in created:
            yield (
                f"{', '.join(sorted(workloads)[:5])} run in {_shown(namespace)}, which this stack does not create "
                "(nothing enforces the restricted standard there). Fix: metadata.namespace of the stack's namespace"
            )


def _denies_all(policy: StackResource) -> bool:
    spec = fields(policy.props.get("spec"))
    selector = fields(spec.get("podSelector"))
    selects_all = "podSelector" in spec and not present(selector.get("matchLabels"))
    selects_all = selects_all and not present(selector.get("matchExpressions"))
    types = {text(t) for t in items(spec.get("policyTypes"))}
    no_rules = not present(spec.get("ingress")) and not present(spec.get("egress"))
    return selects_all and types >= {"Ingress", "Egress"} and no_rules


def _default_deny(resources: Sequence[StackResource]) -> Iterator[str]:
    denied = {_namespace_of(r) for r in resources if r.resource_type == NETWORK_POLICY and _denies_all(r)}
    namespaces = set(_workload_namespaces(resources)) | {_name_of(r) for r in resources if r.resource_type == NAMESPACE}
    for namespace in sorted(namespaces - denied):
        yield (
            f"{_shown(namespace)} has no default-deny NetworkPolicy: any pod may reach any other. Fix: a "
            "NetworkPolicy with podSelector {} and policyTypes [Ingress, Egress] and no rules, then allow each edge"
        )


MIN_SECRET_LENGTH = 8
"""Shorter values (`true`, a port) would be found everywhere by chance; every secret key asks for 12+ characters."""


def secret_values(resources: Sequence[StackResource]) -> dict[str, str]:
    """Each value of each Secret of the stack (`stringData`, and `data` decoded), with the Secret's name."""
    found: dict[str, str] = {}
    for secret in (r for r in resources if r.resource_type == SECRET):
        values = [text(v) for v in fields(secret.props.get("stringData")).values()]
        for encoded in fields(secret.props.get("data")).values():
            try:
                values.append(base64.b64decode(text(encoded), validate=True).decode())
            except ValueError:  # binascii.Error, a non-ASCII string, UnicodeDecodeError: all ValueErrors
                values.append(text(encoded))
        found.update({value: secret.name for value in values if len(value) >= MIN_SECRET_LENGTH})
    return found


def strings(value: Any) -> Iterator[str]:
    """Every string in a value, keys included."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, inner in value.items():
            yield text(key)
            yield from strings(inner)
    else:
        yield from (word for inner in items(value) for word in strings(inner))


def _secret_values_stay_secret(resources: Sequence[StackResource]) -> Iterator[str]:
    values = secret_values(resources)
    for resource in resources:
        if not resource.resource_type.startswith(PREFIX) or resource.resource_type == SECRET:
            continue
        leaked = sorted({values[v] for s in strings(resource.props) for v in values if v in s})
        if leaked:
            yield (
                f"{resource.name} holds the value of Secret {', '.join(leaked)} in plain text (a Pod spec or "
                "ConfigMap is readable by anyone who can list it). Fix: reference the Secret (secretKeyRef, a mount)"
            )


PSS = "Pod Security Standard restricted"

RULES: Sequence[Rule] = (
    Rule("k8s-run-as-non-root", f"{PSS}: every container runs as non-root, never uid 0.", _pods(_run_as_non_root)),
    Rule(
        "k8s-no-privilege-escalation",
        f"{PSS}: every container sets allowPrivilegeEscalation false.",
        _pods(_no_privilege_escalation),
    ),
    Rule(
        "k8s-drop-capabilities",
        f"{PSS}: every container drops ALL capabilities and adds none but NET_BIND_SERVICE.",
        _pods(_drop_capabilities),
    ),
    Rule("k8s-seccomp", f"{PSS}: every container runs the RuntimeDefault seccomp profile.", _pods(_seccomp)),
    Rule(
        "k8s-no-privileged",
        f"{PSS}: no privileged container, unmasked /proc or Windows host process.",
        _pods(_no_privileged),
    ),
    Rule(
        "k8s-no-host-namespaces",
        f"{PSS}: no host network, PID or IPC namespace, no hostPort, no probe aimed at another host.",
        _pods(_no_host_namespaces),
    ),
    Rule(
        "k8s-volume-types",
        f"{PSS}: volumes are ConfigMaps, Secrets, emptyDirs, PVCs and the other allowed types, never hostPath.",
        _pods(_volume_types),
    ),
    Rule(
        "k8s-security-profiles",
        f"{PSS}: AppArmor and SELinux never disabled or widened; no sysctl.",
        _pods(_security_profiles),
    ),
    Rule(
        "k8s-service-account-token",
        "Project rule: no Pod mounts a service-account token (automountServiceAccountToken false).",
        _pods(_service_account_token),
    ),
    Rule(
        "k8s-secret-env",
        "Project rule: a secret reaches a container only through a Secret (secretKeyRef), never literally in env, "
        "a ConfigMap reference or a URL in env, command or args.",
        _pods(_secret_env),
    ),
)

STACK_RULES: Sequence[StackRule] = (
    StackRule(
        "k8s-namespace-restricted",
        f"{PSS}: Pods run only in namespaces the stack creates, labelled {PSA_ENFORCE}=restricted.",
        _restricted_namespaces,
    ),
    StackRule(
        "k8s-default-deny",
        "Project rule: every namespace with Pods has a default-deny NetworkPolicy (ingress and egress).",
        _default_deny,
    ),
    StackRule(
        "k8s-secret-values",
        "Project rule: no Secret's value appears in plain text in any other Kubernetes object.",
        _secret_values_stay_secret,
    ),
)
