"""Operator commands.

python -m sentinel_infra status --stack NAME [--json]         the seed's `prod.sh status`, from Docker itself
python -m sentinel_infra graph --stack NAME [--write FILE]     the architecture, drawn from the program
python -m sentinel_infra render --stack NAME --out DIR         a Kubernetes stack's objects as YAML manifests
python -m sentinel_infra config-reference [--write FILE]       the config reference table
python -m sentinel_infra required-secrets                      the secret keys every stack must set
python -m sentinel_infra deploy-target --stack NAME            CI: refuse a stack that names no remote engine

Each subcommand imports what it needs when it runs: `status` never loads the offline evaluation (Pulumi's mocks),
`config-reference` never a target's SDK.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from ..settings import Settings, is_secret

ROOT = Path(__file__).resolve().parents[2]
"""The repository: where the stack files `Pulumi.<stack>.yaml` are."""


def required_secrets() -> str:
    """The secret keys a stack cannot run without, one a line (what `scripts/dev-up` generates)."""
    return "\n".join(str(f.alias) for f in Settings.model_fields.values() if is_secret(f) and f.is_required())


def write_between_markers(path: Path, name: str, content: str) -> None:
    """Replace what stands between `<!-- NAME:start -->` and `<!-- NAME:end -->` in a document."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    text = path.read_text()
    pattern = re.compile(rf"{re.escape(start)}\n(?:.*?\n)?{re.escape(end)}", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{path}: no {start} ... {end} markers")
    path.write_text(pattern.sub(lambda _: f"{start}\n{content.rstrip()}\n{end}", text))


def render(stack: str, out: Path) -> int:
    """Write a Kubernetes stack's manifests; a Docker stack, or a configuration with problems, is an error."""
    import pulumi  # noqa: PLC0415 - lazy, see above

    from .render import NotKubernetesError, write_manifests  # noqa: PLC0415 - lazy, see above

    try:
        written = write_manifests(ROOT, stack, out)
    except (NotKubernetesError, pulumi.RunError) as problem:
        print(f"render: {problem}", file=sys.stderr)
        return 1
    print(f"{len(written)} manifests of stack {stack} in {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sentinel_infra", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    status = commands.add_parser("status", help="state and health of every service of a stack")
    status.add_argument("--stack", required=True)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument("--docker-host", help="override the stack's sentineliq:dockerHost")
    drawing = commands.add_parser("graph", help="the stack's architecture as Mermaid, from the program")
    drawing.add_argument("--stack", required=True)
    drawing.add_argument("--write", type=Path, metavar="FILE", help="update the diagram in this file")
    reference = commands.add_parser("config-reference", help="the config reference table (Markdown)")
    reference.add_argument("--write", type=Path, metavar="FILE", help="update the table in this file")
    manifests = commands.add_parser("render", help="a Kubernetes stack's objects as YAML manifests (secrets redacted)")
    manifests.add_argument("--stack", required=True)
    manifests.add_argument("--out", type=Path, required=True, metavar="DIR", help="one file per object, <kind>-<name>")
    commands.add_parser("required-secrets", help="list the secret keys every stack must set")
    target = commands.add_parser("deploy-target", help="fail unless the stack file names an ssh:// dockerHost")
    target.add_argument("--stack", required=True)
    args = parser.parse_args(argv)

    if args.command == "status":
        from .status import run_status  # noqa: PLC0415 - lazy, see above

        return run_status(ROOT, args.stack, as_json=args.json, docker_host=args.docker_host)
    if args.command == "render":
        return render(args.stack, args.out)
    if args.command == "required-secrets":
        print(required_secrets())
        return 0
    if args.command == "deploy-target":
        from .delivery import NoDeployTargetError, deploy_target  # noqa: PLC0415 - lazy, see above

        try:
            host = deploy_target(ROOT, args.stack)
        except NoDeployTargetError as problem:
            # A GitHub Actions error annotation (shown on the run's summary), then the whole message.
            print(f"::error title=No Docker host for stack {args.stack}::{str(problem).splitlines()[0]}")
            print(f"deploy-target: {problem}", file=sys.stderr)
            return 1
        print(f"stack {args.stack} deploys to {host}")
        return 0
    if args.command == "graph":
        from .graph import graph  # noqa: PLC0415 - lazy, see above

        text, marker = graph(ROOT, args.stack), "architecture"
    else:
        from .docs import config_reference  # noqa: PLC0415 - lazy, see above

        text, marker = config_reference(), "config-reference"
    if args.write is not None:
        write_between_markers(args.write, marker, text)
    else:
        print(text)
    return 0
