"""A run keeps linear algebra on its own thread, unless the environment says otherwise."""

from __future__ import annotations

import numpy as np  # noqa: F401  (loads the BLAS library threadpoolctl looks for)
import pytest
from threadpoolctl import threadpool_info

from swarm.fleet.fleet import BLAS_THREAD_SETTINGS, one_blas_thread


def _blas_threads() -> set[int]:
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


def test_a_run_uses_one_blas_thread_and_restores_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in BLAS_THREAD_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    before = _blas_threads()
    with one_blas_thread():
        assert _blas_threads() == {1}
    assert _blas_threads() == before


def test_an_explicit_thread_setting_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    before = _blas_threads()
    with one_blas_thread():
        assert _blas_threads() == before
