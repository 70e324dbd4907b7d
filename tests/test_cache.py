"""Content-addressed feature cache: keys follow content and parameters; writes are atomic."""

from __future__ import annotations

import os

import numpy as np
import pytest

from mertk.preprocess.cache import CacheError, FeatureCache, cache_key


def test_key_follows_content_not_timestamps(tmp_path):
    a = tmp_path / "a.jpg"
    a.write_bytes(b"frame-1")
    k1 = cache_key(inputs=[a], params={"method": "tvl1", "alpha": 0.5})
    os.utime(a, ns=(1, 1))  # same bytes, new time stamp: same key
    assert cache_key(inputs=[a], params={"alpha": 0.5, "method": "tvl1"}) == k1
    a.write_bytes(b"frame-2")
    assert cache_key(inputs=[a], params={"method": "tvl1", "alpha": 0.5}) != k1


def test_key_changes_with_every_parameter_and_version(tmp_path):
    base = cache_key(params={"size": (28, 28), "alpha": 1.0})
    assert cache_key(params={"size": (28, 29), "alpha": 1.0}) != base
    assert cache_key(params={"size": (28, 28), "alpha": 1}) != base  # 1 and 1.0 are distinct parameters
    assert cache_key(params={"size": (28, 28), "alpha": 1.0}, version="999") != base
    assert cache_key(params={"mask": np.zeros(3)}) != cache_key(params={"mask": np.ones(3)})


def test_put_get_round_trip_and_hit_counting(tmp_path):
    cache = FeatureCache(tmp_path / "cache")
    key = cache_key(params={"x": 1})
    calls = []

    def compute():
        calls.append(1)
        return {"flow": np.arange(12, dtype=np.float32).reshape(2, 3, 2)}

    first = cache.get_or_compute(key, compute)
    second = cache.get_or_compute(key, compute)
    assert len(calls) == 1 and cache.hits == 1 and cache.misses == 1
    np.testing.assert_array_equal(first["flow"], second["flow"])
    assert second["flow"].dtype == np.float32
    assert not list(cache.path(key).parent.glob("*.tmp"))  # no temporary file left behind


def test_a_failed_write_leaves_no_entry(tmp_path, monkeypatch):
    cache = FeatureCache(tmp_path)
    key = cache_key(params={"y": 2})

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError):
        cache.put(key, {"a": np.ones(3)})
    assert key not in cache
    assert not list(tmp_path.rglob("*.tmp"))


def test_corrupt_entry_is_a_named_error(tmp_path):
    cache = FeatureCache(tmp_path)
    key = cache_key(params={"z": 3})
    cache.path(key).parent.mkdir(parents=True)
    cache.path(key).write_bytes(b"garbage")
    with pytest.raises(CacheError, match=rf"{key}.npz: unreadable cache entry"):
        cache.get(key)


def test_still_images_go_through_the_cache(tmp_path):
    """Still-image features are cached like clips' (a report reads a still-image run's arrays by key)."""
    import numpy as np

    from mertk.data import open_dataset
    from mertk.synth.fake.static import write_fake_fer2013
    from mertk.preprocess.pipeline import config_for_feature, prepare

    write_fake_fer2013(tmp_path / "fer")  # pixels in a table: the key follows the pixels, not a file
    ds = open_dataset("fer2013", tmp_path / "fer")
    config = config_for_feature("gray_face")
    first = prepare(ds, config, cache_dir=tmp_path / "cache", workers=1, progress=False)
    again = prepare(ds, config, cache_dir=tmp_path / "cache", workers=1, progress=False)
    plain = prepare(ds, config, workers=1, progress=False)
    n = len(first.features)
    assert n > 0 and (first.hits, first.misses) == (0, n) and (again.hits, again.misses) == (n, 0)
    assert all(f.key for f in first.features) and [f.key for f in first.features] == [f.key for f in again.features]
    for a, b, c in zip(first.features, again.features, plain.features):
        np.testing.assert_array_equal(a.x, b.x)
        np.testing.assert_array_equal(a.x, c.x)
