import torch

from sslkit import cache


def test_cached_computes_once_and_reloads(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"x": torch.arange(3), "note": "hi"}

    a = cache.cached("demo", {"b": 1, "a": [1, 2]}, compute, root=tmp_path)
    b = cache.cached("demo", {"a": [1, 2], "b": 1}, compute, root=tmp_path)  # key order ignored
    assert len(calls) == 1 and torch.equal(a["x"], b["x"]) and b["note"] == "hi"
    cache.cached("demo", {"a": [1, 2], "b": 2}, compute, root=tmp_path)
    assert len(calls) == 2
    cache.cached("demo", {"a": [1, 2], "b": 1}, compute, root=tmp_path, enabled=False)
    assert len(calls) == 3


def test_corrupt_entry_is_recomputed_and_no_temp_files_remain(tmp_path):
    config = {"k": 1}
    cache.cached("demo", config, lambda: {"v": 1}, root=tmp_path)
    entry = tmp_path / "demo" / f"{cache.config_hash(config)}.pt"
    entry.write_bytes(entry.read_bytes()[:20])  # as if a run was killed while writing without atomicity
    assert cache.cached("demo", config, lambda: {"v": 2}, root=tmp_path) == {"v": 2}
    assert cache.cached("demo", config, lambda: {"v": 3}, root=tmp_path) == {"v": 2}
    assert [p.name for p in (tmp_path / "demo").iterdir()] == [entry.name]


def test_failed_compute_leaves_no_entry(tmp_path):
    def boom():
        raise RuntimeError("interrupted")

    try:
        cache.cached("demo", {"k": 2}, boom, root=tmp_path)
    except RuntimeError:
        pass
    assert not (tmp_path / "demo").exists() or not any((tmp_path / "demo").iterdir())


def test_cache_root_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SSLKIT_CACHE", str(tmp_path / "here"))
    assert cache.cache_root() == tmp_path / "here"
