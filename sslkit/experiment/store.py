"""The evidence store: every evaluation the findings read, at the ``reference`` scale, stored
as tables inside the package (no weights), with a manifest of where each run came from.

The live runs of a chapter demonstrate; the stored evidence decides (a scale where SSL has
learned, 8 seeds; see :mod:`sslkit.scale` for how the scale was chosen). Both go through one
code path: a :class:`StoredRun` answers :meth:`~StoredRun.value`, :meth:`~StoredRun.final`,
:meth:`~StoredRun.initial` and :meth:`~StoredRun.losses` as a trained
:class:`~sslkit.runs.Run` does, from the stored rows, so every
:class:`~sslkit.paper.Finding` measures stored and live runs with the same code
(:func:`sslkit.configs.trained` picks which).

One folder per profile, ``sslkit/evidence/<profile>/``:

- ``evaluations.csv.gz``: one row per value, columns :data:`COLUMNS`;
- ``losses.csv.gz``: the per-epoch loss terms of each run (config, seed, epoch, metric, value);
- ``manifest.json``: the profile's settings, the SHA-256 of each table (``"tables"``; a table
  that does not match is refused, so a hand edit of any stored value fails the tests and the
  book build), and per run (``"<config>/<seed>"``) its train cache key, sslkit commit, torch
  version, device, threads, date and wall time.

Writers take the folder's lock (``.lock``, :func:`fcntl.flock`) around each read-modify-write,
so two builds adding runs to one store never lose each other's runs; readers refuse a table
with two rows for one key, and a run of the manifest with no rows.

Storing evaluations rather than weights keeps the store to a few MB; the price is that a new
metric needs the store rebuilt: ``python -m sslkit evidence build --profile reference``
(:mod:`sslkit.collect`).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import math
import os
import zlib
from pathlib import Path

import pandas as pd

from ..profiles import Profile
from ..runtime import register_cache
from .runs import SAMPLE_METRICS, TRAIN_FIELDS, NoSubsets, current_subset

__all__ = [
    "EVIDENCE",
    "COLUMNS",
    "StoredRun",
    "folder",
    "profile_settings",
    "manifest",
    "holds",
    "stored_runs",
    "evaluations",
    "write_run",
    "NotStored",
    "CorruptStore",
    "digest",
    "check_tables",
    "locked",
    "with_rows",
]


class NotStored(LookupError):
    """The evidence store does not hold what was asked (a run, a seed, the profile)."""


class CorruptStore(ValueError):
    """A table or manifest of the store cannot be trusted: it does not match its checksum, it is
    truncated or unreadable, or it holds one value twice."""


# Where the stores live: inside the package, so that a pip install carries them.
EVIDENCE = Path(__file__).resolve().parents[1] / "evidence"
COLUMNS = ["config", "seed", "epoch", "stage", "target", "metric", "split", "dim", "value"]
LOSS_COLUMNS = ["config", "seed", "epoch", "metric", "value"]
TABLES = ("evaluations.csv.gz", "losses.csv.gz")
# The columns that name one stored value: a second row with the same names is refused.
KEY = COLUMNS[:-1]
# The settings that change a stored evaluation: what trains the network, and what evaluates it.
SETTINGS = (*TRAIN_FIELDS, "eval_size", "eval_every")


def folder(profile: Profile, root: Path | None = None) -> Path:
    """The store of one profile: ``sslkit/evidence/<profile name>/``."""
    return Path(root or EVIDENCE) / profile.name


def profile_settings(profile: Profile) -> dict:
    """The profile's settings that a stored evaluation depends on, as JSON values."""
    return {
        k: list(v) if isinstance(v, tuple) else v
        for k, v in ((k, getattr(profile, k)) for k in SETTINGS)
    }


def manifest(profile: Profile, root: Path | None = None) -> dict:
    """The store's manifest (``{}`` where there is no store for this profile)."""
    return _manifest_of(folder(profile, root))


def _manifest_of(path: Path) -> dict:
    file = path / "manifest.json"
    if not file.is_file():
        return {}
    try:
        return json.loads(file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorruptStore(
            f"{file} is not valid JSON ({e}); restore it with `git checkout -- {file}` or "
            "rebuild the store (`python -m sslkit evidence build`)"
        ) from None


def digest(path: Path) -> str:
    """The SHA-256 of a file's bytes, as the manifest records it for each table."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def check_tables(path: Path) -> None:
    """Refuse the tables of the store at ``path`` unless each matches the SHA-256 that its
    manifest records: the tables' (``"tables"``), or those a write was replacing them with
    (``"pending_tables"``: an interrupted write leaves one of the two, never a third)."""
    m = _manifest_of(Path(path))
    recorded, pending = m.get("tables", {}), m.get("pending_tables", {})
    for name in TABLES:
        if name not in recorded:
            raise CorruptStore(
                f"{path / 'manifest.json'} records no checksum of {name}: a store written by "
                "hand or by an older sslkit; rebuild it (`python -m sslkit evidence build`)"
            )
        if digest(Path(path) / name) not in (recorded[name], pending.get(name)):
            raise CorruptStore(
                f"{Path(path) / name} does not match the SHA-256 in its manifest: it was edited "
                "after the store was built. Restore it (`git checkout -- sslkit/evidence`) or "
                "rebuild the store; a stored value is never edited by hand"
            )


def holds(
    profile: Profile,
    config: str,
    seeds,
    root: Path | None = None,
    method: str | None = None,
    loss: dict | None = None,
) -> bool:
    """Whether the store has every seed of ``config`` for exactly this profile's settings and,
    where given, this ``method`` and (filled-in) ``loss``: a profile or a configuration changed
    since the store was built is never answered from it. The tables must be there too."""
    m = manifest(profile, root)
    if not m or m.get("profile") != profile_settings(profile):
        return False
    if not all((folder(profile, root) / n).is_file() for n in TABLES):
        return False
    runs = [m.get("runs", {}).get(f"{config}/{s}") for s in seeds]
    if any(r is None for r in runs):
        return False
    return all((method is None or r["method"] == method) and (loss is None or r["loss"] == loss)
               for r in runs)  # fmt: skip


@register_cache
@functools.lru_cache(maxsize=8)
def _tables(path: str, stamp: tuple) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both tables, once their checksums and keys are checked (once per version of the files)."""
    check_tables(Path(path))
    evals = _read_table(Path(path) / "evaluations.csv.gz", _read_evaluations)
    losses = _read_table(Path(path) / "losses.csv.gz", pd.read_csv)
    for table, key, name in ((evals, KEY, "evaluations"), (losses, LOSS_COLUMNS[:-1], "losses")):
        twice = table[table.duplicated(key, keep=False)]
        if len(twice):
            first = ", ".join(f"{k}={v}" for k, v in twice.iloc[0][key].items())
            raise CorruptStore(
                f"{path}/{name}: {len(twice)} rows share their key with another row (first: "
                f"{first}); one value per key, so the store is refused: rebuild it"
            )
    return evals, losses


def _read_table(path: Path, read) -> pd.DataFrame:
    try:
        return read(path)
    except (EOFError, OSError, zlib.error, pd.errors.ParserError, UnicodeDecodeError) as e:
        raise CorruptStore(
            f"{path} cannot be read ({type(e).__name__}: {e}): truncated or damaged; restore "
            "it (`git checkout -- sslkit/evidence`) or rebuild the store"
        ) from None


@register_cache
@functools.lru_cache(maxsize=8)
def _by_run(path: str, stamp: tuple) -> dict:
    """Each stored run's values, ``{(config, seed): {(epoch, stage, target, metric, split, dim):
    value}}``, indexed once per version of the table (a finding reads its runs many times:
    once, and again on each evaluation subset)."""
    evals = _tables(path, stamp)[0]
    out: dict = {}
    for (config, seed), rows in evals.groupby(["config", "seed"], sort=False):
        out[config, int(seed)] = dict(
            zip(
                zip(rows.epoch, rows.stage, rows.target, rows.metric, rows.split, rows.dim),
                rows.value,
            )
        )
    return out


def _read_evaluations(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype={"dim": str}).fillna({"dim": ""})


def evaluations(profile: Profile, root: Path | None = None) -> pd.DataFrame:
    """The store's evaluations table (columns :data:`COLUMNS`; ``dim`` is ``""`` at full
    width)."""
    return _read(profile, root)[0]


def _read(profile: Profile, root: Path | None = None):
    path = folder(profile, root)
    files = [path / n for n in ("manifest.json", "evaluations.csv.gz", "losses.csv.gz")]
    if not all(f.is_file() for f in files):
        raise NotStored(
            f"no evidence store for profile {profile.name!r} at {path}; build it with "
            f"`python -m sslkit evidence build --profile {profile.name}`"
        )
    return _tables(*_stamped(profile, root))


def _stamped(profile: Profile, root: Path | None = None) -> tuple[str, tuple]:
    """The store's folder and the identity of its files (inode, size, modification time): a
    table rewritten (a new file renamed into place) is read again."""
    path = folder(profile, root)
    files = [path / n for n in ("manifest.json", "evaluations.csv.gz", "losses.csv.gz")]
    stats = [f.stat() for f in files]
    return str(path), tuple((s.st_ino, s.st_size, s.st_mtime_ns) for s in stats)


class StoredRun:
    """A run of the store, answering what a :class:`~sslkit.runs.Run` answers from its rows."""

    def __init__(self, profile: Profile, config: str, seed: int, root: Path | None = None):
        self.profile, self.config, self.seed = profile, config, seed
        m = manifest(profile, root).get("runs", {}).get(f"{config}/{seed}")
        if m is None:
            raise NotStored(
                f"the {profile.name} evidence store holds no run {config}/{seed}; build it with "
                f"`python -m sslkit evidence build --profile {profile.name}`"
            )
        self.method, self.loss, self.key = m["method"], m["loss"], m["key"]
        self.out_dim, self.seconds = m["out_dim"], m["seconds"]
        self.stage_names = tuple(m["stages"])
        _, losses = _read(profile, root)  # raises NotStored where there is no store
        self._values = _by_run(*_stamped(profile, root)).get((config, seed), {})
        if not self._values:
            raise NotStored(
                f"the {profile.name} evidence store lists {config}/{seed} in its manifest but "
                "its table holds no rows of it (an interrupted or concurrent write): rebuild "
                f"it (`python -m sslkit evidence build --profile {profile.name}` measures it "
                "again)"
            )
        self.history = losses[(losses.config == config) & (losses.seed == seed)]
        self.epochs = sorted({key[0] for key in self._values})

    def __repr__(self) -> str:
        return f"StoredRun({self.config!r}, profile={self.profile.name!r}, seed={self.seed})"

    @property
    def last_stage(self) -> str:
        return self.stage_names[-1]

    def __getattr__(self, name):
        raise AttributeError(
            f"a stored run keeps evaluations, not weights, so it has no {name!r}; for the "
            f"network itself train it: configs.trained({self.config!r}, profile, seeds, "
            "source='live')"
        )

    def value(self, metric, epoch, split="test", target="fine", stage=None, dim=None) -> float:
        """One stored number (see :meth:`sslkit.runs.Run.value`)."""
        if metric in SAMPLE_METRICS:
            target = "sample"
        subset = current_subset()
        if split == "test" and subset is not None:  # inside runs.evaluation_subset(k)
            split = f"test@{subset}"
        key = (
            epoch,
            stage or self.last_stage,
            target,
            metric,
            split,
            "" if dim is None else str(dim),
        )
        if key not in self._values and "@" in split and (*key[:4], "test", key[5]) in self._values:
            raise NoSubsets(
                f"{metric}/{target} of {self.config}, seed {self.seed}, is stored on all the test "
                "images but not on evaluation subsets"
            )
        if key not in self._values:
            raise KeyError(
                f"the {self.profile.name} evidence store has no {metric}/{split}/{target}/"
                f"{key[1]} at epoch {epoch}{f' (dim {dim})' if dim else ''} for {self.config}, "
                f"seed {self.seed}: a measurement added after the store was built needs it "
                f"rebuilt (`python -m sslkit evidence build --profile {self.profile.name}`)"
            )
        return float(self._values[key])

    def final(self, metric, split="test", target="fine", stage=None, dim=None) -> float:
        return self.value(metric, self.epochs[-1], split, target, stage, dim)

    def evaluate(
        self,
        targets=("fine", "coarse"),
        metrics=("ncc", "cdnv"),
        epochs=None,
        sample_level: bool = False,
        dim=None,
        subsets: int = 0,
    ) -> pd.DataFrame:
        """The stored rows in the table :meth:`sslkit.runs.Run.evaluate` returns (columns
        ``epoch, stage, target, split, metric, value``), so that a figure draws the stored
        runs with the code that draws live ones. A target stored as several draws
        (``"coarse_random@0"``, ``"@1"``, …) is the mean of its draws, where a live run's
        plain name is one draw: say so where both are drawn. A combination the store does not
        keep (CDNV of a control, a control between the first and last epoch) has no rows;
        ``subsets`` is accepted for the same signature and ignored (the test split covers
        them)."""
        epochs = self.epochs if epochs is None else [e for e in epochs if e in self.epochs]
        dim_key = "" if dim is None else str(dim)
        wanted = [(t, m) for t in targets for m in metrics]
        if sample_level:
            wanted += [("sample", m) for m in SAMPLE_METRICS]
        rows = [
            dict(epoch=e, stage=st, target=t, split=sp, metric=m, value=v)
            for (e, st, t, m, sp, d), v in self._values.items()
            if d == dim_key and e in epochs and sp in ("train", "test")
            and ((t.split("@")[0], m) in wanted)
        ]  # fmt: skip
        if not rows:
            raise KeyError(
                f"the {self.profile.name} evidence store holds none of {wanted} at epochs "
                f"{epochs}{f' (dim {dim})' if dim else ''} for {self.config}, seed {self.seed}"
            )
        table = pd.DataFrame(rows)
        table["target"] = table.target.str.split("@").str[0]
        keys = ["epoch", "stage", "target", "split", "metric"]
        return table.groupby(keys, sort=False).value.mean().reset_index()

    def initial(self, metric, split="test", target="fine", stage=None, dim=None) -> float:
        return self.value(metric, 0, split, target, stage, dim)

    def losses(self, phase: str = "epoch") -> pd.DataFrame:
        """Loss terms per epoch, one column per term (the store keeps epochs only)."""
        if phase != "epoch":
            raise ValueError("the evidence store keeps the per-epoch losses only (phase='epoch')")
        return self.history.pivot_table(index="epoch", columns="metric", values="value")


def with_rows(profile: Profile, root: Path | None = None) -> set[str]:
    """The runs (``"<config>/<seed>"``) whose rows the evaluations table holds: a run of the
    manifest without rows (an interrupted or concurrent write) is not stored."""
    path = folder(profile, root)
    if not all((path / n).is_file() for n in (*TABLES, "manifest.json")):
        return set()
    evals = _read(profile, root)[0]
    return {f"{c}/{int(s)}" for c, s in zip(evals.config, evals.seed)}


def stored_runs(config: str, profile: Profile, seeds, root: Path | None = None) -> list[StoredRun]:
    """The stored runs of ``config``, one per seed (see :func:`holds`)."""
    return [StoredRun(profile, config, s, root) for s in seeds]


def _write_csv(table: pd.DataFrame, path: Path) -> Path:
    """``table`` written beside ``path`` (a temporary name the caller moves into place)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    table.to_csv(tmp, index=False, float_format="%.6g", compression="gzip")
    return tmp


def write_run(
    profile: Profile,
    config: str,
    seed: int,
    rows: pd.DataFrame,
    losses: pd.DataFrame,
    entry: dict,
    provenance: dict,
    root: Path | None = None,
) -> None:
    """Add one run (replacing any older rows of it) to the store; the tables are written
    through temporary files and renames, the manifest last (with the tables' checksums), so an
    interrupted write leaves the run out of the manifest and a resumed build measures it
    again. The whole read-modify-write holds the folder's lock."""
    path = folder(profile, root)
    path.mkdir(parents=True, exist_ok=True)
    with locked(path):
        _add_run(path, profile, config, seed, rows, losses, entry, provenance)


def _add_run(path, profile, config, seed, rows, losses, entry, provenance) -> None:
    """The new tables are written beside the old ones, their checksums recorded as pending,
    then they replace the old ones and the manifest takes the run: a write stopped anywhere
    leaves tables that match the manifest and a run that a resumed build measures again."""
    m = _manifest_of(path)
    if m.get("runs") and m.get("profile") == profile_settings(profile):
        check_tables(path)  # never bless a table edited by hand
    if m.get("profile") != profile_settings(profile):
        m = {"profile": profile_settings(profile), "runs": {}, "tables": {}}  # start afresh
    written = {}
    for name, columns, new in (
        ("evaluations.csv.gz", COLUMNS, rows),
        ("losses.csv.gz", LOSS_COLUMNS, losses),
    ):
        if (path / name).is_file() and m["runs"]:
            old = pd.read_csv(path / name, dtype={"dim": str}).fillna({"dim": ""})
        else:
            old = pd.DataFrame(columns=columns)
        old = old[~((old.config == config) & (old.seed == seed))]
        new = new.assign(config=config, seed=seed)[columns]
        written[name] = _write_csv(pd.concat([old, new], ignore_index=True), path / name)
    m["pending_tables"] = {name: digest(tmp) for name, tmp in written.items()}
    _write_manifest(path, m)
    for name, tmp in written.items():
        os.replace(tmp, path / name)
    m.update(provenance)
    m["tables"] = m.pop("pending_tables")
    m["runs"][f"{config}/{seed}"] = entry
    m["runs"] = dict(sorted(m["runs"].items()))
    _write_manifest(path, m)


def update_manifest(profile: Profile, fields: dict, root: Path | None = None) -> None:
    """Set top-level ``fields`` of an existing store's manifest (e.g. a floor measured again),
    written through a temporary file and a rename."""
    path = folder(profile, root)
    with locked(path):
        m = _manifest_of(path)
        if not m:
            raise NotStored(f"no evidence store for profile {profile.name!r} at {path}")
        m.update(fields)
        _write_manifest(path, m)


@contextlib.contextmanager
def locked(path: Path):
    """Hold the store folder's lock (an exclusive :func:`fcntl.flock` on ``path/.lock``) for a
    read-modify-write of its files; a second writer waits for it."""
    with open(Path(path) / ".lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _write_manifest(path: Path, m: dict) -> None:
    tmp = path / f".manifest.{os.getpid()}.tmp"  # a temporary file and a rename: never half-written
    tmp.write_text(json.dumps(m, indent=1, default=_json) + "\n")
    os.replace(tmp, path / "manifest.json")


def _json(x):
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, tuple):
        return list(x)
    raise TypeError(f"not JSON: {x!r}")
