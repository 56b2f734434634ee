"""Shared test configuration: hypothesis profiles and a real mosquitto.

Hypothesis profile `ci` (the default) keeps property tests bounded; `long` explores far
more examples:
    HYPOTHESIS_PROFILE=long pytest
"""

import os

import pytest
from hypothesis import HealthCheck, settings

from swarm.broker.server import MosquittoServer

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def mosquitto():
    """A real mosquitto on a free loopback port for the whole session.

    Fails (never skips) when mosquitto is missing: CI installs it, and a silently skipped
    broker test would hide that the MQTT path is untested.
    """
    server = MosquittoServer()
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(f"cannot start mosquitto for the MQTT tests: {exc}")
    yield server
    server.stop()
