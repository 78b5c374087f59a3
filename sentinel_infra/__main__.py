"""`python -m sentinel_infra …`: the operator commands of sentinel_infra/ops/cli.py."""

import sys

from sentinel_infra.ops.cli import main

if __name__ == "__main__":
    sys.exit(main())
