"""Shared test configuration: hypothesis profiles.

`ci` (the default) keeps property tests bounded; `long` explores far more examples:
    HYPOTHESIS_PROFILE=long pytest
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
