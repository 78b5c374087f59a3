"""The Kubernetes renderer: the stack's service specs as objects on a cluster (issue 11).

`build` is what `stack.py` calls under `sentineliq:platform: kubernetes`; it registers no Docker resource.
"""

from .render import build

__all__ = ["build"]
