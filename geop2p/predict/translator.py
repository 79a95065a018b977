"""A :class:`Translator`: a generator and its bundle header, turning arrays and rasters into predictions.

Every entry point (:meth:`Translator.predict_array`,
:meth:`Translator.predict_dataarray`, :meth:`Translator.predict_raster`,
:func:`geop2p.predict.predict_scenes`) runs the same sliding-window engine
(:mod:`geop2p.predict.engine`):

1. The scene is cut into square windows (the model's chip size, or ``window``)
   overlapping by ``overlap`` pixels (:mod:`geop2p.tiling`); the last row and
   column of windows are shifted back inside the raster, and a scene smaller
   than a window is reflect-padded.
2. The reader thread keeps the bands the bundle was trained on, normalises
   them with the bundle's input normaliser and sets invalid pixels (nodata,
   mask, NaN in any band) to 0, the middle of the network's range.
3. The calling thread runs the windows through the network in batches
   (``torch.inference_mode``; on CUDA bf16 autocast and channels-last by
   default, fp32 on CPU), optionally averaging flips/rotations
   (:mod:`geop2p.predict.tta`) in normalised space, each inverted exactly.
4. The writer thread blends the windows with Hann/cosine weights,
   de-normalises the rows to the target's units, rounds and clips them to the
   target dtype, sets nodata where the input was invalid, and writes them.

Why the default overlap
    The default is the bundle's ``recommended_overlap`` (a quarter of the chip
    for models trained by geop2p).  A U-Net's predictions are worst within a few
    dozen pixels of the window border, where its receptive field runs into zero
    padding and it has seen the least context; with a quarter-window overlap and
    Hann ramps, those pixels get almost no weight (the neighbour's interior
    prediction wins) and the cross-fade spans 64 px of a 256 px window, wide
    enough that the residual difference between neighbouring windows is spread
    below visibility.  It costs ``(window / (window - overlap))²`` ≈ 1.8× the
    windows of no overlap; ``window // 2`` costs 4× and buys little more.

Example:
    >>> import numpy as np
    >>> from geop2p.formats import BandSide, BundleHeader
    >>> from geop2p.models import build_generator
    >>> from geop2p.normalize import Normalizer
    >>> generator = build_generator({"architecture": "linear", "in_channels": 1, "out_channels": 1})
    >>> side = BandSide(("dem",), "float32", None, Normalizer.identity(1))
    >>> header = BundleHeader(generator.spec, side, side, chip_size=64, recommended_overlap=16)
    >>> t = Translator(generator, header, device="cpu")
    >>> (t.window, t.overlap), t.predict_array(np.zeros((1, 100, 70), np.float32)).shape
    ((64, 16), (1, 100, 70))
    >>> t = Translator.from_file("run/model.safetensors")  # doctest: +SKIP
    >>> t.predict_raster("scene.tif", "scene_pred.tif", overwrite=True)  # doctest: +SKIP
    PosixPath('scene_pred.tif')
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from geop2p.device import resolve_device
from geop2p.errors import BandIndexError, InputError
from geop2p.formats import BundleHeader
from geop2p.io.read import RasterInfo
from geop2p.models.bundle import header_for
from geop2p.predict import preflight
from geop2p.predict.adapters import array_valid, predict_dataarray
from geop2p.predict.config import PredictConfig
from geop2p.predict.engine import Progress, TargetCast, run_pipeline
from geop2p.predict.memory import activation_factor, check_window_fits
from geop2p.predict.raster import PREDICT_CACHE_MB, predict_raster
from geop2p.predict.tta import _TTA_SETS, dihedral, dihedral_inverse
from geop2p.tiling import Strip, WindowPlan, plan_windows

__all__ = ["PREDICT_CACHE_MB", "Translator"]

log = logging.getLogger(__name__)


class Translator:
    """A generator plus its bundle header, ready to translate arrays, DataArrays and rasters.

    Args:
        generator: any ``torch.nn.Module`` mapping ``(B, in, h, w)`` to ``(B, out, h, w)`` in normalised units.
        header: the bundle's :class:`~geop2p.formats.BundleHeader`, or its JSON document as a dict
            (checked by :meth:`BundleHeader.from_dict`; ``format`` fields and, from
            ``generator.spec``, ``generator`` are filled in when missing).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (None: ``config.device``).
        config: a :class:`PredictConfig`; keyword ``opts`` override its fields.

    Raises:
        BundleError: when a dict header is invalid.
        SizeMultipleError: when the window is not a multiple of 32 (or of the generator's divisor).
        InputError: when the overlap is not from 0 to half the window.
        ConfigError: an unknown device, or CUDA asked for where there is none.

    Example:
        >>> t = Translator.from_file("model.safetensors", device="cpu", overlap=32)  # doctest: +SKIP
        >>> pred = t.predict_array(scene)  # (bands, h, w) in, (target bands, h, w) out  # doctest: +SKIP
    """

    #: the bundle file this translator was loaded from (None when built from a module)
    source: str | None = None

    def __init__(
        self,
        generator: torch.nn.Module,
        header: BundleHeader | Mapping[str, Any],
        device: str | None = None,
        config: PredictConfig | None = None,
        **opts: Any,
    ) -> None:
        config = config or PredictConfig()
        if device is not None:
            opts["device"] = device
        config = config.replace(**opts) if opts else config
        self.header = header = header_for(generator, header)
        self.input, self.target = header.input, header.target
        self.in_channels, self.out_channels = header.in_channels, header.out_channels
        self.divisor = max(32, int(getattr(generator, "required_divisor", 1) or 1))
        self.window, self.overlap = preflight.resolve_window(header, config.window, config.overlap, self.divisor)
        if config.bands is not None and len(config.bands) != self.in_channels:
            raise BandIndexError(
                f"--bands lists {len(config.bands)} band(s) {list(config.bands)} but the model takes "
                f"{self.in_channels} input band(s) ({', '.join(self.input.band_names)}); give exactly {self.in_channels}."
            )
        self.device = resolve_device(config.device)
        cuda = self.device.type == "cuda"
        precision = config.precision if config.precision != "auto" else ("bf16" if cuda else "fp32")
        self.autocast_dtype = torch.bfloat16 if precision == "bf16" else None
        self.channels_last = config.channels_last if config.channels_last is not None else True
        self.config = config.replace(window=self.window, overlap=self.overlap, precision=precision)
        self.generator = generator.to(self.device).eval()
        if self.channels_last:
            self.generator = self.generator.to(memory_format=torch.channels_last)
        self._tta = _TTA_SETS[config.tta]
        self._cast = TargetCast(self.target.normalizer, np.dtype(self.target.dtype), self.target.nodata)
        log.debug(
            "Translator: window %d, overlap %d, batch %d, device %s, precision %s, tta %d",
            self.window, self.overlap, config.batch_size, self.device, precision, config.tta,
        )

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_file(cls, path: str | os.PathLike, device: str | None = "auto", **opts: Any) -> "Translator":
        """Load a model bundle (never unpickling anything) and wrap it.

        Args:
            path: the ``.safetensors`` bundle written by ``geop2p train``.
            device: ``auto``, ``cpu`` or ``cuda`` (None: ``config.device``).
            **opts: :class:`PredictConfig` fields (``window``, ``overlap``, ``tta``...) or ``config``.

        Raises:
            BundleError: missing file, not a bundle, or a pickle.

        Example:
            >>> t = Translator.from_file("run/model.safetensors", tta=2)  # doctest: +SKIP
        """
        from geop2p.models.bundle import load_bundle

        generator, header = load_bundle(path, device="cpu")
        translator = cls(generator, header, device=device, **opts)
        translator.source = str(path)
        return translator

    # ------------------------------------------------------------------ checks
    def scene_bands(self, count: int, what: str, bands: Sequence[int] | None = None) -> list[int]:
        """The 1-based bands of a ``count``-band scene that feed the model; raise when they don't exist.

        Raises:
            BandIndexError: naming the scene, its band count and the bands the model needs.
        """
        return preflight.scene_bands(self.input, count, what, bands if bands is not None else self.config.bands)

    def check_scene_info(self, path: str | os.PathLike, bands: Sequence[int] | None = None) -> tuple[RasterInfo, list[int]]:
        """Open ``path`` and check it can feed the model; return its description and its bands (1-based).

        Raises:
            RasterReadError: missing, unreadable or truncated scene.
            BandIndexError: the scene lacks bands.
            InputError: complex bands (take the amplitude or dB first).
        """
        return preflight.check_scene(path, self.input, bands if bands is not None else self.config.bands)

    def check_scene(self, path: str | os.PathLike, bands: Sequence[int] | None = None) -> list[int]:
        """Open ``path`` and check it can feed the model (see :meth:`check_scene_info`); return its bands (1-based)."""
        return self.check_scene_info(path, bands)[1]

    def check_sizes(self, sizes: Sequence[tuple[int, int]], names: Sequence[str]) -> None:
        """Refuse a window too large for the largest of ``sizes`` (``(height, width)``), or for the memory.

        Beyond what the largest scene needs a window adds only padding
        (:func:`geop2p.predict.preflight.check_window_bound`); and the windows of a
        batch, the strips and the network's activations must fit in the memory of
        the host and the device (:func:`geop2p.predict.memory.check_window_fits`).

        Raises:
            ChipSizeError: naming the largest window that would do.
        """
        preflight.check_window_bound(self.window, self.header.chip_size, sizes, names, self.divisor)
        check_window_fits(
            sizes, window=self.window, overlap=self.overlap, divisor=self.divisor, in_channels=self.in_channels,
            out_channels=self.out_channels, batch_size=self.config.batch_size,
            activation=activation_factor(self.header.generator), queue_depth=self.config.queue_depth,
            tta=len(self._tta), strip_rows=self.config.strip_rows, device=self.device,
        )

    @property
    def output_dtype(self) -> np.dtype:
        """The data type of the predictions (the target's)."""
        return self._cast.dtype

    # ------------------------------------------------------------------ compute
    def _forward(self, batch: np.ndarray) -> np.ndarray:
        """``(B, in, w, w)`` normalised windows → ``(B, out, w, w)`` float32, TTA averaged."""
        x = torch.from_numpy(batch).to(self.device, non_blocking=True)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        total = None
        with torch.inference_mode(), torch.autocast(
            self.device.type, dtype=self.autocast_dtype or torch.float32, enabled=self.autocast_dtype is not None
        ):
            for k in self._tta:
                y = dihedral_inverse(self.generator(dihedral(x, k)), k).float()
                total = y if total is None else total + y
        if len(self._tta) > 1:
            total = total / len(self._tta)
        return total.cpu().numpy()

    def _run(
        self,
        plan: WindowPlan,
        read: Callable[[Strip], tuple[np.ndarray, np.ndarray]],
        sink: Callable[[int, np.ndarray, np.ndarray], None],
        progress: Progress | None,
    ) -> None:
        """Run the engine: ``read`` gives raw input values and validity, ``sink`` gets target values."""
        normalizer = self.input.normalizer

        def read_normalised(strip: Strip) -> tuple[np.ndarray, np.ndarray]:
            data, valid = read(strip)
            x = np.asarray(normalizer.normalize(data), dtype=np.float32)
            x[:, ~valid] = 0.0
            np.nan_to_num(x, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
            return x, valid

        def sink_target(row_off: int, rows: np.ndarray, valid: np.ndarray) -> None:
            sink(row_off, self._cast(rows, valid), valid)

        run_pipeline(
            plan, read_normalised, self._forward, sink_target,
            channels=self.out_channels, batch_size=self.config.batch_size, blend=self.config.blend,
            queue_depth=self.config.queue_depth, progress=progress,
        )

    # ------------------------------------------------------------------ arrays
    def predict_array(
        self, array: np.ndarray, valid: np.ndarray | None = None, progress: Progress | None = None
    ) -> np.ndarray:
        """Predict a ``(bands, height, width)`` array of raw input values, any size.

        ``bands`` are the model's input bands in order (``in_channels`` of them; a
        2-D array is accepted for one band).  Uses the same sliding windows,
        blending and casting as :meth:`predict_raster`.

        Args:
            array: raw input values (the scene's units and dtype).
            valid: ``(height, width)`` boolean validity; None derives it from the
                bundle's input nodata and NaNs.
            progress: called as ``progress(windows_done, windows_total)``.

        Returns:
            ``(target bands, height, width)`` in the target dtype; invalid pixels
            hold the target nodata (NaN for a float target without nodata, 0 for
            an integer target without nodata).

        Example:
            >>> pred = translator.predict_array(np.zeros((3, 300, 200), np.uint8))  # doctest: +SKIP
            >>> pred.shape  # doctest: +SKIP
            (1, 300, 200)
        """
        array = np.asarray(array)
        if array.ndim == 2 and self.in_channels == 1:
            array = array[None]
        if array.ndim != 3 or array.shape[0] != self.in_channels:
            raise InputError(
                f"predict_array expects (bands, height, width) with {self.in_channels} band(s) "
                f"({', '.join(self.input.band_names)}); got shape {array.shape}. Select the model's bands first."
            )
        if np.iscomplexobj(array):
            preflight.refuse_complex("the array is", str(array.dtype))
        height, width = array.shape[1:]
        if valid is None:
            valid = array_valid(array, self.input.nodata)
        else:
            valid = np.asarray(valid, bool)
            if valid.shape != (height, width):
                raise InputError(f"valid must have shape {(height, width)} like the array's rows/cols; got {valid.shape}.")
        self.check_sizes([(height, width)], ["the array"])
        plan = plan_windows(height, width, self.window, self.overlap, self.config.strip_rows)
        out = np.empty((self.out_channels, height, width), self._cast.dtype)
        fill = self._cast.fill_value

        def read(strip: Strip) -> tuple[np.ndarray, np.ndarray]:
            r1 = min(strip.read_row_end, height)
            return array[:, strip.read_row_off : r1], valid[strip.read_row_off : r1]

        def sink(row_off: int, rows: np.ndarray, v: np.ndarray) -> None:
            block = out[:, row_off : row_off + rows.shape[1]]
            block[...] = rows
            if not v.all():
                block[:, ~v] = fill

        self._run(plan, read, sink, progress)
        return out

    def predict_dataarray(self, da: Any, progress: Progress | None = None) -> Any:
        """Predict an ``xarray.DataArray``; see :func:`geop2p.predict.adapters.predict_dataarray`.

        Example:
            >>> pred = translator.predict_dataarray(rioxarray.open_rasterio("scene.tif"))  # doctest: +SKIP
        """
        return predict_dataarray(self, da, progress)

    # ------------------------------------------------------------------ rasters
    def predict_raster(
        self,
        src_path: str | os.PathLike,
        dst_path: str | os.PathLike | None = None,
        *,
        overwrite: bool = False,
        progress: Progress | None = None,
        bands: Sequence[int] | None = None,
        cog: bool | None = None,
    ) -> Path:
        """Predict a whole raster into a GeoTIFF on exactly its grid, streamed strip by strip.

        The output is placed exactly like the scene: same transform and CRS, or the
        same ground control points, or the same RPCs.  Whatever stops it (an error,
        a full disk, Ctrl-C, SIGTERM) leaves nothing behind; see
        :mod:`geop2p.predict.raster`.

        Args:
            src_path: the scene (any GDAL raster).
            dst_path: the output (default ``<scene>_pred.tif`` beside the scene).
            overwrite: replace an existing output.
            progress: called as ``progress(windows_done, windows_total)``.
            bands: 1-based scene bands feeding the model (default: the bundle's, or ``config.bands``).
            cog: write a Cloud Optimized GeoTIFF (default: ``config.cog``).

        Returns:
            The output path (written whole: a temporary name is renamed when complete).

        Raises:
            RasterReadError: unreadable or truncated scene. BandIndexError: scene lacks bands.
            InputError: complex bands; a window too large for the scene or the memory.
            OutputExistsError: output exists and ``overwrite`` is False.
            WriteError: the output could not be written (DiskFullError: the disk is full).

        Example:
            >>> translator.predict_raster("scene.tif", "pred.tif", overwrite=True)  # doctest: +SKIP
            PosixPath('pred.tif')
        """
        from geop2p.predict.scenes import default_output_path  # output naming lives with the scene rules

        dst_path = Path(dst_path) if dst_path is not None else default_output_path(src_path)
        return predict_raster(self, src_path, dst_path, overwrite=overwrite, progress=progress, bands=bands, cog=cog)
