"""Operator commands: `python -m sentinel_infra config-reference [--write README.md] | required-secrets`."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from .docs import config_reference
from .settings import Settings, is_secret

START, END = "<!-- config-reference:start -->", "<!-- config-reference:end -->"


def required_secrets() -> str:
    """The secret keys a stack cannot run without, one a line (what `scripts/dev-up` generates)."""
    return "\n".join(str(f.alias) for f in Settings.model_fields.values() if is_secret(f) and f.is_required())


def write_reference(path: Path) -> None:
    """Replace the table between the README's config-reference markers."""
    text = path.read_text()
    pattern = re.compile(rf"{re.escape(START)}\n.*?\n{re.escape(END)}", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{path}: no {START} ... {END} markers")
    path.write_text(pattern.sub(lambda _: f"{START}\n{config_reference()}\n{END}", text))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sentinel_infra")
    commands = parser.add_subparsers(dest="command", required=True)
    reference = commands.add_parser("config-reference", help="print the config reference table (Markdown)")
    reference.add_argument("--write", type=Path, metavar="README", help="update the table in this file instead")
    commands.add_parser("required-secrets", help="list the secret keys every stack must set")
    args = parser.parse_args()
    if args.command == "required-secrets":
        print(required_secrets())
    elif args.write is not None:
        write_reference(args.write)
    else:
        print(config_reference())


if __name__ == "__main__":
    main()
