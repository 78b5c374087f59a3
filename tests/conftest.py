import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The program's package, and the policy pack's rules (importable without starting the pack).
sys.path[:0] = [str(ROOT), str(ROOT / "policy")]


import pytest  # noqa: E402 - after the path is set
from harness import Deployment, deploy_stack  # noqa: E402


@pytest.fixture(scope="session")
def prod() -> Deployment:
    """The committed prod stack with the test secrets, evaluated once (tests must not mutate it)."""
    return deploy_stack("prod")


@pytest.fixture(scope="session")
def dev() -> Deployment:
    """The committed dev stack with the test secrets, evaluated once."""
    return deploy_stack("dev")
