"""The options of a chip export: :class:`ExportConfig`, the schema of ``export-config.yaml``.

Values are converted by :class:`~geop2p.schema.ConfigSchema` (``"64"`` → 64,
``"1,2,3"`` → ``(1, 2, 3)``; a value of the wrong kind is one
:class:`~geop2p.errors.ConfigError` naming the key), then checked here, before
any raster is opened.

Example:
    >>> ExportConfig.from_dict({"size": "64", "input_bands": "1,2,3"}).input_bands
    (1, 2, 3)
    >>> ExportConfig.from_dict({"split": 0.8})
    Traceback (most recent call last):
    ...
    geop2p.errors.ConfigError: split: expected a list of numbers, got 0.8.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from geop2p.chips import ChipSpec
from geop2p.errors import InputError
from geop2p.io.compression import check_compression
from geop2p.io.sources import RESAMPLING_NAMES
from geop2p.schema import ConfigSchema
from geop2p.split import SPLIT_MODES, SplitSpec

__all__ = ["AOI_MODES", "ExportConfig"]

#: How chips relate to an AOI: entirely inside it, or touching it.
AOI_MODES: tuple[str, str] = ("within", "intersects")

#: The most worker processes an export starts (each holds its own datasets and GDAL cache).
MAX_WORKERS = 256

#: Keys of an ``export-config.yaml`` that record the run rather than set an option.
_RECORD_KEYS = ("sources",)


@dataclass(frozen=True)
class ExportConfig(ConfigSchema):
    """Every option of a chip export (the schema of ``export-config.yaml``).

    Attributes:
        input_bands: 1-based indexes into the stacked input bands (default: all).
        target_bands: 1-based indexes into the stacked target bands (default: all).
        size: chip edge in pixels, a multiple of 32.
        stride: step between chips in pixels (default: ``size``).
        min_valid: smallest fraction of pixels valid in both rasters for a chip to be kept.
        resampling: how the target is resampled onto the input grid (default: see
            :func:`geop2p.io.sources.default_resampling`).
        aoi: a vector file; only chips inside it (or touching it, see ``aoi_mode``) are kept.
        aoi_mode: ``"within"`` or ``"intersects"``.
        split: train, val, test fractions (two values: no test).
        split_mode: ``"blocks"`` (spatial, default) or ``"random"`` (leaks; warns).
        block_size: spatial block edge in pixels.
        buffer: minimum distance in pixels between val/test and train chips (default: ``size``).
        seed: split seed.
        workers: worker processes (1: run in this process; at most :data:`MAX_WORKERS`).
        compress: chip compression, one of ``deflate``, ``zstd``, ``lzw``, ``none``.
        chip_spec: the resolved :class:`~geop2p.chips.ChipSpec` (derived, not an option).
        split_spec: the resolved :class:`~geop2p.split.SplitSpec` (derived, not an option).

    Example:
        >>> cfg = ExportConfig(size=128)
        >>> cfg.chip_spec.stride, cfg.split_spec.buffer
        (128, 128)
        >>> ExportConfig().to_dict()["stride"]
        256
        >>> ExportConfig.from_dict({"size": 64}).stride
        64
    """

    what = "export option"

    input_bands: tuple[int, ...] | None = None
    target_bands: tuple[int, ...] | None = None
    size: int = 256
    stride: int | None = None
    min_valid: float = 0.95
    resampling: str | None = None
    aoi: str | None = None
    aoi_mode: str = "within"
    split: tuple[float, ...] = (0.8, 0.1, 0.1)
    split_mode: str = "blocks"
    block_size: int = 1024
    buffer: int | None = None
    seed: int = 0
    workers: int = 1
    compress: str = "deflate"
    chip_spec: ChipSpec = field(init=False, repr=False, compare=False)
    split_spec: SplitSpec = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.coerce_fields()
        spec = ChipSpec(self.size, self.stride, self.min_valid)
        object.__setattr__(self, "chip_spec", spec)
        object.__setattr__(self, "size", spec.size)
        object.__setattr__(self, "stride", spec.stride)
        object.__setattr__(self, "min_valid", spec.min_valid)
        if self.split_mode not in SPLIT_MODES:
            raise InputError(f"Unknown split mode {self.split_mode!r}; valid modes: {', '.join(SPLIT_MODES)}.")
        buffer = spec.size if self.buffer is None else self.buffer
        sspec = SplitSpec(self.split, self.block_size, buffer, self.seed, self.split_mode)
        object.__setattr__(self, "split_spec", sspec)
        object.__setattr__(self, "split", sspec.fractions)
        object.__setattr__(self, "buffer", sspec.buffer)
        object.__setattr__(self, "block_size", sspec.block_size)
        object.__setattr__(self, "seed", sspec.seed)
        if self.aoi_mode not in AOI_MODES:
            raise InputError(f"Unknown AOI mode {self.aoi_mode!r}; valid modes: {', '.join(AOI_MODES)}.")
        check_compression(self.compress)
        if self.workers < 1:
            raise InputError(f"workers must be a whole number >= 1, got {self.workers!r}; use e.g. --workers 4.")
        if self.workers > MAX_WORKERS:
            raise InputError(f"workers must be at most {MAX_WORKERS}, got {self.workers!r}; use about one per "
                             "CPU core, e.g. --workers 4.")
        if self.resampling is not None and self.resampling not in RESAMPLING_NAMES:
            raise InputError(f"Unknown resampling {self.resampling!r}; valid names: {', '.join(RESAMPLING_NAMES)}.")

    @classmethod
    def read_yaml(cls, path: str | os.PathLike, ignore: tuple[str, ...] = _RECORD_KEYS) -> dict:
        """The options of a YAML file as a dict, keys checked (an ``export-config.yaml``'s ``sources`` are ignored).

        Example:
            >>> import pathlib, tempfile
            >>> folder = tempfile.TemporaryDirectory()
            >>> path = pathlib.Path(folder.name) / "export-config.yaml"
            >>> _ = path.write_text("size: 64\\nworkers: 4\\nsources: {input: [a.tif], target: [b.tif]}\\n")
            >>> ExportConfig.read_yaml(path)
            {'size': 64, 'workers': 4}
            >>> folder.cleanup()
        """
        return super().read_yaml(path, ignore)

    @classmethod
    def from_yaml(cls, path: str | os.PathLike, ignore: tuple[str, ...] = _RECORD_KEYS) -> "ExportConfig":
        """Build from a YAML file of options (an ``export-config.yaml`` written by an export works).

        Example:
            >>> import pathlib, tempfile
            >>> folder = tempfile.TemporaryDirectory()
            >>> path = pathlib.Path(folder.name) / "export-config.yaml"
            >>> _ = path.write_text(ExportConfig(size=64).to_yaml() + "sources: {input: [a.tif], target: [b.tif]}\\n")
            >>> ExportConfig.from_yaml(path) == ExportConfig(size=64)
            True
            >>> folder.cleanup()
        """
        return super().from_yaml(path, ignore)
