"""A pix2pix "aligned" folder (the reference code's ``--dataset_mode aligned``) as a dataset of one split.

Layout (the maps and facades sets every pix2pix tutorial uses)::

    maps/
      train/1.jpg  2.jpg ...    each image is A|B side by side: A the left half, B the right half
      val/...
      test/...                  (any of the three may be missing: that split is empty)

Each half is resized to ``load_size`` × ``load_size`` with PIL's bicubic filter,
then a ``crop_size`` square is cut out of it: at a random place for the train
split (drawn from ``(seed, epoch, index)``, so runs are reproducible and do not
depend on the number of DataLoader workers), in the centre otherwise — the
reference's ``resize_and_crop`` (defaults 286 and 256).  ``direction``
``AtoB`` translates A into B, ``BtoA`` the other way.  Images are 8-bit RGB
(or gray: 1 band); values are scaled the reference's way, ``x / 127.5 - 1``
(a ``minmax`` normalizer over 0..255), so no statistics pass is needed.  The
chips are not georeferenced (``pixel_size`` and ``crs`` are None).

Example:
    >>> crop_offset(286, 256), crop_offset(286, 256, np.random.default_rng([0, 0, 0, 1]))
    ((15, 15), (12, 9))
    >>> ds = Pix2PixAlignedDataset("maps/", split="train", direction="BtoA")  # doctest: +SKIP
    >>> ds.preprocess  # doctest: +SKIP
    {'layout': 'pix2pix-aligned', 'direction': 'BtoA', 'load_size': 286, 'crop_size': 256, ...}
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from geop2p.datasets.augment import PairAugment
from geop2p.datasets.base import Item, PairedChipDataset, check_split
from geop2p.errors import ChipFolderError, ConfigError
from geop2p.formats.chip_manifest import CONFIG_NAME, MANIFEST_NAME, ChipSide
from geop2p.normalize import Normalizer
from geop2p.split import SPLITS

__all__ = ["DIRECTIONS", "IMAGE_SUFFIXES", "LAYOUT", "Pix2PixAlignedDataset", "crop_offset", "is_pix2pix_aligned"]

logger = logging.getLogger(__name__)

#: translation directions: ``AtoB`` (input = left half) or ``BtoA`` (input = right half)
DIRECTIONS: tuple[str, str] = ("AtoB", "BtoA")
#: image files read in a split folder (the reference's extensions)
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".tif", ".tiff")
#: the layout in words, for error messages
LAYOUT = "a pix2pix aligned folder (train/, val/, test/ holding side-by-side A|B JPEG or PNG images)"

_CROP_STREAM = 1  # the crop's own random stream: (seed, epoch, index, 1), apart from PairAugment's
_GRAY_MODES = ("L", "LA", "1")
_NOT_8BIT = ("I", "F")  # and every "I;16..." mode


def is_pix2pix_aligned(root: str | os.PathLike) -> bool:
    """True when a ``train/``, ``val/`` or ``test/`` sub-folder of ``root`` holds images directly.

    Example:
        >>> is_pix2pix_aligned("/nonexistent")
        False
    """
    root = Path(root)
    if (root / MANIFEST_NAME).is_file() or (root / CONFIG_NAME).is_file():
        return False
    return any(_images(root / s) for s in SPLITS if (root / s).is_dir())


def crop_offset(load_size: int, crop_size: int, rng: np.random.Generator | None = None) -> tuple[int, int]:
    """``(row, col)`` of the ``crop_size`` square cut from a ``load_size`` square: drawn when ``rng``, else centred.

    A drawn offset is uniform over ``0 .. load_size - crop_size`` (both ends included), as the reference's
    ``random.randint(0, load_size - crop_size)``.

    Example:
        >>> crop_offset(18, 16), crop_offset(16, 16, np.random.default_rng(0))
        ((1, 1), (0, 0))
    """
    room = load_size - crop_size
    if rng is None:
        return room // 2, room // 2
    row, col = rng.integers(0, room + 1, size=2)
    return int(row), int(col)


class Pix2PixAlignedDataset(PairedChipDataset):
    """One split of a pix2pix aligned folder: A|B images, resized then cropped like the reference code.

    Args:
        folder: the folder holding ``train/``, ``val/`` and/or ``test/``.
        split: ``train``, ``val``, ``test`` or ``all``.
        augment: a :class:`PairAugment`, True (flips + rotations) or False/None (after the crop).
        input_normalizer: default ``x / 127.5 - 1`` (see :attr:`fixed_normalizers`).
        target_normalizer: same for the target.
        seed: seeds the random crop (and augmentation) together with the epoch and item index.
        direction: ``AtoB`` (input = left half A) or ``BtoA``.
        load_size: each half is resized to this square first (PIL bicubic).
        crop_size: then cropped to this square: the chip size.
        random_crop: crop at random places (default: for the train split only) or in the centre.

    Attributes:
        source_sizes: the distinct ``(width, height)`` of one half (A or B) of this split's images, before
            they are resized to ``load_size`` squared (what a model trained on them saw: train records them).

    Raises:
        ConfigError: unknown direction, ``crop_size`` above ``load_size``.
        ChipFolderError: not this layout, an empty split folder, an odd image width, an image that is not
            8-bit, or images of different band counts (naming the first offending file).

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     (Path(tmp) / "train").mkdir()
        ...     ab = Image.new("RGB", (40, 20), (255, 0, 0))  # A red
        ...     ab.paste((0, 0, 255), (20, 0, 40, 20))  # B blue
        ...     ab.save(Path(tmp) / "train" / "1.png")
        ...     ds = Pix2PixAlignedDataset(tmp, "train", load_size=18, crop_size=16)
        ...     item = ds[0]
        >>> tuple(item["input"].shape), item["input"][:, 0, 0].tolist(), item["target"][:, 0, 0].tolist()
        ((3, 16, 16), [1.0, -1.0, -1.0], [-1.0, -1.0, 1.0])
    """

    format_name = "pix2pix-aligned"

    def __init__(
        self,
        folder: str | os.PathLike,
        split: str = "train",
        augment: PairAugment | bool | None = None,
        input_normalizer: Normalizer | None = None,
        target_normalizer: Normalizer | None = None,
        seed: int = 0,
        direction: str = "AtoB",
        load_size: int = 286,
        crop_size: int = 256,
        random_crop: bool | None = None,
    ) -> None:
        check_split(split)
        if direction not in DIRECTIONS:
            raise ConfigError(f"Unknown direction {direction!r}; valid directions: {', '.join(DIRECTIONS)}.")
        load_size, crop_size = int(load_size), int(crop_size)
        if crop_size < 1 or load_size < crop_size:
            raise ConfigError(f"crop_size must be between 1 and load_size; got crop_size {crop_size}, load_size "
                              f"{load_size} (the reference's defaults are 256 and 286).")
        root = Path(folder)
        if not root.is_dir() or not is_pix2pix_aligned(root):
            raise ChipFolderError(f"'{root}' is not {LAYOUT}; see docs/formats.md or pass another --format.")
        self.root, self.split = root, split
        self.direction, self.load_size, self.crop_size = direction, load_size, crop_size
        self.random_crop = split == "train" if random_crop is None else bool(random_crop)
        self._by_split = {s: _split_items(root / s) for s in SPLITS}
        wanted = SPLITS if split == "all" else (split,)
        for s in wanted:
            if (root / s).is_dir() and not self._by_split[s]:
                raise ChipFolderError(f"'{root / s}' holds no images ({', '.join(IMAGE_SUFFIXES)}); expected "
                                      f"{LAYOUT}. Remove the empty folder or fill it.")
        self.items = sorted((it for s in wanted for it in self._by_split[s]), key=lambda it: it[0])
        reference = next(it[1] for s in SPLITS for it in self._by_split[s])
        count, _ = _check_image(reference, None)
        self.source_sizes = tuple(sorted({_check_image(path, (count, reference))[1] for _, path, _ in self.items}))
        names = ("red", "green", "blue") if count == 3 else ("gray",)
        side = ChipSide(tuple(range(1, count + 1)), names, "uint8", None)
        self.input_info = self.target_info = side
        self.chip_size = crop_size
        self.pixel_size, self.crs = None, None
        fixed = Normalizer("minmax", (127.5,) * count, (127.5,) * count, True)
        self.fixed_normalizers = (fixed, fixed)
        digest = hashlib.sha256()
        for s in SPLITS:
            for cid, path, _ in self._by_split[s]:
                digest.update(f"{s}/{path.name}\t{path.stat().st_size}\n".encode())
        self.source_sha256 = digest.hexdigest()
        self._setup(augment, input_normalizer, target_normalizer, seed)

    @property
    def preprocess(self) -> dict[str, Any]:
        """What train should record in the bundle: layout, direction, load and crop sizes, resampling, crop."""
        return {"layout": self.format_name, "direction": self.direction, "load_size": self.load_size,
                "crop_size": self.crop_size, "resample": "bicubic",
                "crop": "random" if self.random_crop else "centre"}

    @property
    def stats(self) -> dict[str, dict]:
        """The fixed 8-bit range the normalizers map to [-1, 1] (min 0, max 255): no pass over the images.

        A dataset of several folders that mixes layouts streams real statistics with :meth:`stats_state`.
        """
        band = {"count": None, "min": 0.0, "max": 255.0, "mean": float("nan"), "std": float("nan"),
                "percentiles": {}}
        return {side: {"bands": [dict(band, name=n) for n in self.input_info.band_names]}
                for side in ("input", "target")}

    @property
    def train_items(self) -> list[Item]:
        """The images of ``train/``."""
        return self._by_split["train"]

    def all_chip_ids(self) -> list[str]:
        """The image names of every split (a name may be in two splits: maps has ``train/1.jpg`` and ``val/1.jpg``)."""
        return [cid for s in SPLITS for cid, _, _ in self._by_split[s]]

    def _read_item(self, item: Item) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Both halves resized to ``load_size`` (uint8, bands first), in ``direction`` order; all valid."""
        a, b = _load_halves(item[1], self.load_size)
        x, y = (a, b) if self.direction == "AtoB" else (b, a)
        return x, y, np.ones(x.shape[1:], dtype=bool)

    def read_raw(
        self, index: int, draw_key: tuple[int, int, int] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The resized pair of item ``index``, cropped to ``crop_size`` (at random for train, see the module)."""
        x, y, valid = self._read_item(self.items[index])
        rng = None
        if self.random_crop:
            seed, epoch, key = draw_key if draw_key is not None else (self.seed, self.epoch, index)
            rng = np.random.default_rng([int(seed), int(epoch), int(key), _CROP_STREAM])
        r, c = crop_offset(self.load_size, self.crop_size, rng)
        window = (slice(r, r + self.crop_size), slice(c, c + self.crop_size))
        return x[(slice(None),) + window], y[(slice(None),) + window], valid[window]


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES)


def _split_items(folder: Path) -> list[Item]:
    if not folder.is_dir():
        return []
    by_stem: dict[str, Path] = {}
    for path in _images(folder):
        if path.stem in by_stem:
            raise ChipFolderError(f"'{by_stem[path.stem]}' and '{path}' share the name '{path.stem}'; names must be "
                                  "unique in a split folder of a pix2pix aligned dataset: rename one.")
        by_stem[path.stem] = path
    return [(stem, by_stem[stem], by_stem[stem]) for stem in sorted(by_stem)]


def _mode(image: Image.Image, path: Path) -> str:
    """The PIL mode an image is read in: ``L`` (gray) or ``RGB``; other data types are refused."""
    if image.mode in _NOT_8BIT or image.mode.startswith("I;"):
        raise ChipFolderError(
            f"'{path}' is not an 8-bit image (PIL mode {image.mode}); a pix2pix aligned folder holds 8-bit RGB or "
            "gray images. Put other data in paired folders (A/ and B/ of rasters) instead."
        )
    return "L" if image.mode in _GRAY_MODES else "RGB"


def _check_image(path: Path, expected: tuple[int, Path] | None) -> tuple[int, tuple[int, int]]:
    """The band count of an A|B image and the (width, height) of one half (header only), checking that its
    width splits in two."""
    try:
        with Image.open(path) as image:
            count = 1 if _mode(image, path) == "L" else 3
            width, height = image.size
    except (OSError, UnidentifiedImageError) as exc:
        raise ChipFolderError(f"Cannot read '{path}' as an image ({exc}); replace or remove it.") from None
    if width % 2:
        raise ChipFolderError(f"'{path}' is {width}×{height} px: an odd width cannot be split into A|B halves "
                              "(A the left half, B the right); expected side-by-side pairs of equal width.")
    if expected is not None and count != expected[0]:
        raise ChipFolderError(f"'{path}' has {count} band(s) but '{expected[1]}' has {expected[0]}; every image of a "
                              "pix2pix aligned folder must be RGB, or every one gray.")
    return count, (width // 2, height)


def _load_halves(path: Path, load_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The A (left) and B (right) halves of an image, each resized to ``load_size`` squared: (bands, h, w) uint8."""
    try:
        with Image.open(path) as image:
            image = image.convert(_mode(image, path))
    except (OSError, UnidentifiedImageError) as exc:
        raise ChipFolderError(f"Cannot read '{path}' as an image ({exc}); replace or remove it.") from None
    width, height = image.size
    half = width // 2
    out = []
    for box in ((0, 0, half, height), (half, 0, width, height)):
        part = image.crop(box).resize((load_size, load_size), Image.Resampling.BICUBIC)
        arr = np.asarray(part, dtype=np.uint8)
        out.append(np.ascontiguousarray(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)))
    return out[0], out[1]
