"""Shared fixtures: the ``backend`` every op test runs under, and hypothesis profiles.

Profiles: "ci" (derandomized, no deadline: a random draw cannot block a landing) is loaded when
the CI variable is set, "dev" otherwise. Tests tune ``max_examples`` per op with ``@settings``.
The strategies are the library's own, in ``minitorch_seg.testing``.
"""
import os

import numpy
import pytest
from hypothesis import HealthCheck, settings

from minitorch_seg import backend as shim

# PyTorch first, where it is installed: the tests use it as an oracle, and gemm.py leaves MKL alone in
# a process where torch is loaded (two MKLs would share their symbols), so no worker mixes them. The
# MKL path runs in a process of its own without torch (test_gemm.py), which sets this variable.
if not os.environ.get("MINITORCH_SEG_TESTS_WITHOUT_TORCH"):
    try:
        import torch  # noqa: F401
    except ImportError:
        pass

_QUIET = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
settings.register_profile("ci", derandomize=True, deadline=None, max_examples=15, suppress_health_check=_QUIET)
settings.register_profile("dev", deadline=None, max_examples=15, suppress_health_check=_QUIET)
settings.load_profile("ci" if os.environ.get("CI") else os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def available_backends():
    names = ["numpy", "strict"]
    if shim.cupy_unavailable_reason() is None:
        names.append("cupy")
    return names


@pytest.fixture(params=available_backends())
def backend(request):
    """Runs the test once per available backend, with that backend current."""
    with shim.use_backend(request.param):
        yield request.param


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same seed, so a failure can be reproduced alone."""
    import minitorch_seg as mt
    mt.manual_seed(0)
    yield


@pytest.fixture
def torch():
    """PyTorch as a test oracle in float64, seeded like ours; the test is skipped where it is not installed."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    torch.set_default_dtype(torch.float64)
    yield torch
    torch.set_default_dtype(torch.float32)


@pytest.fixture
def rng():
    return numpy.random.default_rng(0)


@pytest.hookimpl(tryfirst=True)       # before xdist's own hook reads the groups
def pytest_collection_modifyitems(items):
    """Under pytest-xdist's ``--dist loadgroup``, keep the tests that share one executed notebook on one worker.

    ``tests/test_lessons.py`` runs each notebook once (its module-scoped ``executed`` fixture) and
    asserts several things about that run; split across workers, each would run it again.
    """
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and "executed" in callspec.params:
            item.add_marker(pytest.mark.xdist_group(f"notebook-{callspec.params['executed'].stem}"))
