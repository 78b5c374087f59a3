"""The Docker renderer: turns the target-neutral specs (`sentinel_infra.specs`) into pulumi-docker resources.

`platform` (provider, network, volumes), `images` (pulls), `containers` (one `ServiceContainer` per service),
`oneshot` and `steps` (one-shot commands through pulumi-command), `backups` (the daily jobs); `provider_forms`
and `ssh` hold the Docker provider's read-back forms and SSH options. Every type token, logical name and parent
is the one the program registered before the split (tests/snapshots/ are the proof).
"""
