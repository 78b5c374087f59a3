"""The Docker renderer: turns the target-neutral specs (`sentinel_infra.specs`) into pulumi-docker resources.

`renderer` (the plan in order, the stack outputs), `platform` (provider, network, volumes), `images` (pulls),
`containers` (one `ServiceContainer` per service), `oneshot` and `steps` (each step a command through
pulumi-command), `backups` (the jobs' host folder); `provider_forms` and `ssh` hold the Docker provider's
read-back forms and SSH options. Every type token, logical name and parent
is the one the program registered before the split (tests/snapshots/ are the proof).
"""
