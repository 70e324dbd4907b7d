"""Shared fixtures: one small synthetic benchmark per test session (written by `mertk synth`'s code)."""

from __future__ import annotations

import pytest

from mertk.synth import synthesize


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    """A 4-subject synthetic benchmark in the native layouts (CASME2/, SAMM/, SMIC/, CK+/, FER2013/)."""
    out = tmp_path_factory.mktemp("synth") / "bench"
    synthesize(out, subjects=4, seed=11, progress=False)
    return out
