"""Benchmark (a script, not a test): what a client sees during a tag bump, rolling order against the old
delete-first order, and a new version that never turns healthy, on a real Docker engine (a private dockerd, as
root) behind the real Traefik edge.

    venv/bin/python tests/benchmark_zero_downtime.py [--runs N]

Prints, per scenario and run: requests sent, failed requests, and the longest time without a successful answer.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT), str(ROOT / "policy")]

from harness import TEST_SECRETS  # noqa: E402 - after the path is set
from local_servers import docker_engine, tiny_image  # noqa: E402
from zero_downtime import edge_image, external_settings, tag_bump  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    settings = external_settings(TEST_SECRETS)
    print(f"{'scenario':<10} {'run':>3} {'requests':>8} {'failed':>6} {'longest gap (s)':>15}")
    with docker_engine() as host:
        app, traefik = tiny_image(host), edge_image(host)
        for scenario in ("recreate", "rolling", "unhealthy"):
            for run in range(1, args.runs + 1):
                result = tag_bump(host, app, traefik, settings, scenario)
                gap = f"{result.longest_gap:.2f}"
                print(f"{scenario:<10} {run:>3} {result.requests:>8} {len(result.failures):>6} {gap:>15}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
