"""scripts/dev-up, the newcomer's one command, run for real with a stand-in `pulumi` that records its calls.

The real CLI cannot be installed here; the stand-in keeps stack config in a file, so the test checks what the
script asks of Pulumi: a local file backend, a passphrase kept beside it, the stack created once, every required
secret generated once and passed on stdin (never on a command line), and `pulumi up` on the dev stack.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
from harness import ROOT

from sentinel_infra.__main__ import required_secrets

FAKE_PULUMI = r"""#!/bin/sh
# Stand-in for the Pulumi CLI: records argv and environment, keeps config as lines "KEY<TAB>VALUE".
printf '%s\n' "$*" >> "$WORK/calls"
printf 'PULUMI_BACKEND_URL=%s PASSPHRASE_FILE=%s\n' \
  "$PULUMI_BACKEND_URL" "$PULUMI_CONFIG_PASSPHRASE_FILE" >> "$WORK/env"
case "$1 $2" in
  "stack select") [ -f "$WORK/stack" ] ;;
  "stack init") touch "$WORK/stack" ;;
  "config get") grep -q "^$3	" "$WORK/config" 2>/dev/null ;;
  "config set")
    key=$(for last; do :; done; echo "$last")
    printf '%s\t%s\n' "$key" "$(cat)" >> "$WORK/config" ;;
  "up --stack") exit 0 ;;
  *) echo "unexpected: $*" >&2; exit 9 ;;
esac
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    if not (ROOT / "venv" / "bin" / "python").exists():
        pytest.skip("needs ./venv (created by ./scripts/test)")
    copy = tmp_path / "project"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns("venv", ".git", ".pulumi-state", "__pycache__"))
    (copy / "venv").symlink_to(ROOT / "venv")
    tools = tmp_path / "bin"
    tools.mkdir()
    (tools / "pulumi").write_text(FAKE_PULUMI)
    (tools / "docker").write_text("#!/bin/sh\nexit 0\n")
    for tool in tools.iterdir():
        tool.chmod(0o755)
    return copy


def run_dev_up(project: Path) -> subprocess.CompletedProcess[str]:
    work = project.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env.update({"PATH": f"{work / 'bin'}:{env['PATH']}", "WORK": str(work)})
    return subprocess.run(
        ["bash", str(project / "scripts" / "dev-up")], env=env, capture_output=True, text=True, check=False
    )


def test_dev_up_creates_the_stack_and_its_secrets_once(project: Path) -> None:
    work = project.parent
    first = run_dev_up(project)
    assert first.returncode == 0, first.stderr
    calls = (work / "calls").read_text().splitlines()
    assert calls[:2] == ["stack select dev", "stack init dev --secrets-provider passphrase"]
    assert calls[-1] == "up --stack dev --yes"
    config = dict(line.split("\t") for line in (work / "config").read_text().splitlines())
    assert sorted(config) == sorted(f"sentineliq:{key}" for key in required_secrets().split())
    for key, value in config.items():
        assert len(value) == 48 and set(value) <= set("0123456789abcdef"), key
        assert value not in "\n".join(calls), "a secret reached a command line"
    assert all(call.startswith("config set --secret --stack dev ") for call in calls if call.startswith("config set"))
    state = project / ".pulumi-state"
    assert {line.split()[0] for line in (work / "env").read_text().splitlines()} == {
        f"PULUMI_BACKEND_URL=file://{state}"
    }
    passphrase = state / "dev.passphrase"
    assert stat.S_IMODE(passphrase.stat().st_mode) == 0o600

    second = run_dev_up(project)
    assert second.returncode == 0, second.stderr
    assert "generated" not in second.stdout
    assert len((work / "config").read_text().splitlines()) == len(config), "secrets are generated only once"
