"""Engine cache: the key covers every field, and a stale, tampered or unverifiable engine is
refused and rebuilt, never loaded. Real files and bytes; no TensorRT involved."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from edgeperc.engine_cache import EngineCache, EngineKey, cache_key
from edgeperc.errors import EngineCacheError

BASE = dict(
    onnx_sha256="a" * 64,
    tensorrt_version="10.3.0",
    gpu_name="Orin (8 SMs)",
    compute_capability="8.7",
    precision="fp16",
    profile_shapes={"images": ((1, 3, 64, 64), (1, 3, 64, 64), (8, 3, 64, 64))},
    plugin_library_sha256=None,
    dla_core=None,
    builder_optimization_level=3,
)

# One changed value per field; the test below checks this table covers every field.
CHANGED = {
    "onnx_sha256": "b" * 64,
    "tensorrt_version": "10.3.1",
    "gpu_name": "Orin (16 SMs)",
    "compute_capability": "8.6",
    "precision": "int8",
    "profile_shapes": {"images": ((1, 3, 64, 64), (1, 3, 64, 64), (4, 3, 64, 64))},
    "plugin_library_sha256": "c" * 64,
    "dla_core": 0,
    "dla_gpu_fallback": True,
    "builder_optimization_level": 5,
    "sparsity": True,
    "cache_format": 2,
}

ENGINE = bytes(range(256)) * 40
MANIFEST = {"inputs": [{"name": "images", "shape": ["batch", 3, 64, 64], "dtype": "float32"}], "outputs": []}


def key(**update) -> EngineKey:
    return EngineKey(**(BASE | update))


def test_changed_table_covers_every_key_field():
    assert set(CHANGED) == set(EngineKey.model_fields)


@pytest.mark.parametrize("field", sorted(CHANGED))
def test_changing_any_single_field_changes_the_key(field):
    assert cache_key(key(**{field: CHANGED[field]})) != cache_key(key())


def test_profile_input_name_and_extra_inputs_change_the_key():
    shapes = BASE["profile_shapes"]["images"]
    assert cache_key(key(profile_shapes={"image": shapes})) != cache_key(key())
    assert cache_key(key(profile_shapes={"images": shapes, "mask": shapes})) != cache_key(key())


def test_key_is_stable_for_equal_fields_and_dict_order():
    shapes = BASE["profile_shapes"]["images"]
    a = key(profile_shapes={"a": shapes, "b": shapes})
    b = key(profile_shapes={"b": shapes, "a": shapes})
    assert cache_key(a) == cache_key(b) == cache_key(key(profile_shapes={"a": shapes, "b": shapes}))
    # lists and tuples are the same shapes
    c = key(profile_shapes={"a": [list(s) for s in shapes], "b": shapes})
    assert cache_key(c) == cache_key(a)
    assert len(cache_key(a)) == 64


def test_store_then_load_round_trip(tmp_path):
    cache = EngineCache(tmp_path / "cache")
    path = cache.store(key(), ENGINE, json.dumps(MANIFEST))
    digest = cache_key(key())
    assert path == tmp_path / "cache" / f"{digest}.engine" == cache.path_for(key())
    assert sorted(p.name for p in path.parent.iterdir()) == [f"{digest}.engine", f"{digest}.engine.sha256", f"{digest}.json"]
    assert cache.load(key()) == ENGINE
    engine_bytes, manifest = cache.load_with_manifest(key())
    assert engine_bytes == ENGINE and manifest == MANIFEST
    record = json.loads((path.parent / f"{digest}.json").read_text())
    assert record["digest"] == digest and record["key"]["gpu_name"] == "Orin (8 SMs)"
    assert not list(path.parent.glob(".*"))  # no temp files left behind


def test_lookup_is_none_when_absent(tmp_path):
    assert EngineCache(tmp_path).lookup(key()) is None


def test_store_refuses_empty_engine(tmp_path):
    with pytest.raises(EngineCacheError):
        EngineCache(tmp_path).store(key(), b"", MANIFEST)


def test_other_key_does_not_see_the_engine(tmp_path):
    cache = EngineCache(tmp_path)
    cache.store(key(), ENGINE, MANIFEST)
    assert cache.lookup(key(precision="int8")) is None


@pytest.fixture()
def stored(tmp_path) -> tuple[EngineCache, Path]:
    cache = EngineCache(tmp_path)
    return cache, cache.store(key(), ENGINE, MANIFEST)


def test_tampered_engine_byte_is_refused(stored):
    cache, path = stored
    data = bytearray(path.read_bytes())
    data[1000] ^= 0x01
    path.write_bytes(bytes(data))
    for call in (cache.load, cache.lookup):
        with pytest.raises(EngineCacheError, match="sha256"):
            call(key())


def test_truncated_engine_is_refused(stored):
    cache, path = stored
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(EngineCacheError, match="sha256"):
        cache.load(key())


def test_missing_checksum_is_refused(stored):
    cache, path = stored
    path.with_name(path.name + ".sha256").unlink()
    with pytest.raises(EngineCacheError, match="checksum file .* missing"):
        cache.lookup(key())


def test_garbled_checksum_is_refused(stored):
    cache, path = stored
    path.with_name(path.name + ".sha256").write_text("not-a-hash\n")
    with pytest.raises(EngineCacheError, match="malformed"):
        cache.load(key())


def test_edited_key_json_is_refused(stored):
    cache, path = stored
    record_path = path.with_suffix(".json")
    record = json.loads(record_path.read_text())
    record["key"]["tensorrt_version"] = "10.4.0"
    record_path.write_text(json.dumps(record))
    with pytest.raises(EngineCacheError, match="edited"):
        cache.load(key())


def test_edited_key_with_matching_digest_is_still_refused(stored):
    cache, path = stored
    record_path = path.with_suffix(".json")
    record = json.loads(record_path.read_text())
    record["key"]["precision"] = "int8"
    record["digest"] = cache_key(key(precision="int8"))  # a consistent record, but for another key
    record_path.write_text(json.dumps(record))
    with pytest.raises(EngineCacheError, match="differs from the requested key in precision"):
        cache.load(key())


def test_missing_or_unreadable_key_record_is_refused(stored):
    cache, path = stored
    record_path = path.with_suffix(".json")
    record_path.write_text("{not json")
    with pytest.raises(EngineCacheError, match="unreadable"):
        cache.load(key())
    record_path.unlink()
    with pytest.raises(EngineCacheError, match="missing"):
        cache.load(key())


def test_get_or_build_builds_once_then_hits(tmp_path):
    cache = EngineCache(tmp_path)
    calls = []

    def build() -> bytes:
        calls.append(1)
        return ENGINE

    assert cache.get_or_build(key(), build, MANIFEST) == ENGINE
    assert cache.get_or_build(key(), build, MANIFEST) == ENGINE
    assert len(calls) == 1


@pytest.mark.parametrize("damage", ["tamper_engine", "edit_key", "drop_checksum"])
def test_get_or_build_rebuilds_after_damage_and_returns_the_rebuilt_bytes(stored, damage, caplog):
    cache, path = stored
    if damage == "tamper_engine":
        data = bytearray(path.read_bytes())
        data[0] ^= 0xFF
        path.write_bytes(bytes(data))
    elif damage == "edit_key":
        record = json.loads(path.with_suffix(".json").read_text())
        record["key"]["gpu_name"] = "Orin (16 SMs)"
        path.with_suffix(".json").write_text(json.dumps(record))
    else:
        path.with_name(path.name + ".sha256").unlink()
    rebuilt = b"REBUILT" + ENGINE
    with caplog.at_level(logging.WARNING, logger="edgeperc.engine_cache"):
        result = cache.get_or_build(key(), lambda: rebuilt, MANIFEST)
    assert result == rebuilt
    assert any("rebuilding engine" in r.getMessage() and "refusing" in r.getMessage() for r in caplog.records)
    assert cache.load(key()) == rebuilt  # the new triple verifies


def test_get_or_build_does_not_store_when_build_fails(tmp_path):
    cache = EngineCache(tmp_path)

    def fail() -> bytes:
        raise RuntimeError("builder exploded")

    with pytest.raises(RuntimeError):
        cache.get_or_build(key(), fail, MANIFEST)
    assert cache.lookup(key()) is None
