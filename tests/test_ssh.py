"""SSH to the Docker host: `sshHostKey` is validated, reaches every remote command, and the Docker provider's own
`ssh` accepts that key and nothing else.

The provider's ssh is run for real here: OpenSSH's client against a test sshd on loopback (Debian's
openssh-server, started by the test with generated host keys), with the argument list the provider's connection
helper builds (docker/cli `connhelper`: `ssh <ssh_opts> -T -l USER [-p PORT] -- HOST docker system dial-stdio`)
and, where a private dockerd runs, the remote `docker system dial-stdio` answering the Docker API's `/_ping`.
What only the source backs: pulumi-command checks `connection.hostKey` with Go's `ssh.FixedHostKey`
(provider/pkg/provider/remote/connection.go at v1.2.1); that client cannot run here.
"""

from __future__ import annotations

import base64
import json
import shutil
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import PROJECT, SSH_HOST_KEY, Deployment, deploy, stack_config, unwrap, with_secrets
from local_servers import docker_engine, free_port, require

from sentinel_infra.docker.ssh import HOST_KEY_ALIAS, parse_host_key, provider_ssh_options
from sentinel_infra.settings import collect_problems

SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"
REMOTE = ("command:remote:Command",)


def keygen(folder: Path, name: str, kind: str, bits: int | None = None) -> str:
    """A new key pair made by ssh-keygen; returns the public key line (with its comment)."""
    require(shutil.which("ssh-keygen"), "ssh-keygen (Debian: openssh-client)")
    path = folder / name
    size = ["-b", str(bits)] if bits else []
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, *size, "-N", "", "-C", "root@docker-1", "-f", str(path)], check=True
    )
    return (folder / f"{name}.pub").read_text()


def ssh_keygen_accepts(folder: Path, line: str) -> bool:
    """Whether OpenSSH itself reads the line as a public key (`ssh-keygen -l`)."""
    candidate = folder / "candidate.pub"
    candidate.write_text(line)
    return subprocess.run(["ssh-keygen", "-l", "-f", str(candidate)], capture_output=True, check=False).returncode == 0


# --- the key's rules, against OpenSSH's own reading ----------------------------------------------------------------


@pytest.mark.parametrize(("kind", "bits"), [("ed25519", None), ("ecdsa", 256), ("ecdsa", 384), ("ecdsa", 521)])
def test_a_host_key_line_is_accepted_as_the_host_writes_it_or_as_known_hosts_has_it(
    tmp_path: Path, kind: str, bits: int | None
) -> None:
    line = keygen(tmp_path, "host", kind, bits)
    kind_name, encoded, _comment = line.split()
    canonical = f"{kind_name} {encoded}"
    assert parse_host_key(line) == canonical, "the comment is dropped"
    for known_hosts_line in (f"docker-1.example.com {line}", f"[docker-1.example.com]:2222 {canonical}"):
        assert parse_host_key(known_hosts_line) == canonical
    assert ssh_keygen_accepts(tmp_path, canonical)


def _blob(*fields: bytes) -> str:
    return base64.b64encode(b"".join(struct.pack(">I", len(f)) + f for f in fields)).decode()


def test_damaged_or_foreign_lines_are_refused_as_openssh_refuses_them(tmp_path: Path) -> None:
    line = keygen(tmp_path, "host", "ed25519")
    kind, encoded, _ = line.split()
    trailing = base64.b64encode(base64.b64decode(encoded) + struct.pack(">I", 1) + b"x").decode()
    damaged = {
        "truncated": f"{kind} {encoded[:-8]}",
        "another type's name": f"ecdsa-sha2-nistp256 {encoded}",
        "trailing bytes": f"{kind} {trailing}",
        "short key": f"{kind} {_blob(b'ssh-ed25519', bytes(31))}",
        "not base64": f"{kind} {encoded[:-4]}!!!!",
        "two keys": f"{line.strip()}\n{line.strip()}",
        "no key": "docker-1.example.com",
        "private key": (tmp_path / "host").read_text(),
        "certificate authority": f"@cert-authority *.example.com {line}",
    }
    for what, candidate in damaged.items():
        with pytest.raises(ValueError, match=r"must be one public key line|is not a valid"):
            parse_host_key(candidate)
        if what not in ("two keys", "certificate authority", "private key"):
            assert not ssh_keygen_accepts(tmp_path, candidate), f"{what}: OpenSSH reads it, the rule must too"


def test_an_rsa_host_key_is_refused_with_the_reason(tmp_path: Path) -> None:
    line = keygen(tmp_path, "host", "rsa", 3072)
    assert ssh_keygen_accepts(tmp_path, line)
    with pytest.raises(ValueError, match="ed25519 or ECDSA host key, not ssh-rsa"):
        parse_host_key(line)


def problems(**plain: str) -> dict[str, tuple[str, str]]:
    config, secret_keys = with_secrets(stack_config("prod"), None)
    values = {k.removeprefix(f"{PROJECT}:"): v for k, v in config.items()} | plain
    values["sshPrivateKey"] = SSH_KEY
    found, _ = collect_problems(values, {k.removeprefix(f"{PROJECT}:") for k in secret_keys} | {"sshPrivateKey"})
    return {p.key: (p.rule, p.fix) for p in found}


def test_an_ssh_engine_needs_its_host_key() -> None:
    rule, fix = problems(dockerHost="ssh://deploy@docker-1.example.com")["sshHostKey"]
    assert rule.startswith("is required when dockerHost is ssh://")
    assert fix == """pulumi config set sentineliq:sshHostKey "$(cat ssh_host_ed25519_key.pub)\""""
    assert problems(dockerHost="ssh://deploy@docker-1.example.com", sshHostKey=SSH_HOST_KEY) == {}
    assert "sshHostKey" not in problems()


def test_a_bad_host_key_is_reported_with_its_rule_and_fix() -> None:
    found = problems(dockerHost="ssh://deploy@docker-1.example.com", sshHostKey="ssh-ed25519 AAAA")
    rule, fix = found["sshHostKey"]
    assert rule.startswith("is not a valid ssh-ed25519 public key")
    assert fix.startswith("pulumi config set sentineliq:sshHostKey ")


# --- what the program registers ------------------------------------------------------------------------------------


def remote(docker_host: str) -> Deployment:
    config, secret_keys = with_secrets(stack_config("prod"), None)
    secret_keys.add(f"{PROJECT}:sshPrivateKey")
    config[f"{PROJECT}:sshPrivateKey"] = SSH_KEY
    config[f"{PROJECT}:dockerHost"] = docker_host
    config[f"{PROJECT}:sshHostKey"] = f"docker-1.example.com {SSH_HOST_KEY} root@docker-1"
    return deploy(config, secret_keys, stack="prod")


@pytest.mark.parametrize(
    ("docker_host", "port"),
    [("ssh://deploy@docker-1.example.com", 22), ("ssh://deploy@docker-1.example.com:2222", 2222)],
)
def test_every_ssh_client_checks_the_host_key_on_the_same_port(docker_host: str, port: int) -> None:
    deployment = remote(docker_host)
    commands = [r for r in deployment.resources if r.type in REMOTE]
    assert len(commands) >= 4
    for command in commands:
        connection = unwrap(command.inputs["connection"])
        assert connection["hostKey"] == SSH_HOST_KEY, command.name
        assert connection["port"] == port, command.name
    provider = deployment.of_type("pulumi:providers:docker")[0]
    assert provider.inputs["host"] == docker_host
    options = provider.plain("sshOpts")
    options = json.loads(options) if isinstance(options, str) else options
    assert options == provider_ssh_options(SSH_HOST_KEY, port)
    assert f"-p {port} " in deployment.outputs["kibana"], "the tunnel the outputs print uses the same port"


def test_the_provider_options_are_the_same_on_every_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """They are provider inputs: a path or a home folder in them would be a change from every other machine."""
    first = remote("ssh://deploy@docker-1.example.com").of_type("pulumi:providers:docker")[0].inputs["sshOpts"]
    monkeypatch.setenv("HOME", "/somewhere/else")
    monkeypatch.chdir("/")
    assert remote("ssh://deploy@docker-1.example.com").of_type("pulumi:providers:docker")[0].inputs["sshOpts"] == first


# --- the provider's ssh against a real sshd --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """A test sshd on loopback with an ed25519 and an ECDSA host key; root logs in with the folder's client key.
    With a private dockerd, its sessions get DOCKER_HOST pointing at it (so `docker system dial-stdio` works)."""
    binary = shutil.which("sshd") or "/usr/sbin/sshd"
    require(Path(binary).exists(), "sshd (Debian: openssh-server)")
    folder = tmp_path_factory.mktemp("sshd")
    keygen(folder, "host_ed25519", "ed25519")
    keygen(folder, "host_ecdsa", "ecdsa", 256)
    keygen(folder, "client", "ed25519")
    shutil.copy(folder / "client.pub", folder / "authorized_keys")
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation folder
    with docker_engine() as engine:
        port = free_port()
        (folder / "sshd_config").write_text(
            f"Port {port}\nListenAddress 127.0.0.1\n"
            f"HostKey {folder / 'host_ed25519'}\nHostKey {folder / 'host_ecdsa'}\n"
            f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPidFile {folder / 'sshd.pid'}\n"
            "StrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\n" + (f"SetEnv DOCKER_HOST={engine}\n" if engine else "")
        )
        log = (folder / "sshd.log").open("w")
        server = subprocess.Popen([binary, "-D", "-e", "-f", str(folder / "sshd_config")], stdout=log, stderr=log)
        try:
            deadline = time.monotonic() + 20
            while "Server listening" not in (folder / "sshd.log").read_text():
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"sshd did not start: {(folder / 'sshd.log').read_text()[-500:]}")
                time.sleep(0.1)
            yield port, folder
        finally:
            server.terminate()
            server.wait(timeout=10)
            log.close()


def provider_ssh(
    folder: Path, options: list[str], port: int | None, remote_command: list[str], stdin: bytes = b""
) -> subprocess.CompletedProcess[bytes]:
    """The provider's ssh, as docker/cli's connhelper runs it for `ssh://root@127.0.0.1[:port]`.

    The client key comes from a user ssh config, as the README asks of the machine running `pulumi`; that config
    also trusts any new host key and names another port, so only the provider's options can make this strict.
    """
    config = folder / "user_ssh_config"
    config.write_text(
        f"Host *\n  IdentityFile {folder / 'client'}\n  IdentitiesOnly yes\n  StrictHostKeyChecking accept-new\n"
        f"  UserKnownHostsFile {folder / 'user_known_hosts'}\n  Port 1\n"
    )
    address = ["-l", "root", *(["-p", str(port)] if port else []), "--", "127.0.0.1"]
    return subprocess.run(
        ["ssh", "-F", str(config), *options, "-T", *address, *remote_command],
        input=stdin,
        capture_output=True,
        timeout=60,
        check=False,
    )


def line_of(folder: Path, name: str) -> str:
    return parse_host_key((folder / f"{name}.pub").read_text())


@pytest.mark.parametrize("key", ["host_ed25519", "host_ecdsa"])
def test_the_provider_ssh_reaches_the_host_with_its_key(sshd: tuple[int, Path], key: str) -> None:
    port, folder = sshd
    result = provider_ssh(folder, provider_ssh_options(line_of(folder, key), port), port, ["echo", "reached"])
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == b"reached\n"


def test_the_provider_ssh_refuses_another_host_key(sshd: tuple[int, Path], tmp_path: Path) -> None:
    port, folder = sshd
    impostor = parse_host_key(keygen(tmp_path, "impostor", "ed25519"))
    result = provider_ssh(folder, provider_ssh_options(impostor, port), port, ["echo", "reached"])
    assert result.returncode == 255 and b"reached" not in result.stdout
    assert b"Host key verification failed" in result.stderr
    assert not (folder / "user_known_hosts").exists(), "nothing learned on first use"
    # The options before sshHostKey (batch mode and a timeout only) left the check to the user's configuration,
    # which here trusts any new key: the same impostor was accepted.
    before = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=15", "-o", f"Port={port}"]
    assert provider_ssh(folder, before, port, ["echo", "reached"]).stdout == b"reached\n"


def test_without_a_port_the_provider_ssh_uses_the_port_of_the_commands(sshd: tuple[int, Path]) -> None:
    """`ssh://root@host` has no port for the connection helper to pass: the Port option (22 unless dockerHost
    names another, like the commands' connection) decides, over any Port in the user's ssh config."""
    port, folder = sshd
    result = provider_ssh(folder, provider_ssh_options(line_of(folder, "host_ed25519"), port), None, ["echo", "ok"])
    assert result.stdout == b"ok\n", result.stderr.decode()


def test_the_provider_reaches_the_docker_api_through_that_ssh(sshd: tuple[int, Path]) -> None:
    port, folder = sshd
    if "SetEnv DOCKER_HOST" not in (folder / "sshd_config").read_text():
        pytest.skip("needs a private dockerd behind the test sshd")
    options = provider_ssh_options(line_of(folder, "host_ed25519"), port)
    ping = b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n"
    result = provider_ssh(folder, options, port, ["docker", "system", "dial-stdio"], stdin=ping)
    assert result.stdout.startswith(b"HTTP/1.1 200 OK"), result.stderr.decode()
    assert result.stdout.endswith(b"OK")


def test_the_known_hosts_line_the_provider_ssh_reads_is_the_alias_and_key() -> None:
    options = provider_ssh_options(SSH_HOST_KEY, 22)
    command = next(o for o in options if o.startswith("KnownHostsCommand="))
    assert command == f"KnownHostsCommand=/bin/echo {HOST_KEY_ALIAS} {SSH_HOST_KEY}"
    assert "%" not in command, "ssh expands %-tokens in it"
