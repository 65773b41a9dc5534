"""Hypothesis profiles of the fuzz tests.

``yrdgw-fuzz`` (the default, what ``make test`` runs): derandomised, so CI sees the same inputs on
every run, and modest example counts so every fuzz test together takes about a minute.
``yrdgw-fuzz-long`` (``YRDGW_FUZZ_PROFILE=yrdgw-fuzz-long``): random inputs, 20 times as many.
The profiles are applied per test through ``fuzz_settings``, never loaded globally, so the other
hypothesis tests of the suite keep their own settings.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,
    "database": None,
    "print_blob": True,
    "suppress_health_check": [
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.large_base_example,
        HealthCheck.function_scoped_fixture,
    ],
}
settings.register_profile("yrdgw-fuzz", derandomize=True, **_COMMON)
settings.register_profile("yrdgw-fuzz-long", derandomize=False, **_COMMON)
_SCALE = {"yrdgw-fuzz": 1, "yrdgw-fuzz-long": 20}


def fuzz_settings(examples: int) -> settings:
    """The selected profile, with ``examples`` (scaled by the profile) examples per test."""
    name = os.environ.get("YRDGW_FUZZ_PROFILE", "yrdgw-fuzz")
    return settings(settings.get_profile(name), max_examples=examples * _SCALE[name])
