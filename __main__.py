"""SentinelIQ on a Docker host or a Kubernetes cluster: validate the stack's configuration, declare the stack,
export its outputs."""

import os

import pulumi

from sentinel_infra.docker.platform import check_engine_environment
from sentinel_infra.settings import load_settings
from sentinel_infra.stack import build_stack

settings = load_settings()
if settings.platform == "docker":
    check_engine_environment(os.environ)
for name, value in build_stack(settings).items():
    pulumi.export(name, value)
