"""The per-image evidence (sslkit/evidence/images): its checksums, its verification, and the
findings it decides."""

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sslkit.findings import decide, images, verify

STORE = images.folder()


def _first_run():
    m = images.ImageEvidence().manifest
    return next(iter(m["runs"]))


@pytest.fixture(scope="module")
def copy(tmp_path_factory):
    root = tmp_path_factory.mktemp("evidence")
    shutil.copytree(STORE, root / "images")
    return root


def test_the_package_evidence_matches_its_checksums_and_a_hand_edit_fails(copy):
    ev = images.load_evidence(copy)
    assert ev.manifest["runs"] and ev.seeds("VICReg")
    slug = _first_run()
    path = copy / "images" / "runs" / f"{slug}.npz"
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 1  # one bit of one stored result
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="SHA-256"):
        images.load_evidence(copy)


def test_a_missing_run_file_says_how_to_restore_it(copy, tmp_path):
    root = tmp_path / "partial"
    shutil.copytree(copy / "images", root / "images")
    (root / "images" / "runs" / f"{_first_run()}.npz").unlink()
    with pytest.raises(FileNotFoundError, match="missing.*git checkout"):
        images.load_evidence(root)


def test_every_evidence_file_is_tracked_by_git_not_ignored():
    """The store must travel with a clone: a file git ignores is lost to CI and to readers."""
    repo = Path(__file__).resolve().parents[1]
    if not (repo / ".git").exists():
        pytest.skip("not a git checkout (an installed package)")
    files = [p for p in (repo / "sslkit" / "evidence").rglob("*") if p.is_file()]
    files = [p for p in files if p.name != ".lock" and "__pycache__" not in p.parts]
    rel = [str(p.relative_to(repo)) for p in files]
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *rel], cwd=repo, capture_output=True, text=True
    ).stdout.split()
    assert not ignored, f"the evidence store has files git ignores: {ignored[:5]}"


def test_verification_of_a_run_passes_on_its_own_results_and_fails_on_a_change():
    """The comparison a re-trained run goes through, fed the stored results themselves (no
    training): identical passes; a value moved by 5 points, or 5% of one ruler's images
    flipped, fails and is named."""
    ev = images.load_evidence()
    slug = _first_run()
    stored = ev._load(slug)
    arrays = {k: v.copy() for k, v in stored.items() if k != "values.csv"}
    values = pd.read_csv(io.StringIO(stored["values.csv"].tobytes().decode()))
    found = images.compare_run(slug, arrays, values)
    assert found["largest"] == 0 and found["arrays"] > 100_000
    moved = values.copy()
    row = moved[(moved.metric == "probe") & (moved.epoch == 10)].index[0]
    moved.loc[row, "value"] += 0.05
    with pytest.raises(images.ImageMismatch, match="probe"):
        images.compare_run(slug, arrays, moved)
    flipped = dict(arrays)
    name = next(k for k in arrays if k.startswith("fine/probe/") and k.endswith("/10"))
    bits = np.unpackbits(arrays[name])
    bits[:500] ^= 1
    flipped[name] = np.packbits(bits)
    with pytest.raises(images.ImageMismatch, match=name):
        images.compare_run(slug, flipped, values)


def test_the_whole_run_rotates_over_both_stores():
    picks = {verify.rotating(verify.get_profile("reference"), commit=f"{i:040x}", with_images=True)
             for i in range(400)}  # fmt: skip
    assert any(p[0] == "images" for p in picks) and any(p[0] != "images" for p in picks)


def test_every_decided_finding_has_a_reason_a_threshold_and_a_verdict_of_the_rule():
    df = decide.decisions()
    assert df.key.is_unique
    assert set(df.verdict) <= set(decide.verdict_of.__globals__["VERDICTS"])
    assert df.reason.str.len().min() > 20
    primary = df[df.primary]
    assert set(primary.claim) == {
        "SSL clusters by semantic class", "driven by the regularization term",
        "semantic more than random", "several levels of the label hierarchy",
        "grows with depth", "clustering enhances classification and compresses",
    }  # fmt: skip
    assert primary.holm.notna().all()
    for _, r in df.iterrows():
        if np.isfinite(r.lo):
            assert r.verdict == decide.verdict_of(r.lo, r.hi, r.threshold)
