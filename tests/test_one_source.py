"""The one-source check (_ext/one_source.py) and the sources that book.glue records."""

import importlib.util
import json
from pathlib import Path

from sslkit import book

spec = importlib.util.spec_from_file_location(
    "one_source", Path(__file__).resolve().parents[1] / "_ext" / "one_source.py"
)
one_source = importlib.util.module_from_spec(spec)
spec.loader.exec_module(one_source)

SOURCES = {"gain_first": "this run", "gain_last": "reference", "n_classes": "setting"}


def test_a_planted_mixed_sentence_fails():
    text = (
        "Training adds {glue:text}`gain_first` at the first stage and {glue:text}`gain_last` at "
        "the last, so depth helps. Nothing else here."
    )
    assert one_source.mixed(text, SOURCES) == [
        "Training adds {glue:text}`gain_first` at the first stage and {glue:text}`gain_last` at "
        "the last, so depth helps."
    ]


def test_a_sentence_naming_both_runs_passes_and_naming_one_does_not():
    named = (
        "In this run training adds {glue:text}`gain_first` (e.g. +0.4 at epoch 1.5); in the "
        "reference evidence, {glue:text}`gain_last`."
    )
    assert one_source.mixed(named, SOURCES) == []
    half = "In this run {glue:text}`gain_first`, against {glue:text}`gain_last`."
    assert one_source.mixed(half, SOURCES) == [half]


def test_single_source_sentences_and_settings_pass():
    text = (
        "Over {glue:text}`n_classes` classes the gain is {glue:text}`gain_first`. "
        "The stored runs say {glue:text}`gain_last`, over {glue:text}`n_classes` classes."
    )
    assert one_source.mixed(text, SOURCES) == []


def test_sentences_split_at_ends_not_at_numbers_roles_or_code():
    text = (
        "A gain of +0.4 points (e.g. {term}`NCC <N.C.C>`) and `x.mean()`. Next one!\n\n"
        "- an item {glue:text}`a`.\n- another.\n\n```python\nb = 1. C = 2\n```\n% a: held\n"
    )
    assert one_source.sentences(text) == [
        "A gain of +0.4 points (e.g. {term}`NCC <N.C.C>`) and `x.mean()`.",
        "Next one!",
        "- an item {glue:text}`a`.",
        "- another.",
    ]


def test_a_glued_value_can_name_its_own_run():
    text = (
        "In the book's {glue:text}`x_evidence`, {glue:text}`gain_last`; "
        "this run: {glue:text}`gain_first`."
    )
    sources = {**SOURCES, "x_evidence": "reference"}
    assert one_source.mixed(text, sources) == [text]
    assert one_source.mixed(text, sources, {"x_evidence": "reference evidence (8 seeds)"}) == []


def test_a_caption_mixing_sources_fails(tmp_path):
    caption = "Gain per stage: {glue:text}`gain_first` first, {glue:text}`gain_last` last."
    nb = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": ["Only {glue:text}`gain_first`."]},
            {
                "cell_type": "code",
                "metadata": {"mystnb": {"figure": {"caption": caption}}},
                "source": ["fig = 1"],
            },
        ]
    }
    found = [(w, one_source.mixed(t, SOURCES)) for w, t in one_source.notebook_texts(nb, tmp_path)]
    assert found == [("cell 0", []), ("cell 1, figure caption", [caption])]


def test_glue_records_its_source_where_the_build_reads_it(tmp_path, capsys):
    """book.glue's output carries the source (metadata); the check reads it from glue.json."""
    import pytest

    pytest.importorskip("myst_nb", reason="in the book's build only")
    from IPython.core.interactiveshell import InteractiveShell

    published = []
    shell = InteractiveShell.instance()
    real = shell.display_pub.publish
    shell.display_pub.publish = lambda data, metadata=None, **kw: published.append(metadata)
    try:
        book.glue("x_ref", "+1.0 points", source="reference")
        book.glue("x_live", "+2.0 points")
    finally:
        shell.display_pub.publish = real
    assert [m["sslkit_source"] for m in published] == ["reference", "this run"]
    assert [m["scrapbook"]["name"] for m in published] == ["x_ref", "x_live"]
    path = tmp_path / "page.glue.json"
    path.write_text(json.dumps({"x_ref": {"data": {"text/plain": "'+1.0 points'"},
                                          "metadata": published[0]}}))  # fmt: skip
    assert one_source.glued(path) == ({"x_ref": "reference"}, {"x_ref": "+1.0 points"})
    assert book.GLUED["x_ref"] == ("+1.0 points", "reference")


def test_glue_refuses_an_unknown_source():
    import pytest

    with pytest.raises(ValueError, match="source"):
        book.glue("x", 1, source="the paper")
