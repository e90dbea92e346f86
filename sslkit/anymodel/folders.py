"""Your own images for :func:`sslkit.analyze`: an ImageFolder-style directory
(``python -m sslkit analyze --data folder:PATH``).

``PATH`` holds one sub-folder per class, with image files inside (PNG, JPEG, any format of
``torchvision.datasets.folder.IMG_EXTENSIONS``; sub-folders of a class count as that class)::

    PATH/cat/0001.jpg
    PATH/cat/0002.png
    PATH/dog/0001.jpg

Hidden folders (``.ipynb_checkpoints``) are not classes. Every image is converted to RGB, resized
so its shorter side is ``size`` and centre-cropped to ``size × size`` (torchvision's ``Resize``
and ``CenterCrop``), and kept as uint8 until its batch is normalised. Images are read batch by
batch, never all at once.

Coarse labels (optional) come from a file that maps every class folder to a coarse label, as
CSV with the header ``class,coarse``::

    class,coarse
    cat,animal
    dog,animal
    car,vehicle

or as a JSON object, ``{"cat": "animal", "dog": "animal", "car": "vehicle"}``. Names in the file
that are not class folders are ignored; a class folder missing from it is refused.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

__all__ = ["Folder", "FolderImages", "read_folder", "read_coarse"]

# What an image becomes before it is normalised: a square of ``size`` pixels a side, uint8 RGB.
TRANSFORM = "RGB, Resize(size) then CenterCrop(size), uint8"


@dataclass(frozen=True)
class Folder:
    """An ImageFolder-style directory to analyse (see the module's doc): its ``path``, the side
    ``size`` every image is resized and centre-cropped to, an optional ``coarse`` file (CSV or
    JSON: class folder → coarse label), and the per-channel ``mean`` and ``std`` to normalise
    with (``None``: measured on the fitting images, e.g. pass a pretrained model's own)."""

    path: str | Path
    size: int = 32
    coarse: str | Path | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __post_init__(self):
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"size must be a whole number of pixels ≥ 1, got {self.size!r}")
        if (self.mean is None) != (self.std is None):
            raise ValueError("give both mean and std, or neither (then they are measured)")


@dataclass
class FolderImages:
    """The images of a :class:`Folder`: the ``dataset`` (a ``torchvision`` ``ImageFolder`` that
    gives ``(uint8 image, class)`` items), every image's class code (``fine``, codes of the
    sorted folder names ``classes``) and coarse code (``coarse``, codes of ``coarse_classes``;
    ``None`` without a coarse file)."""

    folder: Folder
    dataset: torch.utils.data.Dataset
    fine: torch.Tensor
    coarse: torch.Tensor | None
    classes: list[str]
    coarse_classes: list[str]

    def files(self, positions: torch.Tensor) -> list[str]:
        """The paths of the images at ``positions``."""
        return [self.dataset.samples[i][0] for i in positions.tolist()]


def _load_rgb(path: str) -> Image.Image:
    """The image at ``path`` as RGB, or a ``ValueError`` that names the file and what to do."""
    try:
        with open(path, "rb") as f:
            return Image.open(f).convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise ValueError(
            f"cannot read the image {path} ({type(err).__name__}: {err}); replace it, delete it "
            "or convert it to PNG or JPEG, then run again"
        ) from None


def _has_image(folder: Path, extensions) -> bool:
    """Whether ``folder`` (or a folder inside it) holds a file with an image extension; stops
    at the first one."""
    return any(
        name.lower().endswith(extensions)
        for _, _, names in os.walk(folder, followlinks=True)
        for name in names
    )


def _class_folders(root: Path, extensions) -> list[str]:
    """The sorted class folders of ``root``: at least two, none hidden, each with an image;
    otherwise a ``ValueError`` that says how the folder must look."""
    layout = "one sub-folder of images per class: PATH/CLASS/IMAGE.png"
    classes = sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith("."))
    if len(classes) < 2:
        loose = [
            e.name for e in os.scandir(root) if e.is_file() and e.name.lower().endswith(extensions)
        ]
        found = f"{len(classes)} class folder{'' if len(classes) == 1 else 's'}" + (
            f" ({classes[0]})" if classes else ""
        )
        hint = f"; its {len(loose)} images lie directly in it" if loose else ""
        raise ValueError(
            f"{root} holds {found}{hint}: analyze compares classes, so it needs at least two, "
            f"{layout}"
        )
    empty = [c for c in classes if not _has_image(root / c, extensions)]
    if empty:
        raise ValueError(
            f"class folders {', '.join(repr(c) for c in empty[:10])} in {root} hold no image "
            f"files ({', '.join(extensions)}): add images to them or remove them"
        )
    return classes


def _image_folder(root: Path, size: int):
    """torchvision's ``ImageFolder`` of ``root`` with analyze's checks (:func:`_class_folders`)
    and reader (:func:`_load_rgb`), giving uint8 images ``size`` pixels a side."""
    from torchvision.datasets import ImageFolder  # lazy: a second to import, folders only
    from torchvision.datasets.folder import IMG_EXTENSIONS
    from torchvision.transforms import v2

    class ClassFolders(ImageFolder):
        def find_classes(self, directory):
            classes = _class_folders(Path(directory), IMG_EXTENSIONS)
            return classes, {c: i for i, c in enumerate(classes)}

    transform = v2.Compose([v2.Resize(size, antialias=True), v2.CenterCrop(size), v2.PILToTensor()])
    return ClassFolders(str(root), transform=transform, loader=_load_rgb)


def read_coarse(path, classes: list[str]) -> tuple[torch.Tensor, list[str]]:
    """Each class's coarse code and the sorted coarse names, from a CSV (header ``class,coarse``)
    or JSON (``{"class": "coarse"}``) file; a ``ValueError`` names what is wrong or missing."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no coarse-label file at {path}: give a CSV file (header class,coarse) or a JSON "
            'object {"class folder": "coarse label"}'
        )
    text = path.read_text(encoding="utf-8-sig")
    try:
        mapping = json.loads(text) if path.suffix.lower() == ".json" else _csv_mapping(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err})") from None
    if not isinstance(mapping, dict):
        raise ValueError(f'{path} must hold one JSON object {{"class folder": "coarse label"}}')
    missing = [c for c in classes if c not in mapping]
    if missing:
        raise ValueError(
            f"{path} gives no coarse label for the class folders {', '.join(missing[:10])}: add a "
            "line for each (CSV: class,coarse)"
        )
    names = sorted({str(mapping[c]) for c in classes})
    codes = torch.tensor([names.index(str(mapping[c])) for c in classes])
    return codes, names


def _csv_mapping(text: str) -> dict[str, str]:
    """``{class: coarse}`` from CSV text whose header names the columns ``class`` and
    ``coarse``."""
    rows = list(csv.DictReader(text.splitlines()))
    if not rows or not {"class", "coarse"} <= set(rows[0]):
        raise ValueError(
            "a coarse-label CSV needs the header class,coarse and one row a class folder, "
            "e.g. cat,animal"
        )
    return {r["class"].strip(): r["coarse"].strip() for r in rows if r["class"]}


def read_folder(folder: Folder) -> FolderImages:
    """The images of ``folder``, checked up front: the folder exists, holds two class folders at
    least, each with an image, and the coarse file (if any) labels every class. An image that
    cannot be decoded is named when it is read (:func:`_load_rgb`)."""
    root = Path(folder.path).expanduser()
    if not root.exists():
        raise FileNotFoundError(
            f"no folder {root}: --data folder:PATH needs a folder with one sub-folder of images "
            "per class (PATH/CLASS/IMAGE.png)"
        )
    if not root.is_dir():
        raise ValueError(
            f"{root} is a file, not a folder: give the folder that holds one sub-folder of images "
            "per class (PATH/CLASS/IMAGE.png)"
        )
    dataset = _image_folder(root, folder.size)
    fine = torch.as_tensor(dataset.targets, dtype=torch.long)
    coarse, coarse_classes = None, []
    if folder.coarse is not None:
        parent, coarse_classes = read_coarse(folder.coarse, dataset.classes)
        coarse = parent[fine]
    return FolderImages(folder, dataset, fine, coarse, list(dataset.classes), coarse_classes)
