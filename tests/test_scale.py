"""The scale study: rows per run against both floors, written as they come, resumable."""

import pandas as pd
import pytest

from sslkit import scale
from sslkit.findings import floors


@pytest.fixture()
def tiny(monkeypatch):
    monkeypatch.setattr(scale, "DESIGNS", {"tiny": dict(train_size=None, epochs=2, widths=(8, 16))})
    return "tiny"


def test_a_study_measures_three_rulers_at_every_snapshot_and_resumes(monkeypatch, tmp_path, tiny):
    path = tmp_path / "new folder" / "study.csv"  # the study makes its folder
    table = scale.study([tiny], ("vicreg",), (0, 1), path=path, base="smoke", log=lambda *a: None)
    assert set(table.ruler) == set(floors.RULERS)
    assert set(table.epoch) == {0, 1, 2}  # epoch 0 is the untrained floor
    assert set(table.seed) == {0, 1} and (table.train_seconds > 0).all()
    assert table.variance_hinge.notna().all() and table.embedding_spread.notna().all()
    assert pd.read_csv(path).shape == table.shape
    assert (path.parent / "manifest.json").is_file()
    # resumable: a second call measures nothing; a lost run is measured again, alone
    monkeypatch.setattr(scale, "train", lambda *a, **k: pytest.fail("measured again"))
    assert scale.study([tiny], ("vicreg",), (0, 1), path=path, base="smoke", log=print).shape == (
        table.shape
    )
    stale = table.copy()
    stale.loc[stale.seed == 1, "config"] = "from older code"  # measured by another configuration
    stale.to_csv(path, index=False)
    monkeypatch.undo()
    monkeypatch.setattr(scale, "DESIGNS", {"tiny": dict(train_size=None, epochs=2, widths=(8, 16))})
    again = scale.study([tiny], ("vicreg",), (0, 1), path=path, base="smoke", log=lambda *a: None)
    assert sorted(again.seed.unique()) == [0, 1] and len(again) == len(table)
    assert "from older code" not in set(again.config)  # the stale run was measured again


def test_the_pixel_floor_is_measured_on_the_evaluation_images():
    pixels = floors.compute_pixel_floor(scale.get_profile("smoke"))
    assert set(pixels) == set(floors.RULERS)
    assert all(0.5 < v <= 1 for v in pixels.values())  # digits' pixels already cluster well


def test_an_unknown_design_is_named():
    with pytest.raises(ValueError, match="unknown design 'huge'"):
        scale.design_profile("huge")


def planted_study(gains: dict, seconds: dict, pixel_gap=0.05):
    """A study table: each design's final value = untrained + its gain (+ a little seed noise)."""
    rows = []
    for design, gain in gains.items():
        for method in scale.STUDY_METHODS:
            for seed in range(3):
                for ruler in floors.RULERS:
                    base = 0.5 + 0.01 * seed
                    for epoch, value in ((0, base), (5, base + gain + 0.002 * seed)):
                        rows.append(
                            dict(design=design, method=method, seed=seed, epoch=epoch,
                                 ruler=ruler, value=value, train_seconds=seconds[design])
                        )  # fmt: skip
    return pd.DataFrame(rows), {r: 0.5 + pixel_gap for r in floors.RULERS}


def test_the_reference_is_the_cheapest_design_above_both_floors():
    table, pixels = planted_study(
        {"small": 0.02, "long": 0.2, "wide": 0.3}, {"small": 10, "long": 60, "wide": 200}
    )
    s = scale.study_margins(table, pixels)
    row = s[(s.design == "long") & (s.method == "vicreg") & (s.ruler == "ncc")].iloc[0]
    assert row.over_untrained == pytest.approx(0.2 + 0.002) and row.seeds == 3
    assert row.over_pixels == pytest.approx(0.2 + 0.002 + 0.51 - 0.55)
    design, meets, checks = scale.choose_reference(s)
    assert (design, meets) == ("long", True)  # "small" stays below the pixels
    assert not checks.loc[("small", "vicreg"), "above pixels, NCC"]


def test_with_no_design_above_both_floors_the_best_is_named_as_not_meeting_it():
    table, pixels = planted_study({"a": 0.01, "b": 0.03}, {"a": 10, "b": 20}, pixel_gap=0.2)
    design, meets, _ = scale.choose_reference(scale.study_margins(table, pixels))
    assert meets is False and design == "a"  # both pass the same checks: the cheaper one


def test_the_reference_profile_is_the_design_the_stored_study_chose():
    """The stored study, read by the rule fixed in code, picks the `reference` profile."""
    from sslkit.runs import TRAIN_FIELDS

    study = scale.study_margins(scale.load_study(), scale.load_pixel_floor())
    design, meets, _ = scale.choose_reference(study)
    chosen, reference = scale.design_profile(design), scale.get_profile("reference")
    assert meets
    assert all(
        getattr(chosen, f) == getattr(reference, f) for f in TRAIN_FIELDS if f != "eval_every"
    )
    assert len(reference.seeds) >= 8
