"""Operator commands: `python -m sentinel_infra config-reference | required-secrets`."""

from __future__ import annotations

import argparse

from .docs import config_reference
from .settings import Settings, is_secret


def required_secrets() -> str:
    """The secret keys a stack cannot run without, one a line (what `scripts/dev-up` generates)."""
    return "\n".join(str(f.alias) for f in Settings.model_fields.values() if is_secret(f) and f.is_required())


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m sentinel_infra")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("config-reference", help="print the config reference table (Markdown)")
    commands.add_parser("required-secrets", help="list the secret keys every stack must set")
    command = parser.parse_args().command
    print(config_reference() if command == "config-reference" else required_secrets())


if __name__ == "__main__":
    main()
