"""Helpers the chapters share: set-up, glued numbers, findings and the chapter scoreboard.

- :func:`setup` fixes threads, the plotting style and the profile, and prints them.
- :func:`glue` records a value for the prose (myst-nb's ``glue`` when the book is built;
  nothing, or a plain print, in Colab or Jupyter where myst-nb may be missing).
- :func:`glue_finding` measures a :class:`~sslkit.paper.Finding` and glues its numbers.

The build policy: the prose states the verdicts of the **reference evidence store**
(:mod:`sslkit.store`; 8 seeds at a scale where SSL has learned), recorded once in
:mod:`sslkit.recorded`. In the book's build (``SSLKIT_BOOK_BUILD=1``, set by ``make book``)
a stated verdict that differs from the recorded one fails the cell, so the text can never
contradict the numbers. The chapters' live runs (``cpu``, 3 seeds) are shown beside the
reference and never checked against it: where they differ, the chapter says so. Everywhere
else (Colab, another profile or seed, a student's edit) nothing raises.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pandas as pd
import torch

from ..experiment import store
from ..experiment.analysis import holm, one_sided_p, t_interval
from ..experiment.configs import RATIOS, store_only, trained
from ..experiment.cost import fmt_duration
from ..experiment.plan import chapter_measuring, chapter_plan, training_seconds
from ..findings import verify
from ..findings.decide import decision, decisions
from ..findings.floors import RULER_NAMES, RULERS
from ..findings.images import load_evidence
from ..findings.measurements import gain
from ..findings.paper import CLUSTERING, PER_METHOD, PRIMARY, finding, per_method, ruler_keys
from ..findings.recorded import DECIDED
from ..findings.recorded import PROFILE as RECORDED_PROFILE
from ..findings.verdict import BELOW, REVERSED, UNDECIDED
from ..measure import targets
from ..measure.evaluation import EVAL_SUBSETS
from ..profiles import Profile, get_profile
from . import figures
from .plots import use_style

__all__ = [
    "setup",
    "glue_decision",
    "ANSWER_KEYS",
    "decisions_table",
    "glue",
    "this_run_table",
    "pct",
    "points",
    "chapter_titles",
    "glue_finding",
    "scoreboard",
    "show_scoreboard",
    "strict",
    "stated",
    "evidence_line",
    "evidence",
    "reading",
    "rulers_table",
    "primary_table",
    "per_method_table",
    "ratio_arms_table",
    "BOOK_PROFILE",
]

# The profile (and its default seeds) the book's prose is written for.
BOOK_PROFILE = "cpu"


def setup(
    profile: str | None = None, threads: int | None = None, chapter: str | None = None
) -> Profile:
    """Set torch's CPU threads (``$OMP_NUM_THREADS`` or 2), the book's plot style (in the
    book's build, with a phone rendering of each figure: :mod:`sslkit.teach.figures`), pandas'
    display of whole cell texts, and return the profile (``$SSLKIT_PROFILE``, else ``cpu``).

    Glue the sizes the prose names (``reference_seeds``, ``live_seeds``, ``n_draws``). With
    ``chapter`` (e.g. ``"04b"``), also glue the chapter's run time from empty caches for this
    profile (:mod:`sslkit.plan`): training its ``run_count`` runs (``train_time_cpu``,
    ``train_time_t4``, estimated from their operations), measuring them (``measure_time``,
    timed on 2 CPU cores), and the two together (``run_time_cpu``, ``run_time_t4``).
    """
    threads = threads or int(os.environ.get("OMP_NUM_THREADS", "2") or 2)
    torch.set_num_threads(threads)
    use_style()
    if os.environ.get("SSLKIT_BOOK_BUILD", "") == "1":
        figures.register()  # each figure gets a second rendering for phones
    pd.set_option("display.max_colwidth", None)  # a table shows its text whole, never "…"
    prof = get_profile(profile)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(
        f"profile: {prof.name} ({prof.dataset}, {prof.backbone}, {prof.epochs} epochs, seeds "
        f"{list(prof.seeds)}) | "
        f"device: {device} | torch {torch.__version__} | threads: {torch.get_num_threads()}"
    )
    # the sizes the prose names: seeds of the reference evidence and of this run, draws of a
    # random control
    glue("reference_seeds", len(get_profile(RECORDED_PROFILE).seeds), source=REFERENCE)
    glue("live_seeds", len(prof.seeds))
    glue("n_draws", targets.DRAWS, source=SETTING)
    if chapter is not None:
        _glue_run_time(chapter, prof)
    return prof


def _glue_run_time(chapter: str, prof: Profile) -> None:
    """Glue a chapter header's run time from empty caches, as :func:`sslkit.plan.chapter_time`
    adds it up: ``run_count`` runs, ``train_time_cpu``/``_t4`` (estimated from operations),
    ``measure_time`` (timed on 2 CPU cores) and ``run_time_cpu``/``_t4`` (their sums). In the
    book's build, a chapter whose measuring is not timed for the book's profile is an error."""
    runs = chapter_plan(chapter, prof, cache=False)
    measuring = chapter_measuring(chapter, prof)
    glue("run_count", len(runs))
    for device, name in (("cpu", "cpu"), ("T4", "t4")):
        training = training_seconds(runs, device)
        glue(f"train_time_{name}", fmt_duration(training))
        glue(f"run_time_{name}", fmt_duration(training + (measuring or 0.0)))
    if measuring is None and strict(prof):
        raise ValueError(
            f"chapter {chapter}'s measuring time is not in "
            "sslkit.experiment.measured.MEASURING_SECONDS: "
            "time it with `make bench-chapters` and enter it there"
        )
    glue("measure_time", "not timed" if measuring is None else fmt_duration(measuring))


# Where a glued value comes from (:func:`glue`'s ``source``): the reader's own live run of the
# chapter, the book's stored evidence (the reference store and the per-image evidence), or a
# setting that is the same for both (a dataset's size, a loss weight, a chance level). The
# book's build checks that a sentence using values of both runs names each (``_ext/one_source.py``).
THIS_RUN, REFERENCE, SETTING = "this run", "reference", "setting"
SOURCES = (THIS_RUN, REFERENCE, SETTING)
# The metadata key of a glued output that holds its source (read by ``_ext/one_source.py``).
SOURCE_KEY = "sslkit_source"
# What this session glued: name -> (value, source); :func:`this_run_table` reads it.
GLUED: dict[str, tuple[object, str]] = {}


def glue(name: str, value, display: bool = False, source: str = THIS_RUN):
    """Make ``value`` available to the prose as ``{glue:text}`name```; returns nothing.

    ``source`` says where the value comes from: ``"this run"`` (the chapter's live run),
    ``"reference"`` (the stored evidence) or ``"setting"`` (the same for both). It is stored
    with the glued output (metadata ``sslkit_source``), where the book's build checks that no
    sentence mixes the two runs' values without naming each. Without myst-nb (Colab, a plain
    Jupyter) nothing is shown: :func:`this_run_table` sets a chapter's key numbers beside the
    book's."""
    if source not in SOURCES:
        raise ValueError(f"glue source must be one of {SOURCES}, got {source!r}")
    GLUED[name] = (value, source)
    try:  # lazy: myst-nb is there only when the book is built
        from IPython import display as ipy
        from IPython.core.formatters import format_display_data
        from myst_nb.ext.glue import GLUE_PREFIX
    except ImportError:  # Colab / plain Jupyter: nothing to glue into, nothing printed
        return None
    # myst_nb.glue's own output, with the value's source added to its metadata
    bundle, metadata = format_display_data(value)
    prefix = "" if display else GLUE_PREFIX
    metadata["scrapbook"] = dict(name=name, mime_prefix=prefix)
    metadata[SOURCE_KEY] = source
    ipy.display({prefix + k: v for k, v in bundle.items()}, raw=True, metadata=metadata)
    return None


# The tag of a chapter's code cell whose ``BOOK_VALUES = {}`` line the Colab copy fills with the
# book's glued values (:func:`sslkit.teach.colab.fill_book_values`).
BOOK_VALUES_TAG = "book-values"


def this_run_table(names: dict[str, str], book_values: dict[str, str] | None = None):
    """This run's values of a chapter's key numbers beside the book's, one row each.

    ``names``: glued name → what it measures (glued earlier in this session);
    ``book_values``: glued name → the text the book's build glued (its Colab copy writes them
    into the cell's ``BOOK_VALUES`` line). In the book's build this run is the book's run, so
    both columns agree; elsewhere a value the cell does not hold shows "–"."""
    building = os.environ.get("SSLKIT_BOOK_BUILD", "") == "1"
    book_values = book_values or {}
    rows = []
    for name, what in names.items():
        if name not in GLUED:
            raise ValueError(f"{name!r} is not glued yet: run the chapter's cells above first")
        if GLUED[name][1] != THIS_RUN:  # a stored number would pose as the reader's own
            raise ValueError(
                f"{name!r} was glued from the {GLUED[name][1]}, not from this run: the table "
                "sets this run's numbers beside the book's; glue this run's value and name that"
            )
        ours = str(GLUED[name][0])
        rows.append(
            {"measure": what, "this run": ours,
             "the book": book_values.get(name, ours if building else "–")}
        )  # fmt: skip
    return pd.DataFrame(rows).set_index("measure")


def pct(x: float, digits: int = 1) -> str:
    """An accuracy in [0, 1] as a percentage string, e.g. ``pct(0.8234) == '82.3%'``."""
    return f"{100 * x:.{digits}f}%"


def points(x: float, digits: int = 1) -> str:
    """A difference of accuracies in percentage points, signed: ``points(0.141) == '+14.1
    points'``."""
    return f"{100 * x:+.{digits}f} points"


def chapter_titles(folder: Path | None = None) -> dict[str, str]:
    """Each chapter's title by its number (``"03"``): the first heading of its notebook in the
    book's ``chapters/`` folder, the one place a title is written. Empty where the notebooks
    are not at hand (a chapter opened on its own in Colab)."""
    folder = Path(folder) if folder else Path(__file__).resolve().parents[2] / "chapters"
    titles = {}
    for path in sorted(folder.glob("*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        text = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        heading = re.search(r"^# (.+)$", text, re.M)
        if heading:
            titles[path.stem.split("_")[0]] = heading[1].strip()
    return titles


def strict(profile: Profile, seeds=None) -> bool:
    """Whether this is the book's own build of its live runs (``cpu`` profile, default seeds),
    where a live verdict that the prose states must match (only for a finding the evidence
    store does not hold yet)."""
    return (
        os.environ.get("SSLKIT_BOOK_BUILD", "") == "1"
        and profile.name == BOOK_PROFILE
        and tuple(seeds or profile.seeds) == get_profile(BOOK_PROFILE).seeds
    )


def stated(key: str):
    """The finding's :class:`~sslkit.paper.Verdict` on the reference evidence store (what the
    prose states), or ``None`` where the store does not hold its runs. Never trains."""
    try:
        with store_only():
            return finding(key).measure(RECORDED_PROFILE)
    except store.NotStored:
        return None


# What :func:`glue_finding` glues for a finding ``key``: ``{key}_{part}`` for each part, from the
# reference evidence (the prose states it), and ``{key}_live_{part}`` from this run.
FINDING_GLUES = ("effect", "ci", "verdict", "value", "control")


def _parts(f, v) -> dict:
    return {
        "effect": f.fmt(v.effect),
        "ci": f"{f.fmt(v.lo)} to {f.fmt(v.hi)}",
        "verdict": v.verdict,
        "value": f.fmt_level(v.value),
        "control": f.fmt_level(v.control),
    }


def _line(f, v) -> str:
    return (
        f"{f.claim}: effect {f.fmt(v.effect)} (95% CI {f.fmt(v.lo)} to {f.fmt(v.hi)}, {v.n} "
        f"seeds; threshold {f.fmt(f.threshold)}) → {v.verdict}"
    )


def glue_finding(key: str, profile: Profile, seeds=None):
    """Measure the finding ``key`` on the reference evidence and on this run, and glue both:
    ``{key}_effect``, ``_ci``, ``_verdict``, ``_value``, ``_control`` from the evidence the
    prose states (the store; this run where the store does not hold the finding), and the same
    with ``{key}_live_`` from this run. Returns this run's :class:`~sslkit.paper.Verdict`.

    In the book's build (``SSLKIT_BOOK_BUILD=1``) a stated verdict other than the one recorded
    (:data:`sslkit.recorded.RECORDED`) raises ``AssertionError``: the prose would contradict
    the numbers. A live verdict that differs from the reference prints one line; it never
    raises, in the book's build or a reader's run.
    """
    f = finding(key)
    live = f.measure(profile, seeds)
    ref = stated(key)
    main = ref if ref is not None else live
    source = REFERENCE if ref is not None else THIS_RUN
    for part, value in _parts(f, main).items():
        glue(f"{key}_{part}", value, source=source)
    for part, value in _parts(f, live).items():
        glue(f"{key}_live_{part}", value)
    glue(f"{key}_evidence", _evidence_label(ref, main), source=source)
    _check_stated(f, ref, main, f.book_verdict, "The book's text", profile, seeds)
    print(f"reference: {_line(f, ref)}" if ref is not None else "reference: not in the store")
    print(f"this run:  {_line(f, live)}")
    if ref is not None and live.verdict != ref.verdict:
        print(
            f"ⓘ This run ({profile.name}, {live.n} seeds) reads '{live.verdict}' where the "
            f"reference evidence ({ref.n} seeds) reads '{ref.verdict}': a smaller scale and "
            "fewer seeds can differ (see the chapter 'How big must the experiment be?')."
        )
    return live


def _checked(ref, profile: Profile, seeds) -> bool:
    """Whether a verdict is held to the text: in the book's build, for the reference evidence,
    or for this run where the build's own profile and seeds are measured (:func:`strict`)."""
    return os.environ.get("SSLKIT_BOOK_BUILD", "") == "1" and (
        ref is not None or strict(profile, seeds)
    )


def _check_stated(f, ref, v, promised: str, text: str, profile: Profile, seeds) -> None:
    """The one check of prose against numbers: where ``text`` states ``promised`` for the
    finding ``f`` and its evidence says otherwise, raise in the book's build (:func:`_checked`)
    and print one line elsewhere, so that a reader's run never stops on a claim."""
    if v.verdict == promised:
        return
    message = (
        f"{text} says '{promised}' for {f.key}; the {_evidence_label(ref, v)} says "
        f"'{v.verdict}'. [{_line(f, v)}]"
    )
    if _checked(ref, profile, seeds):
        raise AssertionError(
            message + " The prose of the book would contradict its numbers: update the text "
            "(never the threshold)."
        )
    print(f"ⓘ {message}")


def _evidence_label(ref, v) -> str:
    if ref is None:
        return f"this run ({v.n} seeds)"
    return f"reference evidence ({v.n} seeds)"


def _cell(f, v) -> str:
    if v is None:
        return "not in the store"
    lo, hi = f.fmt(v.lo, short=True), f.fmt(v.hi, short=True)
    return f"{f.fmt(v.effect, short=True)} [{lo}, {hi}]: {v.verdict}"


def scoreboard(keys, profile: Profile, seeds=None) -> pd.DataFrame:
    """One row per finding: claim, control, threshold, and two columns of effect [95% CI]:
    verdict, one from the **reference** evidence store (8 seeds, what the prose states) and
    one from **this run**, with the verdict the book states. Never raises on a verdict."""
    rows = []
    for key in keys:
        f = finding(key)
        ref, live = stated(key), f.measure(profile, seeds)
        rows.append(
            {
                "claim": f.claim,
                "control": f.control,
                "threshold": f.fmt(f.threshold, short=True),
                "reference": _cell(f, ref),
                "this run": _cell(f, live),
                "verdict (reference)": ref.verdict if ref is not None else "",
                "verdict (this run)": live.verdict,
                "the book states": f.book_verdict,
            }
        )
    return pd.DataFrame(rows).set_index("claim")


def show_scoreboard(keys, profile: Profile, seeds=None):
    """The chapter's closing scoreboard as a styled table (measures what is not measured yet),
    with the evidence it shows underneath."""
    table = scoreboard(keys, profile, seeds)
    for claim, row in table.iterrows():
        if row["verdict (reference)"] and row["verdict (this run)"] != row["verdict (reference)"]:
            print(f"ⓘ This run differs from the reference evidence for: {claim}")
    print(evidence_line(profile))
    shown = table.drop(columns=["verdict (reference)", "verdict (this run)"])
    return shown.style.set_properties(**{"text-align": "left"}).set_table_styles(
        [{"selector": "td, th", "props": "font-size: 0.85em; padding: 2px 6px;"}]
    )


def evidence(keys, profile: Profile, seeds=None) -> list:
    """The verdict the prose states for each finding: the reference evidence where the store
    holds it, else this run's."""
    return [stated(k) or finding(k).measure(profile, seeds) for k in keys]


def reading(verdicts: dict) -> str:
    """What the three rulers say together about one clustering claim over one floor, from their
    verdicts (``{"ncc": ..., "whitened_ncc": ..., "probe": ...}``):

    - *class information added*: raw NCC and at least one of the linear-map-proof rulers
      (whitened NCC, the probe) held;
    - *class information added, size undecided*: raw NCC held, and the best of the two others
      is above 0 with an interval that contains the threshold;
    - *geometry only*: raw NCC held, and whitened NCC and the probe both not held (or
      reversed): the features were reshaped, and no class information was added that a linear
      map of the floor's features lacked;
    - *geometry, and a small gain in class information*: raw NCC held, and the best of the two
      others is positive but below the threshold;
    - *a small clustering gain*: raw NCC positive but below the threshold;
    - *no clustering gain*: raw NCC not held or reversed;
    - *undecided*: any other combination (an inconclusive ruler decides nothing).
    """
    ncc, others = verdicts["ncc"], {verdicts["whitened_ncc"], verdicts["probe"]}
    if ncc == "held":
        if "held" in others:
            return "class information added"
        if others <= {"not held", REVERSED}:
            return "geometry only"
        if UNDECIDED in others:
            return "class information added, size undecided"
        if "inconclusive" not in others:
            return "geometry, and a small gain in class information"
        return "undecided"
    return {BELOW: "a small clustering gain", "not held": "no clustering gain",
            REVERSED: "no clustering gain"}.get(ncc, "undecided")  # fmt: skip


def rulers_table(profile: Profile, seeds=None) -> pd.DataFrame:
    """One row per clustering claim and floor (the untrained network, raw pixels): the effect
    [95% CI]: verdict on each of the three rulers (reference evidence where stored, else this
    run), and what they say together (:func:`reading`)."""
    rows = []
    for key, config in CLUSTERING.items():
        keys = ruler_keys(key)
        for floor in ("untrained", "pixels"):
            cells, verdicts = {}, {}
            for ruler in RULERS:
                k = keys[ruler, floor]
                (v,) = evidence([k], profile, seeds)
                cells[RULER_NAMES[ruler]] = _cell(finding(k), v)
                verdicts[ruler] = v.verdict
            rows.append(
                {"configuration": config, "over": "untrained network" if floor == "untrained"
                 else "raw pixels", **cells, "reading": reading(verdicts)}
            )  # fmt: skip
    return pd.DataFrame(rows).set_index(["configuration", "over"])


# What each primary claim's paragraph of "What the evidence says" names besides the claim's
# own finding: a secondary finding that sharpens it (the headroom reading, the full width, the
# coarse level against its control, the dose-response).
# What the answer box states: the primary measurement of each of the six claims, and the
# companions its sentences name (sslkit.findings.decide keys, on the per-image evidence).
ANSWER_KEYS = {
    "SSL clusters by semantic class": ("clusters_whitened_ncc", "vicreg_over_pixels_whitened_ncc"),
    "driven by the regularization term": (
        "regularization_gain_whitened_ncc", "regularization_gain_ncc",
        "regularization_over_invariance_ncc", "both_terms_probe",
    ),
    "semantic more than random": ("semantic_over_random",),
    "several levels of the label hierarchy": ("hierarchy_matched_ncc",),
    "grows with depth": (
        "depth_slope_whitened_ncc_equal", "depth_slope_whitened_ncc_equal_supervised",
        "depth_slope_ncc_equal",
    ),
    "clustering enhances classification and compresses": (
        "clustering_helps_classification_ncc", "clustering_helps_classification_whitened_ncc",
        "compression_tracks_clustering",
    ),
    "why": ("imbalance_fall_vicreg_whitened_ncc", "linear_reshaping"),
}  # fmt: skip


def written_for(path) -> dict[str, str]:
    """The verdicts a text was written for: its MyST comment lines ``% key: verdict``."""
    found = {}
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.startswith("% ") and ": " in line and " " not in line[2:].split(": ")[0]:
            key, verdict = line[2:].split(": ", 1)
            found[key.strip()] = verdict.strip()
    return found


def answer(box=None) -> pd.DataFrame:
    """Glue what the book's "What the evidence says" box states: for every finding of
    :data:`ANSWER_KEYS` (decided on the per-image evidence, :mod:`sslkit.findings.decide`),
    ``answer_{key}_effect``, ``_ci``, ``_verdict``; and ``answer_seeds`` (VICReg's stored
    seeds), ``answer_n_test`` (test images).

    In the book's build a verdict other than the recorded one
    (:data:`sslkit.findings.recorded.DECIDED`) raises, and so does one other than the verdict
    the text of ``box`` (the box's Markdown file) was written for (:func:`written_for`): the
    sentences around a glued verdict say what that verdict means. Elsewhere (a reader's run)
    a difference prints one line. Returns one row per glued finding."""
    promised = written_for(box) if box is not None else {}
    building = os.environ.get("SSLKIT_BOOK_BUILD", "") == "1"
    rows = []
    for claim, keys in ANSWER_KEYS.items():
        for key in keys:
            d = decision(key)
            for part, text in _decision_parts(d).items():
                glue(f"answer_{key}_{part}", text, source=REFERENCE)
            for source, said in (("the record (DECIDED)", DECIDED.get(key)),
                                 (str(box), promised.get(key, d.verdict))):  # fmt: skip
                if said != d.verdict:
                    message = (f"{source} says '{said}' for {key}; the per-image evidence says "
                               f"'{d.verdict}' ({d}). Update the text and the record "
                               "together.")  # fmt: skip
                    if building:
                        raise AssertionError(message)
                    print("ⓘ " + message)
            rows.append(dict(claim=claim, finding=key, effect=str(d), verdict=d.verdict))
    ev = load_evidence()
    glue("answer_seeds", len(ev.seeds("VICReg")), source=REFERENCE)
    # the claims whose primary measurements stay above threshold after Holm's correction over
    # the six claims (decide.decisions' column holm)
    table = decisions()
    survive = table[table.primary & (table.holm == 1)].claim.unique()
    if table[table.primary].holm.isna().any():  # a claim's p could not be computed
        raise ValueError("Holm's correction is missing for a primary claim: see decide.decisions")
    glue("answer_holm", ", ".join(f"“{c}”" for c in survive) or "none", source=REFERENCE)
    n_test = ev.bits("VICReg", "fine/ncc/3/full/10", ev.seeds("VICReg")[:1], False).shape[1]
    glue("answer_n_test", f"{n_test:,}", source=SETTING)
    return pd.DataFrame(rows)


def answer_findings() -> set[str]:
    """The findings whose verdicts :func:`answer` states (and its box's text was written for)."""
    return {k for keys in ANSWER_KEYS.values() for k in keys}


def answer_names() -> set[str]:
    """The names :func:`answer` glues (the box's prose may use any of them)."""
    names = {"answer_seeds", "answer_n_test", "answer_holm"}
    for key in answer_findings():
        names |= {f"answer_{key}_{p}" for p in ("effect", "ci", "verdict")}
    return names


def per_method_table(profile: Profile, seeds=None) -> pd.DataFrame:
    """The measurements repeated per method (:data:`sslkit.paper.PER_METHOD`), one column per
    method: the evidence the prose states (effect [95% CI]: verdict) and this run's verdict."""
    rows = {}
    for key in PER_METHOD:
        row = {}
        for method, k in per_method(key).items():
            f, ref, live = finding(k), stated(k), finding(k).measure(profile, seeds)
            shown = _cell(f, ref if ref is not None else live)
            row[method] = f"{shown} (this run: {live.verdict})" if ref is not None else (
                f"{shown} (this run; not in the store)")  # fmt: skip
        rows[finding(key).claim] = row
    return pd.DataFrame(rows).T


def ratio_arms_table(profile: Profile, seeds=None) -> pd.DataFrame:
    """Every arm of the ratio sweep against the untrained network, on the three rulers (effect
    [95% CI] over seeds, from the evidence store where it holds the arm, else this run), with
    the arm flagged **degenerate** where its raw NCC interval lies wholly below 0: a run that
    ends below its own untrained network has learned nothing a comparison can rest on."""
    rows = []
    for ratio, config in RATIOS.items():
        try:
            with store_only():
                runs = trained(config, RECORDED_PROFILE)
            source = f"reference ({len(runs)} seeds)"
        except store.NotStored:
            runs = trained(config, profile, seeds)
            source = f"this run ({len(runs)} seeds)"
        shown = "∞" if ratio == float("inf") else f"{ratio:g}"  # the regularization-only arm
        row = {"ratio": shown, "configuration": config, "evidence": source}
        for ruler in RULERS:
            gains = [gain(r, ruler, "fine") for r in runs]
            gains = [g for g in gains if g == g]  # a seed without a value is left out
            effect, lo, hi = t_interval(gains) if gains else (float("nan"),) * 3
            row[RULER_NAMES[ruler]] = f"{100 * effect:+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}]"
            if ruler == "ncc":
                row["degenerate"] = "yes" if hi < 0 else ""
        rows.append(row)
    return pd.DataFrame(rows).set_index("ratio")


def primary_table(profile: Profile, seeds=None, alpha: float = 0.025) -> pd.DataFrame:
    """The paper's five claims (:data:`sslkit.paper.PRIMARY`) on the evidence the prose states:
    effect [95% CI]: verdict, what the three rulers say together where the claim is about
    clustering (:func:`reading`), the one-sided p-value that the effect exceeds its threshold,
    and whether that still holds after Holm's correction across the five. ``alpha`` is
    one-sided, 0.025, the level of the verdicts' two-sided 95% intervals, so that a claim
    cannot be inconclusive and pass Holm at once."""
    keys = list(PRIMARY.values())
    verdicts = evidence(keys, profile, seeds)
    p = [
        one_sided_p(v.per_seed.effect, finding(k).threshold, subsets=v.subsets)
        if v.per_seed.effect.notna().all()
        else float("nan")  # a seed without a measurement: no p-value, as no verdict
        for k, v in zip(keys, verdicts)
    ]
    rejected = holm(p, alpha)
    rulers = []
    for k in keys:
        if k in CLUSTERING:
            found = {r: evidence([ruler_keys(k)[r, "untrained"]], profile, seeds)[0].verdict
                     for r in RULERS}  # fmt: skip
            rulers.append(reading(found))
        else:
            rulers.append("")
    return pd.DataFrame(
        {
            "finding": keys,
            "evidence": [_cell(finding(k), v) for k, v in zip(keys, verdicts)],
            "seeds": [v.n for v in verdicts],
            "three rulers, over the untrained network": rulers,
            "p (effect > threshold)": [f"{x:.2g}" for x in p],
            f"above threshold after Holm (one-sided α = {alpha})": [
                "yes" if r else "no" for r in rejected
            ],
        },
        index=pd.Index(list(PRIMARY), name="the abstract's claim"),
    )


def evidence_line(profile: Profile) -> str:
    """Which evidence a scoreboard shows: the store's profile, seeds and date, and this run's."""
    ref = get_profile(RECORDED_PROFILE)
    m = store.manifest(ref)
    runs = m.get("runs", {})
    dates = sorted(r["date"][:10] for r in runs.values())
    seeds = sorted({int(k.rsplit("/", 1)[1]) for k in runs})
    verified = verify.last_result()
    check = (
        f"; re-verified in this build by re-training {verified['runs']} runs "
        f"({verified['values']} values), largest difference {verified['largest']:.2g}"
        if verified
        else "; not re-verified in this build (`make verify-evidence`)"
    )
    if verified.get("whole"):
        check += (f", {verified['whole']} trained whole and every stored row of it compared, "
                  f"{' and '.join(verified['early'])} up to their first snapshot")  # fmt: skip
    stored = (
        f"{len(runs)} runs, seeds {seeds[0]}–{seeds[-1]}, built {dates[0]} to {dates[-1]}{check}"
        if runs
        else "empty"
    )
    return (
        f"Reference: the {ref.name} evidence store ({stored}); its intervals cover the seeds "
        f"and, for findings read from test accuracies, which test images were drawn "
        f"({EVAL_SUBSETS} evaluation subsets). This run: the {profile.name} profile, seeds "
        f"{list(profile.seeds)}; its intervals cover the seeds only."
    )


def _decision_parts(d) -> dict[str, str]:
    """A decided finding's effect, interval and verdict as the prose shows them (points with
    one decimal and their unit; other units with two decimals)."""
    scale, digits = (100, 1) if d.unit == "points" else (1, 2)
    suffix = " points" if d.unit == "points" else ""
    return {
        "effect": f"{d.effect * scale:+.{digits}f}{suffix}",
        "ci": f"[{d.lo * scale:+.{digits}f}, {d.hi * scale:+.{digits}f}]",
        "verdict": d.verdict,
    }


def glue_decision(key: str) -> None:
    """Glue one finding decided on the per-image evidence (:mod:`sslkit.findings.decide`):
    ``{key}_effect``, ``{key}_ci``, ``{key}_verdict`` and ``{key}_seeds``. In the book's build a
    verdict other than the one recorded (:data:`sslkit.findings.recorded.DECIDED`) raises:
    the prose around it was written for that verdict."""
    d = decision(key)
    for part, text in _decision_parts(d).items():
        glue(f"{key}_{part}", text, source=REFERENCE)
    glue(f"{key}_seeds", d.seeds, source=REFERENCE)
    if os.environ.get("SSLKIT_BOOK_BUILD", "") == "1" and DECIDED.get(key) != d.verdict:
        raise AssertionError(
            f"{key} reads '{d.verdict}' on the per-image evidence ({d}); the book records "
            f"'{DECIDED.get(key, 'nothing')}' (sslkit/findings/recorded.py, DECIDED): the prose "
            "would contradict its numbers. Update the text and the record together."
        )


def decisions_table(keys) -> pd.DataFrame:
    """The findings ``keys`` of the per-image evidence as a table: what was measured, against
    what, the threshold, the effect with its 95% interval, the seeds and the verdict."""
    df = decisions().set_index("key").loc[list(keys)]
    scale = df.unit.map(lambda u: 100 if u == "points" else 1)
    digits = df.unit.map(lambda u: 1 if u == "points" else 2)
    fmt = lambda v, d: f"{v:+.{d}f}"  # noqa: E731
    units = df.unit.map(lambda u: " points" if u == "points" else f" ({u})")
    return pd.DataFrame(
        {
            "measurement": [f"{m} [{r}]" for m, r in zip(df.measurement, df.ruler)],
            "against": df.control,
            "threshold": [fmt(t * s, d) for t, s, d in zip(df.threshold, scale, digits)],
            "effect [95% CI]": [
                f"{fmt(e * s, d)} [{fmt(lo * s, d)}, {fmt(hi * s, d)}]{u}"
                for e, lo, hi, s, d, u in zip(df.effect, df.lo, df.hi, scale, digits, units)
            ],
            "seeds": df.seeds,
            "verdict": df.verdict,
        }
    ).reset_index(drop=True)
