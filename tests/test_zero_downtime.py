"""Zero-downtime deploys on a real Docker engine: a tag bump replayed as `pulumi up` performs it, with a client
sending requests through the real Traefik edge throughout (see zero_downtime.py). The rolling order the program
registers drops nothing; the delete-before-replace order it used before (the provider's default) does, so this
test can fail. A new version that never turns healthy is never routed to, and the old one keeps serving; the
control points the edge at it anyway and sees its answers, so that test can fail too."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from harness import TEST_SECRETS
from local_servers import docker_engine, tiny_image
from zero_downtime import BROKEN, edge_image, external_settings, tag_bump


@pytest.fixture(scope="module")
def engine() -> Iterator[tuple[str | None, str, str]]:
    with docker_engine() as host:
        yield host, tiny_image(host), edge_image(host)


def test_a_rolling_tag_bump_drops_no_request(engine: tuple[str | None, str, str]) -> None:
    host, app, traefik = engine
    result = tag_bump(host, app, traefik, external_settings(TEST_SECRETS), "rolling")
    assert result.requests > 100, "the client kept sending during the deploy"
    assert result.failures == [], result.failures
    assert set(result.last) == {"v2"}, "traffic reaches the new version afterwards"


def test_the_old_delete_first_order_drops_requests(engine: tuple[str | None, str, str]) -> None:
    host, app, traefik = engine
    result = tag_bump(host, app, traefik, external_settings(TEST_SECRETS), "recreate")
    assert len(result.failures) > 0
    assert result.longest_gap > 0.5
    assert set(result.last) == {"v2"}


def test_a_new_version_that_never_turns_healthy_gets_no_request(engine: tuple[str | None, str, str]) -> None:
    """Its `wait` times out, so `pulumi up` fails before the upstreams step and before the old container's
    deletion: the edge never sends it a request and the old version serves throughout."""
    host, app, traefik = engine
    result = tag_bump(host, app, traefik, external_settings(TEST_SECRETS), "unhealthy")
    assert result.requests > 100
    assert result.failures == [], result.failures
    assert set(result.last) == {"v1"}


def test_an_edge_routing_to_the_unhealthy_version_is_seen(engine: tuple[str | None, str, str]) -> None:
    """The control: the same, with the edge pointed at the unhealthy container as well. Its answers reach the
    client, so the test above would fail if the edge routed to an unhealthy upstream."""
    host, app, traefik = engine
    result = tag_bump(host, app, traefik, external_settings(TEST_SECRETS), "unhealthy-routed")
    assert BROKEN in result.failures, result.failures
