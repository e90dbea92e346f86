import os
import pathlib

import pandas as pd
import pytest
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


def test_int_and_float_spellings_share_one_entry():
    assert cache.config_hash({"loss": {"inv_weight": 0}}) == cache.config_hash(
        {"loss": {"inv_weight": 0.0}}
    )
    assert cache.config_hash({"loss": {"inv_weight": 0}}) != cache.config_hash(
        {"loss": {"inv_weight": 1}}
    )
    with pytest.raises(ValueError, match="finite"):
        cache.config_hash({"w": float("nan")})


def test_dataframes_round_trip_through_weights_only_loading(tmp_path):
    df = pd.DataFrame(
        {
            "epoch": [0, 1, 2],
            "phase": ["eval", "step", "step"],
            "step": [float("nan"), 1.0, 2.0],
            "stage": ["stage1", None, None],
            "value": [0.5, 0.25, 0.125],
            "flag": [True, False, True],
        }
    )
    out = cache.cached("demo", {"k": 1}, lambda: {"history": df, "n": 3}, root=tmp_path)
    again = cache.cached("demo", {"k": 1}, lambda: pytest.fail("should load"), root=tmp_path)
    for got in (out, again):
        pd.testing.assert_frame_equal(
            got["history"].astype({"phase": object, "stage": object}),
            df.astype({"phase": object, "stage": object}),
            check_dtype=False,
        )
    assert again["n"] == 3


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_a_planted_pickle_in_the_cache_never_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = {"k": "planted"}
    path = tmp_path / "demo" / f"{cache.config_hash(config)}.pt"
    path.parent.mkdir(parents=True)
    torch.save({"config": cache.normalize_config(config), "result": {"x": _Exploit()}}, path)
    with pytest.warns(cache.CacheWarning, match=str(path.name)):
        result = cache.cached("demo", config, lambda: {"x": 1}, root=tmp_path)
    assert result == {"x": 1}
    assert not (tmp_path / "PWNED").exists()


def test_truncated_entry_is_recomputed_with_a_warning_naming_the_file(tmp_path):
    config = {"k": 1}
    cache.cached("demo", config, lambda: {"v": 1}, root=tmp_path)
    entry = tmp_path / "demo" / f"{cache.config_hash(config)}.pt"
    entry.write_bytes(entry.read_bytes()[:20])
    with pytest.warns(cache.CacheWarning, match=entry.name):
        assert cache.cached("demo", config, lambda: {"v": 2}, root=tmp_path) == {"v": 2}
    assert cache.cached("demo", config, lambda: {"v": 3}, root=tmp_path) == {"v": 2}
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == [entry.name]


def test_failed_compute_leaves_no_entry(tmp_path):
    def boom():
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        cache.cached("demo", {"k": 2}, boom, root=tmp_path)
    assert not (tmp_path / "demo").exists() or not any((tmp_path / "demo").iterdir())


def test_unwritable_cache_warns_and_returns_the_result(tmp_path, monkeypatch):
    def full_disk(obj, f, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cache.torch, "save", full_disk)
    with pytest.warns(cache.CacheWarning, match="could not cache this run: .*No space left"):
        result = cache.cached("demo", {"k": 3}, lambda: {"v": 7}, root=tmp_path)
    assert result == {"v": 7}
    assert not list((tmp_path / "demo").glob("*")), "no temporary file may be left behind"


def test_clean_deletes_only_sslkit_entries_and_refuses_other_folders(tmp_path):
    other = tmp_path / "dot-cache"
    (other / "pip").mkdir(parents=True)
    (other / "pip" / "wheel.whl").write_text("precious")
    with pytest.raises(ValueError, match="does not look like an sslkit cache"):
        cache.clean(other)
    assert (other / "pip" / "wheel.whl").exists()
    root = tmp_path / "runs"
    cache.cached("train", {"k": 1}, lambda: {"v": 1}, root=root)
    cache.cached("evaluate", {"k": 2}, lambda: {"v": 2}, root=root)
    (root / "notes.txt").write_text("mine")
    assert cache.clean(root) == 2
    assert (root / "notes.txt").exists() and (root / cache.MARKER).exists()
    assert not (root / "train").exists()


def test_stale_temporary_files_of_dead_processes_are_removed(tmp_path):
    cache.cached("demo", {"k": 1}, lambda: {"v": 1}, root=tmp_path)
    stale = tmp_path / "demo" / ".0123456789abcdef.pt.999999999.xyz_1.tmp"  # a dead pid
    stale.write_bytes(b"half")
    theirs = tmp_path / "demo" / ".notes.999999999.bak.tmp"  # not a name the cache makes
    theirs.write_bytes(b"someone's")
    cache.cached("demo", {"k": 2}, lambda: {"v": 2}, root=tmp_path)
    assert not stale.exists() and theirs.exists()


def test_the_sweep_never_deletes_through_a_link(tmp_path):
    """With the cache's kind folder a link to a foreign folder, nothing there is deleted."""
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    planted = foreign / ".0123456789abcdef.pt.999999999.xyz_1.tmp"
    planted.write_bytes(b"not the cache's")
    root = tmp_path / "cache"
    root.mkdir()
    (root / "demo").symlink_to(foreign, target_is_directory=True)
    cache.cached("demo", {"k": 1}, lambda: {"v": 1}, root=root)
    assert planted.exists()


def test_cache_root_follows_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SSLKIT_CACHE", str(tmp_path / "here"))
    assert cache.cache_root() == tmp_path / "here"
    monkeypatch.delenv("SSLKIT_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_root() == tmp_path / "xdg" / "sslkit" / "runs"


def test_clean_never_follows_a_symlink_out_of_the_cache(tmp_path):
    """Planted: a link inside the cache to a foreign folder, and a linked entry."""
    root, foreign = tmp_path / "runs", tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "weights.pt").write_text("precious")
    cache.cached("train", {"k": 1}, lambda: {"v": 1}, root=root)
    (root / "evaluate").symlink_to(foreign, target_is_directory=True)
    (root / "train" / "linked.pt").symlink_to(foreign / "weights.pt")
    (root / "mine").mkdir()  # a folder sslkit did not create
    assert cache.clean(root) == 1
    assert (foreign / "weights.pt").read_text() == "precious"
    assert (root / "mine").is_dir()


def test_a_folder_with_other_files_is_never_marked_so_clean_refuses_it(tmp_path):
    """Planted: SSLKIT_CACHE=~/.cache, a folder that holds another project's files."""
    home_cache = tmp_path / "dot-cache"
    (home_cache / "myproj").mkdir(parents=True)
    (home_cache / "myproj" / "model.pt").write_text("precious")
    with pytest.warns(cache.CacheWarning, match="not marked as sslkit's cache"):
        cache.cached("train", {"k": 1}, lambda: {"v": 1}, root=home_cache)
    assert not (home_cache / cache.MARKER).exists()
    with pytest.raises(ValueError, match="does not look like an sslkit cache"):
        cache.clean(home_cache)
    assert (home_cache / "myproj" / "model.pt").exists()


def test_cache_files_honour_the_umask_so_a_group_can_share_them(tmp_path):
    import os
    import stat

    old = os.umask(0o002)
    try:
        cache.cached("train", {"k": 1}, lambda: {"v": 1}, root=tmp_path / "shared")
    finally:
        os.umask(old)
    entry = next((tmp_path / "shared" / "train").glob("*.pt"))
    assert stat.S_IMODE(entry.stat().st_mode) == 0o664  # not mkstemp's 0600


MEASURE = pathlib.Path(cache.__file__).resolve().parent / "measure"


def test_the_measuring_code_is_the_one_cache_version_was_checked_against():
    """A change to sslkit/measure/ must come with a decision about CACHE_VERSION (bumped when
    old results are now wrong) and the new fingerprint recorded beside it in sslkit/cache.py."""
    now = cache.code_fingerprint(MEASURE)
    assert now == cache.MEASURE_CODE, (
        f"the measuring code changed (fingerprint {now}, recorded {cache.MEASURE_CODE}): if old "
        f"cached results are now wrong, bump CACHE_VERSION in sslkit/cache.py; either way set "
        f'MEASURE_CODE = "{now}" there'
    )


def test_the_code_fingerprint_sees_code_but_not_comments_or_docstrings(tmp_path):
    source = (MEASURE / "metrics.py").read_text()
    (tmp_path / "metrics.py").write_text(source)
    before = cache.code_fingerprint(tmp_path)
    assert before == cache.code_fingerprint(tmp_path)
    reworded = source.replace('"""', '"""Reworded. ', 1) + "\n# a comment\n"
    (tmp_path / "metrics.py").write_text(reworded)
    assert cache.code_fingerprint(tmp_path) == before
    (tmp_path / "metrics.py").write_text(source + "\nWHITEN_EPS = 1e-3\n")  # a planted change
    assert cache.code_fingerprint(tmp_path) != before
    (tmp_path / "metrics.py").write_text(source)
    (tmp_path / "extra.py").write_text("y = 2\n")  # a new module counts too
    assert cache.code_fingerprint(tmp_path) != before


def test_no_module_path_enters_a_train_cache_key():
    """A key holds settings, names and numbers only: nothing that spells where code lives (a
    module path, an object's repr), so moving a module never orphans a cached run."""
    from sslkit.experiment.configs import CONFIGS
    from sslkit.experiment.runs import train_config
    from sslkit.profiles import PROFILES

    def strings(x):
        if isinstance(x, dict):
            return [s for v in x.values() for s in strings(v)] + [str(k) for k in x]
        if isinstance(x, list):
            return [s for v in x for s in strings(v)]
        return [x] if isinstance(x, str) else []

    for profile in PROFILES.values():
        for method, loss in CONFIGS.values():
            key = cache.normalize_config(train_config(method, profile, 0, loss, "fingerprint"))
            found = [s for s in strings(key) if "sslkit" in s or "<" in s or " at 0x" in s]
            assert not found, (profile.name, method, found)


@pytest.mark.parametrize(
    "profile, method, seed, loss, key",
    [
        # config_hash of these runs at commit 3459197, before the package was laid out in wings
        ("smoke", "vicreg", 0, {}, "671fa609903dc756"),
        ("cpu", "vicreg", 0, {}, "0b888c7d9d55f13f"),
        ("reference", "simclr", 3, {"temperature": 0.5}, "d698834c610bdc01"),
    ],
)
def test_a_run_cached_before_the_wings_is_served_after_them(profile, method, seed, loss, key):
    """The train cache finds a run by this key: the same key as before the move means the
    entry written then is the one read now (no retraining of anyone's cache)."""
    from sslkit.experiment.runs import train_config
    from sslkit.profiles import get_profile

    config = train_config(method, get_profile(profile), seed, loss, "FP")
    assert cache.config_hash(config) == key
