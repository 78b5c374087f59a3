"""The README's claims that code can check."""

from __future__ import annotations

import re

from harness import ROOT

from sentinel_infra.ops.docs import config_reference


def test_readme_config_reference_matches_the_schema() -> None:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"<!-- config-reference:start -->\n(.*?)\n<!-- config-reference:end -->", readme, re.S)
    assert match, "README.md lost its config-reference markers"
    assert match.group(1) == config_reference(), "run: python -m sentinel_infra config-reference --write README.md"


def test_ci_runs_the_test_command_the_readme_gives() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "```sh\n./scripts/test\n```" in readme
    ci = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line and not line.startswith("#")]
    assert ci[-1] == "./scripts/test"
