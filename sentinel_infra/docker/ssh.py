"""SSH to the Docker host: the host key every connection checks, and the options of the provider's own `ssh`.

Two clients reach an `ssh://` Docker host. pulumi-command's `remote.Command` (Go's x/crypto/ssh) checks
`connection.hostKey` with `ssh.FixedHostKey` and offers only that key's algorithm; left unset, it accepts any
host (`InsecureIgnoreHostKey`; pulumi-command v1.2.1, provider/pkg/provider/remote/connection.go). The Docker
provider runs the system `ssh … -- host docker system dial-stdio` with `ssh_opts` in front (docker/cli
`connhelper`), so it checks whatever the operator's ssh configuration says. Both must check the one key of
`sentineliq:sshHostKey`, strictly and without trust on first use.

The provider's options are provider inputs: they must be the same string on every machine that runs `pulumi`, or
every `pulumi up` from another machine is a change. So no file path is involved: ssh reads the expected key from
`KnownHostsCommand` (OpenSSH 8.5+), a `/bin/echo` of the known_hosts line, under a fixed `HostKeyAlias`, with
both known_hosts files set to /dev/null (nothing on the machine can vouch for another key, and nothing is written).
"""

from __future__ import annotations

import base64
import binascii
import struct

HOST_KEY_TYPES = {
    "ssh-ed25519": ("", 32),
    "ecdsa-sha2-nistp256": ("nistp256", 65),
    "ecdsa-sha2-nistp384": ("nistp384", 97),
    "ecdsa-sha2-nistp521": ("nistp521", 133),
}
"""Accepted host key types: (the curve named inside an ECDSA key, the public key's length in bytes).

`ssh-rsa` is refused: pulumi-command offers only the key type's own algorithm, for RSA the SHA-1 `ssh-rsa`
signature, which OpenSSH 8.8+ servers no longer accept. Every OpenSSH server since 6.5 has an ed25519 key."""

HOST_KEY_ALIAS = "sentineliq-docker-host"
"""The name ssh looks the key up under (`HostKeyAlias`): the check is of the key, as remote.Command's is."""


def _strings(blob: bytes) -> list[bytes]:
    """The SSH wire-format strings (uint32 length, bytes) a key blob is made of."""
    fields, offset = [], 0
    while offset < len(blob):
        if offset + 4 > len(blob):
            raise ValueError("truncated")
        (length,) = struct.unpack(">I", blob[offset : offset + 4])
        offset += 4
        if offset + length > len(blob):
            raise ValueError("truncated")
        fields.append(blob[offset : offset + length])
        offset += length
    return fields


def parse_host_key(line: str) -> str:
    """A host's public key line, as in known_hosts (`[host] type base64 [comment]`), as `type base64`.

    Raises ValueError with the rule it breaks.
    """
    fields = line.split()
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in line.strip()) or not fields or fields[0].startswith("@"):
        fields = []
    if len(fields) >= 2 and fields[0] not in HOST_KEY_TYPES and fields[1] in HOST_KEY_TYPES:
        fields = fields[1:]  # a known_hosts line: the host pattern first
    if len(fields) < 2 or not fields[0].startswith(("ssh-", "ecdsa-", "sk-")):
        raise ValueError(
            "must be one public key line as in known_hosts, e.g. the host's /etc/ssh/ssh_host_ed25519_key.pub"
        )
    kind, encoded = fields[0], fields[1]
    if kind not in HOST_KEY_TYPES:
        raise ValueError(
            f"must be an ed25519 or ECDSA host key, not {kind}: the deploy commands' SSH client offers only the "
            "key's own signature algorithm (SHA-1 for ssh-rsa, refused by OpenSSH 8.8+)"
        )
    try:
        parts = _strings(base64.b64decode(encoded, validate=True))
    except (binascii.Error, ValueError):
        parts = []
    curve, size = HOST_KEY_TYPES[kind]
    expected = [kind.encode(), *([curve.encode()] if curve else [])]
    point = parts[-1] if parts else b""
    if parts[:-1] != expected or len(point) != size or (curve and point[:1] != b"\x04"):
        raise ValueError(f"is not a valid {kind} public key (the base64 part is damaged or of another type)")
    return f"{kind} {encoded}"


def provider_ssh_options(host_key: str, port: int) -> list[str]:
    """`ssh_opts` of the Docker provider: batch mode, the same port as the commands, only `host_key` trusted."""
    return [
        "-o", "BatchMode=yes",
        "-o", "ConnectTimeout=15",
        "-o", f"Port={port}",
        "-o", "StrictHostKeyChecking=yes",
        "-o", "UserKnownHostsFile=/dev/null",
        "-o", "GlobalKnownHostsFile=/dev/null",
        "-o", "UpdateHostKeys=no",
        "-o", "CheckHostIP=no",
        "-o", f"HostKeyAlias={HOST_KEY_ALIAS}",
        # Negotiate the key's own algorithm, as remote.Command does: ssh would otherwise pick the server's
        # preferred key (ed25519) and refuse it as a mismatch when sshHostKey is the host's ECDSA key.
        "-o", f"HostKeyAlgorithms={host_key.split(maxsplit=1)[0]}",
        "-o", f"KnownHostsCommand=/bin/echo {HOST_KEY_ALIAS} {host_key}",
    ]  # fmt: skip
