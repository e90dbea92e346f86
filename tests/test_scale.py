"""The scale study: rows per run against both floors, written as they come, resumable."""

import pandas as pd
import pytest

from sslkit import scale


@pytest.fixture()
def tiny(monkeypatch):
    monkeypatch.setattr(scale, "DESIGNS", {"tiny": dict(train_size=None, epochs=2, widths=(8, 16))})
    return "tiny"


def test_a_study_measures_three_rulers_at_every_snapshot_and_resumes(monkeypatch, tmp_path, tiny):
    path = tmp_path / "new folder" / "study.csv"  # the study makes its folder
    table = scale.study([tiny], ("vicreg",), (0, 1), path=path, base="smoke", log=lambda *a: None)
    assert set(table.ruler) == set(scale.RULERS)
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
    table[table.seed == 0].to_csv(path, index=False)
    monkeypatch.undo()
    monkeypatch.setattr(scale, "DESIGNS", {"tiny": dict(train_size=None, epochs=2, widths=(8, 16))})
    again = scale.study([tiny], ("vicreg",), (0, 1), path=path, base="smoke", log=lambda *a: None)
    assert sorted(again.seed.unique()) == [0, 1] and len(again) == len(table)


def test_the_pixel_floor_is_measured_on_the_evaluation_images():
    floors = scale.pixel_floor(scale.get_profile("smoke"))
    assert set(floors) == set(scale.RULERS)
    assert all(0.5 < v <= 1 for v in floors.values())  # digits' pixels already cluster well


def test_an_unknown_design_is_named():
    with pytest.raises(ValueError, match="unknown design 'huge'"):
        scale.design_profile("huge")
