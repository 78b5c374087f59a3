"""SentinelIQ on a Docker host: validate the stack's configuration, declare the stack, export its outputs."""

import pulumi

from sentinel_infra.settings import load_settings
from sentinel_infra.stack import build_stack

for name, value in build_stack(load_settings()).items():
    pulumi.export(name, value)
