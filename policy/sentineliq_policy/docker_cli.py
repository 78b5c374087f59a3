"""What a one-shot command line runs: its `docker run` flags read as the container properties the pack checks.

The one-shot steps (`command:local:Command`, `command:remote:Command`) run a POSIX shell line on the Docker host:
`docker run --rm -i … IMAGE …`, `docker exec -i CONTAINER …`, guarded by `if docker container inspect …`. The
line is split as the shell splits it (shlex, with the control operators as separate tokens), every `docker run`
and `docker create` becomes a property map in the provider's shape (`privileged`, `mounts`, `securityOpts`, …)
so the container rules apply to it unchanged, and whatever cannot be read for certain (an expansion, an unknown
flag or program, a quote left open) is a problem: the pack fails closed rather than guess.

Flags as the docker CLI defines them (docker/cli `cli/command/container/opts.go`, `run.go`, `exec.go`).
"""

from __future__ import annotations

import csv
import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .values import byte_size, flag

ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=.*", re.DOTALL)
CONTROL = (";", "&", "&&", "|", "||", "(", ")", "\n", ";;", "|&", ";&")
RESERVED = ("if", "then", "else", "elif", "fi", "do", "done", "while", "until", "!", "{", "}")
HARMLESS = ("echo", "printf", "true", "false", "exit", ":", "test", "[")
"""Programs a one-shot line may run besides docker: shell built-ins that cannot start a container."""

DOCKER_GLOBAL_VALUE = ("-H", "--host", "-c", "--context", "--config", "-l", "--log-level", "--tlscacert")
DOCKER_GLOBAL_VALUE_2 = ("--tlscert", "--tlskey")
DOCKER_GLOBAL_BOOLEAN = ("-D", "--debug", "--tls", "--tlsverify")
READ_ONLY = {
    ("inspect",),
    ("ps",),
    ("logs",),
    ("wait",),
    ("version",),
    ("info",),
    ("container", "inspect"),
    ("container", "ls"),
    ("container", "logs"),
    ("container", "wait"),
    ("image", "inspect"),
    ("network", "inspect"),
    ("volume", "inspect"),
}
"""docker subcommands that only read: the pack lets them through."""

RUN_BOOLEAN = {
    "detach",
    "interactive",
    "tty",
    "rm",
    "privileged",
    "publish-all",
    "read-only",
    "init",
    "no-healthcheck",
    "oom-kill-disable",
    "sig-proxy",
    "quiet",
    "disable-content-trust",
    "use-api-socket",
}
RUN_VALUE = {
    "attach",
    "add-host",
    "annotation",
    "blkio-weight",
    "blkio-weight-device",
    "cap-add",
    "cap-drop",
    "cgroup-parent",
    "cgroupns",
    "cidfile",
    "cpu-count",
    "cpu-percent",
    "cpu-period",
    "cpu-quota",
    "cpu-rt-period",
    "cpu-rt-runtime",
    "cpu-shares",
    "cpus",
    "cpuset-cpus",
    "cpuset-mems",
    "detach-keys",
    "device",
    "device-cgroup-rule",
    "device-read-bps",
    "device-read-iops",
    "device-write-bps",
    "device-write-iops",
    "dns",
    "dns-opt",
    "dns-option",
    "dns-search",
    "domainname",
    "entrypoint",
    "env",
    "env-file",
    "expose",
    "gpus",
    "group-add",
    "health-cmd",
    "health-interval",
    "health-retries",
    "health-start-interval",
    "health-start-period",
    "health-timeout",
    "hostname",
    "ip",
    "ip6",
    "ipc",
    "isolation",
    "label",
    "label-file",
    "link",
    "link-local-ip",
    "log-driver",
    "log-opt",
    "mac-address",
    "memory",
    "memory-reservation",
    "memory-swap",
    "memory-swappiness",
    "mount",
    "name",
    "net",
    "net-alias",
    "network",
    "network-alias",
    "oom-score-adj",
    "pid",
    "pids-limit",
    "platform",
    "publish",
    "pull",
    "restart",
    "runtime",
    "security-opt",
    "shm-size",
    "stop-signal",
    "stop-timeout",
    "storage-opt",
    "sysctl",
    "tmpfs",
    "ulimit",
    "user",
    "userns",
    "uts",
    "volume",
    "volume-driver",
    "volumes-from",
    "workdir",
}
RUN_SHORT = {
    "d": "detach",
    "i": "interactive",
    "t": "tty",
    "P": "publish-all",
    "q": "quiet",
    "a": "attach",
    "c": "cpu-shares",
    "e": "env",
    "h": "hostname",
    "l": "label",
    "m": "memory",
    "p": "publish",
    "u": "user",
    "v": "volume",
    "w": "workdir",
}
EXEC_BOOLEAN = {"detach", "interactive", "tty", "privileged"}
EXEC_VALUE = {"detach-keys", "env", "env-file", "user", "workdir"}
EXEC_SHORT = {"d": "detach", "i": "interactive", "t": "tty", "e": "env", "u": "user", "w": "workdir"}

DOCKER_SOCKET = "/var/run/docker.sock"
VOLUME_MODES = {"ro", "rw", "z", "Z", "nocopy", "consistent", "cached", "delegated"}
PROPAGATIONS = {"shared", "rshared", "slave", "rslave", "private", "rprivate"}


def _shown(word: str) -> str:
    """A word fit for a violation message: a plain name, never an arbitrary string (it might be a secret)."""
    return word if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,39}", word) else "…"


@dataclass
class Reading:
    """What one command line runs: a property map per container it starts, and what could not be read."""

    containers: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _scan(line: str) -> tuple[str, bool]:
    """The line with backslash-newlines joined (as the shell does), and whether it expands anything (`$`, `` ` ``)
    outside single quotes: an expansion's value is only known on the host, so the pack cannot read it."""
    out: list[str] = []
    quote = ""
    expands = False
    index = 0
    while index < len(line):
        char = line[index]
        if quote != "'" and char == "\\" and index + 1 < len(line):
            if line[index + 1] != "\n":
                out.append(line[index : index + 2])
            index += 2
            continue
        if char in "'\"" and quote in ("", char):
            quote = "" if quote == char else char
        elif quote != "'" and char in "$`":
            expands = True
        out.append(char)
        index += 1
    return "".join(out), expands


def _words(line: str) -> list[str] | None:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|()<>\n")
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError:
        return None


def _simple_commands(words: list[str]) -> Iterator[list[str]]:
    """The simple commands of a tokenised line: split at control operators, without reserved words, redirections
    and leading variable assignments."""
    command: list[str] = []
    skip = False
    for word in [*words, ";"]:
        if skip:
            skip = False
        elif word in CONTROL:
            if command:
                yield command
            command = []
        elif word and set(word) <= set(";&|()<>"):
            if "<" not in word and ">" not in word:
                raise ValueError(word)
            skip = True
            if command and command[-1].isdigit():
                command.pop()
        elif not command and (word in RESERVED or ASSIGNMENT.fullmatch(word)):
            continue
        else:
            command.append(word)


def _short_cluster(
    arg: str, following: list[str], boolean: set[str], valued: set[str], short: dict[str, str]
) -> tuple[list[tuple[str, str]], int, list[str]]:
    """`-it`, `-v/a:/b`, `-p 80:80`: the flags of one short-flag word, how many next words they used, problems."""
    options: list[tuple[str, str]] = []
    for position in range(1, len(arg)):
        name = short.get(arg[position], "")
        if name in boolean:
            options.append((name, "true"))
        elif name in valued:
            value = arg[position + 1 :]
            if value:
                return [*options, (name, value)], 0, []
            return [*options, (name, following[0] if following else "")], 1, []
        else:
            return options, 0, [f"unknown flag -{_shown(arg[position])}, which the pack cannot check"]
    return options, 0, []


def _options(
    args: list[str], boolean: set[str], valued: set[str], short: dict[str, str]
) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """Flags (name, value; "true" for a bare boolean) up to the first operand, the operands, and problems."""
    options: list[tuple[str, str]] = []
    problems: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg == "--":
            return options, args[index:], problems
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            if name in valued and not eq:
                value, index = (args[index], index + 1) if index < len(args) else ("", index)
            if name in boolean | valued:
                options.append((name, value if eq or name in valued else "true"))
            else:
                problems.append(f"unknown flag --{_shown(name)}, which the pack cannot check")
        elif arg.startswith("-") and len(arg) > 1:
            found, used, unknown = _short_cluster(arg, args[index:], boolean, valued, short)
            options += found
            problems += unknown
            index += used
        else:
            return options, args[index - 1 :], problems
    return options, [], problems


Properties = dict[str, Any]
"""A container's properties in the provider's shape (camelCase, as a validator sees a docker.Container)."""


def _port(spec: str) -> dict[str, Any]:
    """`[ip:][host:]container[/proto]` as the provider's port entry; an IPv6 address is bracketed."""
    spec = spec.split("/", 1)[0]
    address: str | None = None
    if spec.startswith("["):
        address, _, spec = spec[1:].partition("]")
        spec = spec.removeprefix(":")
    parts = spec.rsplit(":", 2)
    if len(parts) == 3:
        address, external, internal = parts
    elif len(parts) == 2:
        external, internal = parts
    else:
        external, internal = "", parts[0]
    port: dict[str, Any] = {"internal": internal}
    if external:
        port["external"] = external
    if address is not None:
        port["ip"] = address
    return port


def _volume(spec: str, problems: list[str]) -> dict[str, Any]:
    """`-v [src:]dst[:mode]` as a provider mount; Docker splits it at every `:`."""
    parts = spec.split(":")
    if len(parts) > 3:
        problems.append("a ':' in a -v path breaks Docker's src:dst:mode syntax. Fix: use --mount")
    mode = ""
    if len(parts) == 2 and all(m in VOLUME_MODES | PROPAGATIONS for m in parts[1].split(",")):
        source, target, mode = "", parts[0], parts[1]
    elif len(parts) == 1:
        source, target = "", parts[0]
    else:
        source, target, mode = parts[0], parts[1], ":".join(parts[2:])
    modes = [m for m in mode.split(",") if m]
    unknown = [m for m in modes if m not in VOLUME_MODES | PROPAGATIONS]
    if unknown:
        problems.append(f"unknown -v mode {_shown(unknown[0])}")
    mount: dict[str, Any] = {"type": "bind" if source.startswith("/") else "volume", "source": source, "target": target}
    propagation = [m for m in modes if m in PROPAGATIONS]
    if propagation:
        mount["bindOptions"] = {"propagation": propagation[-1]}
    return mount


MOUNT_KEYS = {
    "type",
    "source",
    "src",
    "target",
    "destination",
    "dst",
    "readonly",
    "ro",
    "bind-propagation",
    "bind-recursive",
    "bind-nonrecursive",
    "bind-create-src",
    "volume-driver",
    "volume-opt",
    "volume-nocopy",
    "volume-subpath",
    "volume-label",
    "tmpfs-size",
    "tmpfs-mode",
    "consistency",
    "image-subpath",
}


def _mount(spec: str, problems: list[str]) -> dict[str, Any]:
    """`--mount type=…,source=…,…` (a CSV line, as the CLI reads it) as a provider mount."""
    try:
        cells = next(csv.reader([spec]), [])
    except csv.Error:
        problems.append("a --mount value the pack cannot read")
        return {}
    mount: dict[str, Any] = {"type": "volume"}
    options: dict[str, str] = {}
    for cell in cells:
        key, _, value = cell.partition("=")
        key = key.strip().lower()
        if key not in MOUNT_KEYS:
            problems.append(f"unknown --mount key {_shown(key)}")
        elif key == "type":
            mount["type"] = value
        elif key in ("source", "src"):
            mount["source"] = value
        elif key in ("target", "destination", "dst"):
            mount["target"] = value
        elif key == "bind-propagation":
            mount["bindOptions"] = {"propagation": value}
        elif key == "volume-driver":
            mount.setdefault("volumeOptions", {})["driverName"] = value
        elif key == "volume-opt":
            name, _, option = value.partition("=")
            options[name] = option
    if options:
        mount.setdefault("volumeOptions", {})["driverOptions"] = options
    return mount


def _restart(value: str, props: Properties) -> None:
    policy, _, retries = value.partition(":")
    props["restart"] = policy
    if retries:
        props["maxRetryCount"] = retries


def _memory_mb(value: str) -> Any:
    size = byte_size(value)
    return value if size is None or size < 0 else -(-size // (1 << 20))


PLAIN = {
    "privileged": "privileged",
    "rm": "rm",
    "publish-all": "publishAllPorts",
    "read-only": "readOnly",
    "cgroup-parent": "cgroupParent",
    "pid": "pidMode",
    "ipc": "ipcMode",
    "uts": "utsMode",
    "userns": "usernsMode",
    "cgroupns": "cgroupnsMode",
    "gpus": "gpus",
    "cpus": "cpus",
    "pids-limit": "pidsLimit",
    "cpu-quota": "cpuQuota",
    "cpu-shares": "cpuShares",
    "log-driver": "logDriver",
}
"""Flags that set one property to their value as it is."""


def _network(value: str, props: Properties) -> None:
    props.setdefault("networksAdvanced", []).append({"name": value})
    if value in ("host", "none") or value.startswith("container:"):
        props["networkMode"] = value


def _capabilities(key: str) -> Callable[[str, Properties], None]:
    def add(value: str, props: Properties) -> None:
        props.setdefault("capabilities", {}).setdefault(key, []).extend(value.split(","))

    return add


def _listed(key: str, entry: Callable[[str], Any]) -> Callable[[str, Properties], None]:
    def add(value: str, props: Properties) -> None:
        props.setdefault(key, []).append(entry(value))

    return add


def _keyed(key: str) -> Callable[[str, Properties], None]:
    def add(value: str, props: Properties) -> None:
        name, _, option = value.partition("=")
        props.setdefault(key, {})[name] = option

    return add


def _when_set(apply: Callable[[Properties], Any]) -> Callable[[str, Properties], None]:
    def add(value: str, props: Properties) -> None:
        if flag(value) is not False:
            apply(props)

    return add


HANDLERS: dict[str, Callable[[str, Properties], None]] = {
    "network": _network,
    "net": _network,
    "cap-add": _capabilities("adds"),
    "cap-drop": _capabilities("drops"),
    "security-opt": _listed("securityOpts", str),
    "publish": _listed("ports", _port),
    "volumes-from": _listed("volumes", lambda value: {"fromContainer": value}),
    "device": _listed("devices", lambda value: {"hostPath": value.split(":", 1)[0]}),
    "device-cgroup-rule": _listed("devices", lambda value: {"hostPath": value}),
    "label": _listed("labels", lambda value: dict(zip(("label", "value"), value.partition("=")[::2], strict=True))),
    "log-opt": _keyed("logOpts"),
    "memory": lambda value, props: props.update(memory=_memory_mb(value)),
    "memory-swap": lambda value, props: props.update(memorySwap=_memory_mb(value)),
    "restart": _restart,
    "health-cmd": lambda value, props: props.update(healthcheck={"tests": ["CMD-SHELL", value]}),
    "no-healthcheck": _when_set(lambda props: props.update(healthcheck={"tests": ["NONE"]})),
    # --use-api-socket mounts the engine's socket into the container (docker CLI 28).
    "use-api-socket": _when_set(lambda props: props.setdefault("volumes", []).append({"hostPath": DOCKER_SOCKET})),
}
"""Flags that shape a property of their own."""


def _run(options: list[tuple[str, str]], operands: list[str], problems: list[str]) -> Properties:
    """The provider-shaped properties of a `docker run`/`docker create`."""
    props: Properties = {"image": operands[0] if operands else ""}
    for name, value in options:
        if name in PLAIN:
            props[PLAIN[name]] = value
        elif name in HANDLERS:
            HANDLERS[name](value, props)
        elif name in ("volume", "mount"):
            props.setdefault("mounts", []).append((_volume if name == "volume" else _mount)(value, problems))
    return props


def _docker(args: list[str], reading: Reading) -> None:
    """One `docker …` invocation (its arguments after the program name)."""
    index = 0
    while index < len(args) and args[index].startswith("-"):
        name = args[index].split("=", 1)[0]
        if name in (*DOCKER_GLOBAL_VALUE, *DOCKER_GLOBAL_VALUE_2) and "=" not in args[index]:
            index += 1
        elif name not in (*DOCKER_GLOBAL_VALUE, *DOCKER_GLOBAL_VALUE_2, *DOCKER_GLOBAL_BOOLEAN):
            reading.problems.append(f"unknown docker option {_shown(name)}, which the pack cannot check")
        index += 1
    rest = args[index:]
    command = tuple(rest[:2]) if rest[:1] == ["container"] else tuple(rest[:1])
    arguments = rest[len(command) :]
    verb = command[-1] if command else ""
    if verb in ("run", "create") and command in (("run",), ("create",), ("container", verb)):
        options, operands, problems = _options(arguments, RUN_BOOLEAN, RUN_VALUE, RUN_SHORT)
        reading.problems.extend(problems)
        reading.containers.append(_run(options, operands, reading.problems))
    elif command in (("exec",), ("container", "exec")):
        options, _, problems = _options(arguments, EXEC_BOOLEAN, EXEC_VALUE, EXEC_SHORT)
        reading.problems.extend(problems)
        for name, value in options:
            if name == "privileged" and flag(value) is not False:
                reading.problems.append("runs docker exec --privileged (CIS 5.23). Fix: drop --privileged")
            user = value.split(":", 1)[0].strip()
            if name == "user" and (user == "root" or (user.isdecimal() and int(user) == 0)):
                reading.problems.append("runs docker exec as root (CIS 5.24). Fix: drop --user root")
    elif command not in READ_ONLY:
        shown = " ".join(_shown(word) for word in command) or "without a command"
        reading.problems.append(f"runs docker {shown}, which the pack cannot check")


def _without_env(command: list[str]) -> list[str]:
    """`env NAME=value … docker …` (how a line may point docker at an engine): the command env runs."""
    if command[0].rsplit("/", 1)[-1] != "env":
        return command
    rest = command[1:]
    while rest and ASSIGNMENT.fullmatch(rest[0]):
        rest = rest[1:]
    return rest


def read(line: str) -> Reading:
    """Every container a shell command line starts, as properties, and what the pack could not read."""
    reading = Reading()
    cleaned, expands = _scan(line)
    if expands:
        reading.problems.append("expands $… or `…` outside single quotes, which the pack cannot check")
    words = _words(cleaned)
    if words is None:
        reading.problems.append("has a quote left open")
        return reading
    try:
        commands = list(_simple_commands(words))
    except ValueError:
        reading.problems.append("has a shell operator the pack cannot read")
        return reading
    for words in commands:
        command = _without_env(words)
        program = command[0].rsplit("/", 1)[-1] if command else "env"
        if program == "docker":
            _docker(command[1:], reading)
        elif not command or command[0] not in HARMLESS:
            reading.problems.append(f"runs {_shown(program)}, which the pack cannot check")
    return reading
