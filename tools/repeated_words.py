"""Count the book's repeated words: the boilerplate a reader reads more than once.

The pages are read in the table of contents' order (the front page with its answer box, then
each chapter: its Markdown cells and its figures' captions). A word is *repeated* where it
lies in a run of ``N`` (8) words that the reader has already read on an earlier page or
earlier on the same page; the conditional branches of a verdict ("if the interval lies above
the threshold, …; if it does not, …") are counted whole, even where their words differ,
since the build knows the verdict and the text can state it.

    python tools/repeated_words.py            # per page: words, repeated words; the totals
    python tools/repeated_words.py --top 20   # and the 20 longest repeated passages
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
N = 8  # a run of this many words read before counts as read again

# A sentence that states what a verdict would mean instead of the verdict.
BRANCH = re.compile(
    r"\bif (the |its |this |the whole |the first |the second )?"
    r"(whole )?(interval|CI|second|first)\b[^.;]*\b(lies|is|are) (wholly )?(above|below)"
    r"|\bif it does not\b|\bif (both|neither|the first|the second) holds?\b"
    r"|\bif it lies at or below\b",
    re.I,
)


def reference_pages() -> set[str]:
    """The pages of the toc's "Reference" part (glossary, instructors, API): read on demand, not
    in order, and a glossary restates what the chapters define."""
    toc = (ROOT / "_toc.yml").read_text()
    part = toc.split("caption: Reference", 1)[1] if "caption: Reference" in toc else ""
    return {Path(name).stem for name in re.findall(r"(?m)^\s*- file: (\S+)$", part)}


def pages() -> list[tuple[str, str]]:
    """(page, its text) in reading order: the front page (its box pasted in), then the toc."""
    toc = re.findall(r"(?m)^\s*- file: (\S+)$", (ROOT / "_toc.yml").read_text())
    out = []
    index = (ROOT / "index.md").read_text(encoding="utf-8")
    box = (ROOT / "_parts" / "answer.md").read_text(encoding="utf-8")
    out.append(("index", index.replace("```{include} _parts/answer.md\n```", box)))
    for name in toc:
        path = ROOT / f"{name}.ipynb"
        if not path.exists():
            md = ROOT / f"{name}.md"
            out.append((Path(name).stem, md.read_text(encoding="utf-8")))
            continue
        parts = []
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            if cell["cell_type"] == "markdown":
                parts.append("".join(cell["source"]))
            figure = cell.get("metadata", {}).get("mystnb", {}).get("figure", {})
            caption = figure.get("caption")
            if isinstance(caption, str):
                parts.append(caption)
        out.append((Path(name).stem, "\n\n".join(parts)))
    return out


def words(text: str) -> list[str]:
    """The words a reader reads: comments, labels, directives' options and code blocks out; a
    glued value read as its name; a role's text read as its text."""
    text = re.sub(r"(?m)^%.*$|^\(\S+\)=$|^:\w+:.*$|^```\{?[\w-]*\}?.*$|^:::\{?\w*\}?.*$", " ", text)
    text = re.sub(r"\{glue:\w+\}`(?:[^`]*::)?(\w+)(?::\w+)?`", r"\1", text)
    text = re.sub(r"\{\w+\}`([^`<]*?)\s*(<[^`]*>)?`", r"\1", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.findall(r"[\w'’%+\-.]*\w[\w'’%+\-]*", text.lower())


def branches(text: str) -> int:
    """Words of the sentences that state what a verdict would mean instead of the verdict."""
    flat = re.sub(r"\s+", " ", text)
    return sum(len(words(s)) for s in re.split(r"(?<=[.:])\s", flat) if BRANCH.search(s))


def measure(top: int = 0) -> tuple[list[tuple[str, int, int]], list[tuple[int, str, str]]]:
    seen: set[tuple[str, ...]] = set()
    rows, passages = [], []
    for page, text in pages():
        w = words(text)
        repeated = [False] * len(w)
        grams = [tuple(w[i : i + N]) for i in range(len(w) - N + 1)]
        for i, g in enumerate(grams):
            if g in seen:
                repeated[i : i + N] = [True] * N
        seen.update(grams)
        count = sum(repeated) + branches(text)
        rows.append((page, len(w), count))
        if top:
            i = 0
            while i < len(w):
                if repeated[i]:
                    j = i
                    while j < len(w) and repeated[j]:
                        j += 1
                    passages.append((j - i, page, " ".join(w[i:j])))
                    i = j
                else:
                    i += 1
    return rows, sorted(passages, reverse=True)[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--top", type=int, default=0, help="show the longest repeated passages")
    args = parser.parse_args()
    rows, passages = measure(args.top)
    print(f"{'page':<36} {'words':>6} {'repeated':>9}")
    for page, total, rep in rows:
        print(f"{page:<36} {total:>6} {rep:>9}")
    print(f"{'book':<36} {sum(r[1] for r in rows):>6} {sum(r[2] for r in rows):>9}")
    reference = reference_pages()
    read = [r for r in rows if r[0] not in reference]
    print(
        f"{'front page and chapters':<36} {sum(r[1] for r in read):>6} "
        f"{sum(r[2] for r in read):>9}   (without {', '.join(sorted(reference))})"
    )
    for n, page, text in passages:
        print(f"\n[{n} words, {page}] {text[:300]}")


if __name__ == "__main__":
    main()
