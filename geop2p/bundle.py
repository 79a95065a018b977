"""The model bundle: one self-describing ``.safetensors`` file, weights plus a JSON header. No pickle.

The tensors are the generator's ``state_dict()``; the safetensors metadata holds
one key, ``"geop2p"``, whose value is the JSON document described in
``docs/formats.md`` (architecture, normalizers, band names, target dtype and
nodata, chip size, recommended overlap, training provenance).

Reading a bundle never unpickles anything: the header is parsed by hand (8-byte
little-endian length + JSON) and tensors are read by ``safetensors``. Files that
are pickles (``torch.save`` output, plain pickles) are recognised by their magic
bytes and refused with a message saying why.

Example:
    >>> from geop2p.models import build_generator
    >>> g = build_generator({"architecture": "linear", "in_channels": 3, "out_channels": 1})
    >>> save_bundle("model.safetensors", g, meta)  # doctest: +SKIP
    >>> print(describe_bundle(read_bundle_header("model.safetensors")))  # doctest: +SKIP
    >>> generator, header = load_bundle("model.safetensors", device="cuda")  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from geop2p import __version__
from geop2p.errors import BundleError, BundleNotFoundError, ConfigError, InputError
from geop2p.io.atomic import atomic_path, check_output_free
from geop2p.normalize import Normalizer

if TYPE_CHECKING:  # torch is imported lazily: reading a header (geop2p info) needs no torch
    import torch
    from torch import nn

__all__ = [
    "BUNDLE_FORMAT",
    "BUNDLE_FORMAT_VERSION",
    "BUNDLE_SUFFIX",
    "BundleNotFoundError",
    "ModelBundle",
    "describe_bundle",
    "load_bundle",
    "read_bundle",
    "read_bundle_header",
    "save_bundle",
    "validate_bundle_header",
]

logger = logging.getLogger(__name__)

BUNDLE_FORMAT = "geop2p-model"
BUNDLE_FORMAT_VERSION = 1
BUNDLE_SUFFIX = ".safetensors"
_METADATA_KEY = "geop2p"
_MAX_HEADER_BYTES = 100 * 1024 * 1024  # safetensors' own limit
_RASTER_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "float32", "float64")


# ---------------------------------------------------------------------------------------- validation
def _fail(source: str, message: str) -> BundleError:
    return BundleError(f"{source}: {message}")


def _check_band_side(doc: Mapping[str, Any], side: str, n_channels: int, source: str) -> None:
    block = doc.get(side)
    if not isinstance(block, Mapping):
        raise _fail(source, f"header has no '{side}' object; expected band names, dtype, nodata and normalizer.")
    names = block.get("band_names")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise _fail(source, f"'{side}.band_names' must be a list of strings; got {names!r}.")
    if len(names) != n_channels:
        raise _fail(
            source,
            f"'{side}.band_names' lists {len(names)} band(s) but the generator has {n_channels} "
            f"{'input' if side == 'input' else 'output'} channel(s).",
        )
    bands = block.get("bands")
    if bands is not None and (
        not isinstance(bands, list)
        or len(bands) != n_channels
        or not all(isinstance(b, int) and not isinstance(b, bool) and b >= 1 for b in bands)
    ):
        raise _fail(source, f"'{side}.bands' must list {n_channels} 1-based band indexes; got {bands!r}.")
    dtype = block.get("dtype")
    if dtype not in _RASTER_DTYPES:
        raise _fail(source, f"'{side}.dtype' is {dtype!r}; expected one of {', '.join(_RASTER_DTYPES)}.")
    nodata = block.get("nodata")
    if not (nodata is None or nodata == "nan" or (isinstance(nodata, (int, float)) and not isinstance(nodata, bool))):
        raise _fail(source, f"'{side}.nodata' is {nodata!r}; expected a number, \"nan\" or null.")
    if isinstance(nodata, (int, float)) and math.isfinite(nodata):
        info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else np.finfo(dtype)
        if not info.min <= nodata <= info.max:
            raise _fail(source, f"'{side}.nodata' {nodata} does not fit the dtype {dtype}.")
    try:
        normalizer = Normalizer.from_dict(block.get("normalizer"))
    except ConfigError as exc:
        raise _fail(source, f"'{side}.normalizer' is invalid: {exc}") from None
    if normalizer.n_bands != n_channels:
        raise _fail(
            source,
            f"'{side}.normalizer' has {normalizer.n_bands} band(s) but '{side}.band_names' has {n_channels}.",
        )


def validate_bundle_header(doc: Any, source: str = "model bundle") -> dict[str, Any]:
    """Check a bundle's JSON document and return it with the generator spec fully resolved.

    Args:
        doc: the ``"geop2p"`` metadata document.
        source: how to name the file in messages.

    Raises:
        BundleError: wrong format or version, missing keys, channel counts that disagree
            between the generator, the band names and the normalizers, bad chip size or overlap.

    Example:
        >>> validate_bundle_header({"format": "something-else"})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        geop2p.errors.BundleError: model bundle: header format is 'something-else'; expected 'geop2p-model'...
    """
    if not isinstance(doc, Mapping):
        raise _fail(source, f"the geop2p header must be a JSON object; got {type(doc).__name__}.")
    if doc.get("format") != BUNDLE_FORMAT:
        raise _fail(source, f"header format is {doc.get('format')!r}; expected {BUNDLE_FORMAT!r} (a geop2p model).")
    version = doc.get("format_version")
    if isinstance(version, int) and not isinstance(version, bool) and version > BUNDLE_FORMAT_VERSION:
        raise _fail(
            source,
            f"format_version {version} was written by a newer geop2p ({doc.get('geop2p_version', '?')}); "
            f"this geop2p {__version__} reads format_version {BUNDLE_FORMAT_VERSION}. Upgrade geop2p.",
        )
    if version != BUNDLE_FORMAT_VERSION:
        raise _fail(source, f"unsupported format_version {version!r}; expected {BUNDLE_FORMAT_VERSION}.")
    from geop2p.models.generators import resolve_generator_spec  # models imports torch: only here

    try:
        spec = resolve_generator_spec(doc.get("generator"))
    except ConfigError as exc:
        raise _fail(source, f"'generator' is invalid: {exc}") from None
    _check_band_side(doc, "input", spec["in_channels"], source)
    _check_band_side(doc, "target", spec["out_channels"], source)
    chip = doc.get("chip_size")
    if isinstance(chip, bool) or not isinstance(chip, int) or chip < 1:
        raise _fail(source, f"'chip_size' must be a positive integer (pixels); got {chip!r}.")
    overlap = doc.get("recommended_overlap")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap < chip:
        raise _fail(source, f"'recommended_overlap' must be an integer in [0, chip_size={chip}); got {overlap!r}.")
    training = doc.get("training")
    if training is not None and not isinstance(training, Mapping):
        raise _fail(source, f"'training' must be an object or null; got {type(training).__name__}.")
    resolved = copy.deepcopy(dict(doc))
    resolved["generator"] = spec
    return resolved


# ---------------------------------------------------------------------------------------- reading
def _sniff(path: Path) -> dict[str, Any]:
    """Parse a safetensors file's own JSON header (tensor table + ``__metadata__``) without unpickling."""
    source = f"'{path}'"
    if path.is_dir():
        hint = path / "model.safetensors"
        extra = f" such as '{hint}'" if hint.exists() else " (the .safetensors file written by geop2p train)"
        raise BundleError(f"{source} is a folder; expected a model file{extra}.")
    if not path.exists():
        raise BundleNotFoundError(
            f"Model file {source} does not exist; pass the .safetensors bundle written by `geop2p train` "
            "(RUN_DIR/model.safetensors)."
        )
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else 0
            raw = fh.read(n) if 2 <= n <= min(_MAX_HEADER_BYTES, size - 8) else b""
    except OSError as exc:
        raise BundleError(f"Cannot read model file {source}: {exc.strerror or exc}.") from exc
    header = None
    if raw[:1] == b"{":
        try:
            header = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            header = None
    if isinstance(header, dict):
        return header
    # not safetensors: say what it is when it is a pickle (never load it to find out)
    if head[:4] == b"PK\x03\x04":
        kind = "a ZIP archive, i.e. a pickled PyTorch file (torch.save)"
    elif head[:1] == b"\x80" and head[1:2] and head[1] <= 5:
        kind = "a Python pickle"
    else:
        kind = None
    if kind:
        raise BundleError(
            f"{source} is {kind}; geop2p never unpickles model files. "
            "Use a geop2p bundle (.safetensors) written by `geop2p train`."
        )
    raise BundleError(
        f"{source} is not a safetensors file ({size} bytes, no valid safetensors header); "
        "expected a .safetensors geop2p bundle written by `geop2p train`."
    )


def read_bundle_header(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check only the geop2p JSON document of a bundle (tensors are not read).

    Raises:
        BundleNotFoundError: the file does not exist.
        BundleError: a folder, a pickle or torch.save file, not safetensors, safetensors without
            the geop2p header, an unsupported format_version, or an inconsistent header.

    Example:
        >>> header = read_bundle_header("run/model.safetensors")  # doctest: +SKIP
        >>> header["chip_size"], header["target"]["band_names"]  # doctest: +SKIP
        (256, ['elevation'])
    """
    path = Path(path)
    if path.suffix.lower() == ".onnx":
        raise BundleError(
            f"'{path}' is an ONNX model; geop2p needs the .safetensors bundle it was exported from."
        )
    header = _sniff(path)
    metadata = header.get("__metadata__") or {}
    if _METADATA_KEY not in metadata:
        raise BundleError(
            f"'{path}' is a safetensors file but not a geop2p model bundle (no '{_METADATA_KEY}' metadata). "
            "Bare encoder weights go to `geop2p train --encoder-weights PATH`; "
            "`geop2p predict` needs the bundle written by `geop2p train`."
        )
    try:
        doc = json.loads(metadata[_METADATA_KEY])
    except (TypeError, json.JSONDecodeError) as exc:
        raise BundleError(f"'{path}': the geop2p header is not valid JSON ({exc}); the file is damaged.") from None
    return validate_bundle_header(doc, f"'{path}'")


@dataclass(frozen=True)
class ModelBundle:
    """A bundle in memory: the checked header document and the generator's weights.

    Attributes:
        header: the geop2p JSON document (generator spec resolved).
        state_dict: tensor name -> tensor (on CPU).

    Example:
        >>> bundle = read_bundle("model.safetensors")  # doctest: +SKIP
        >>> generator = bundle.build(device="cuda")  # doctest: +SKIP
    """

    header: dict[str, Any]
    state_dict: dict[str, "torch.Tensor"]

    @property
    def generator_spec(self) -> dict[str, Any]:
        """The ``generator`` spec: architecture, channels, params."""
        return self.header["generator"]

    @property
    def input_normalizer(self) -> Normalizer:
        """Normalizer for the input bands."""
        return Normalizer.from_dict(self.header["input"]["normalizer"])

    @property
    def target_normalizer(self) -> Normalizer:
        """Normalizer for the target bands (its ``denormalize`` writes predictions back in units)."""
        return Normalizer.from_dict(self.header["target"]["normalizer"])

    @property
    def chip_size(self) -> int:
        """Chip size the model was trained on (pixels)."""
        return int(self.header["chip_size"])

    @property
    def recommended_overlap(self) -> int:
        """Overlap between prediction windows recommended at training time (pixels)."""
        return int(self.header["recommended_overlap"])

    def build(self, device: "str | torch.device" = "cpu") -> "nn.Module":
        """The generator with these weights, on ``device``, in eval mode.

        Raises:
            BundleError: the weights do not match the header's architecture.
        """
        from geop2p.models.generators import build_generator

        try:
            module = build_generator(self.generator_spec)
        except ConfigError as exc:
            raise BundleError(f"The bundle's generator cannot be built: {exc}") from None
        try:
            module.load_state_dict(self.state_dict, strict=True)
        except RuntimeError as exc:
            detail = " ".join(str(exc).split())[:400]
            raise BundleError(
                "The bundle's weights do not match the architecture in its header (file altered or damaged): "
                f"{detail}"
            ) from None
        return module.to(device).eval()


def read_bundle(path: str | os.PathLike) -> ModelBundle:
    """Read a bundle's header and weights (CPU tensors) without building the network.

    Example:
        >>> read_bundle("run/model.safetensors").chip_size  # doctest: +SKIP
        256
    """
    header = read_bundle_header(path)
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise BundleError(f"'{path}': cannot read the weights ({exc}); the file is damaged or truncated.") from None
    return ModelBundle(header=header, state_dict=tensors)


def load_bundle(path: str | os.PathLike, device: "str | torch.device" = "cpu") -> tuple["nn.Module", dict[str, Any]]:
    """Load a bundle: the generator (weights loaded strictly, eval mode, on ``device``) and its header.

    Nothing is unpickled: the header is JSON and the tensors are read by safetensors.

    Example:
        >>> generator, header = load_bundle("run/model.safetensors", device="cpu")  # doctest: +SKIP
        >>> Normalizer.from_dict(header["target"]["normalizer"])  # doctest: +SKIP
    """
    bundle = read_bundle(path)
    module = bundle.build(device)
    logger.debug("Loaded %s generator from %s", bundle.generator_spec["architecture"], path)
    return module, bundle.header


# ---------------------------------------------------------------------------------------- writing
def _jsonable(value: Any) -> Any:
    """Plain JSON values: numpy scalars to Python, tuples to lists, NaN/inf to "nan"/"inf"/"-inf"."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value


def _unwrap(module: "nn.Module") -> "nn.Module":
    """The bare generator inside DistributedDataParallel / DataParallel / torch.compile wrappers."""
    for _ in range(3):
        inner = getattr(module, "module", None) or getattr(module, "_orig_mod", None)
        if inner is None:
            break
        module = inner
    return module


def _complete_meta(generator: "nn.Module", meta: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(meta, Mapping):
        raise BundleError(f"bundle metadata must be a dict (docs/formats.md, 'Model bundle'); got {type(meta).__name__}.")
    doc = _jsonable(meta)
    doc.setdefault("format", BUNDLE_FORMAT)
    doc.setdefault("format_version", BUNDLE_FORMAT_VERSION)
    doc.setdefault("geop2p_version", __version__)
    spec = getattr(generator, "spec", None)
    if "generator" not in doc:
        if spec is None:
            raise BundleError(
                "meta has no 'generator' spec and the module has no .spec; build the generator with "
                "geop2p.models.build_generator or pass meta['generator']."
            )
        doc["generator"] = copy.deepcopy(spec)
    return doc


def save_bundle(
    path: str | os.PathLike,
    generator: "nn.Module",
    meta: Mapping[str, Any],
    overwrite: bool = False,
) -> Path:
    """Write ``generator``'s weights and the ``meta`` document as one ``.safetensors`` bundle, atomically.

    ``format``, ``format_version``, ``geop2p_version`` and (from ``generator.spec``)
    ``generator`` are filled in when ``meta`` lacks them. Everything is checked before
    anything is written: the header (see :func:`validate_bundle_header`), that the
    module matches the header's generator spec tensor by tensor, and that ``chip_size``
    suits the architecture.

    Args:
        path: output file; must end with ``.safetensors``.
        generator: the trained generator.
        meta: the header document (``docs/formats.md``, "Model bundle").
        overwrite: replace an existing file.

    Returns:
        The path written.

    Raises:
        InputError: the name does not end with ``.safetensors``.
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
        BundleError: the header is invalid or does not match the module.

    Example:
        >>> meta = {"input": {"band_names": ["red", "green", "blue"], "dtype": "uint8", "nodata": None,
        ...                   "normalizer": Normalizer.identity(3).to_dict()},
        ...         "target": {"band_names": ["dsm"], "dtype": "float32", "nodata": -9999.0,
        ...                    "normalizer": Normalizer.identity(1).to_dict()},
        ...         "chip_size": 256, "recommended_overlap": 64, "training": None}
        >>> save_bundle("run/model.safetensors", generator, meta)  # doctest: +SKIP
    """
    import torch
    from safetensors.torch import save_file

    from geop2p.models.generators import build_generator

    generator = _unwrap(generator)
    path = Path(path)
    if path.suffix.lower() != BUNDLE_SUFFIX:
        raise InputError(f"Model bundle name '{path}' must end with {BUNDLE_SUFFIX}, e.g. run/model.safetensors.")
    check_output_free(path, overwrite)
    doc = validate_bundle_header(_complete_meta(generator, meta), "bundle metadata")
    spec = doc["generator"]
    own_spec = getattr(generator, "spec", None)
    if own_spec is not None and own_spec != spec:
        raise BundleError(f"bundle metadata: 'generator' {spec} differs from the module's own spec {own_spec}.")
    with torch.device("meta"):
        reference = build_generator(spec)
    ref_shapes = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    state = generator.state_dict()
    shapes = {k: tuple(v.shape) for k, v in state.items()}
    if shapes != ref_shapes:
        missing = sorted(set(ref_shapes) - set(shapes))[:5]
        extra = sorted(set(shapes) - set(ref_shapes))[:5]
        wrong = [k for k in ref_shapes if k in shapes and shapes[k] != ref_shapes[k]][:5]
        raise BundleError(
            f"The module does not match the generator spec {spec}: missing {missing}, unexpected {extra}, "
            f"different shapes {wrong}. Pass the spec the module was built from."
        )
    divisor = int(reference.required_divisor)
    if doc["chip_size"] % divisor:
        raise BundleError(
            f"bundle metadata: chip_size {doc['chip_size']} is not a multiple of {divisor}, which "
            f"{spec['architecture']} needs."
        )
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in state.items()}
    text = json.dumps(doc, sort_keys=False, allow_nan=False)
    with atomic_path(path, overwrite=overwrite) as tmp:
        save_file(tensors, str(tmp), metadata={_METADATA_KEY: text})
    logger.info("Wrote model bundle %s (%d tensors)", path, len(tensors))
    return path


# ---------------------------------------------------------------------------------------- describing
def _fmt_nodata(value: Any) -> str:
    return "none" if value is None else str(value)


def _fmt_normalizer(doc: Mapping[str, Any], names: list[str]) -> list[str]:
    norm = Normalizer.from_dict(doc)
    if norm.method == "percentile":
        title = f"percentile {norm.low}-{norm.high}"
    elif norm.method == "meanstd":
        title = "mean ± 3 std"
    else:
        title = norm.method
    title += ", clipped to [-1, 1]" if norm.clip else ""
    lines = [f"  normalizer: {title}"]
    for name, off, sc in zip(names, norm.offset, norm.scale):
        lines.append(f"    {name}: [{off - sc:.6g}, {off + sc:.6g}] -> [-1, 1]")
    return lines


def _fmt_params(spec: Mapping[str, Any]) -> str:
    params = spec.get("params") or {}
    if not params:
        return ""
    parts = []
    for key, value in params.items():
        if isinstance(value, list):
            value = "/".join(str(v) for v in value)
        parts.append(f"{key}={value}")
    return " (" + ", ".join(parts) + ")"


def describe_bundle(header: Mapping[str, Any]) -> str:
    """A human-readable, multi-line summary of a bundle header (what ``geop2p info`` prints).

    Example:
        >>> print(describe_bundle(read_bundle_header("run/model.safetensors")))  # doctest: +SKIP
        geop2p model bundle (format 1, geop2p 0.1.0)
        generator: smp-unet (encoder_name=resnet34, encoder_depth=5, decoder_channels=256/128/64/32/16)
        ...
    """
    spec = header["generator"]
    lines = [
        f"geop2p model bundle (format {header.get('format_version')}, geop2p {header.get('geop2p_version', '?')})",
        f"generator: {spec['architecture']}{_fmt_params(spec)}",
        f"bands: {spec['in_channels']} in -> {spec['out_channels']} out",
    ]
    for side, title in (("input", "input"), ("target", "target")):
        block = header[side]
        names = list(block["band_names"])
        source_bands = block.get("bands")
        where = f", source bands {','.join(str(b) for b in source_bands)}" if source_bands else ""
        lines.append(
            f"{title}: {', '.join(names)} ({block.get('dtype')}, nodata {_fmt_nodata(block.get('nodata'))}{where})"
        )
        lines += _fmt_normalizer(block["normalizer"], names)
    lines.append(f"chip size: {header['chip_size']} px, recommended overlap: {header['recommended_overlap']} px")
    pixel_size, crs = header["input"].get("pixel_size"), header["input"].get("crs")
    if pixel_size:
        lines.append(f"trained at: {pixel_size[0]:g} x {pixel_size[1]:g} CRS units per pixel, {crs}")
    training = header.get("training") or {}
    if training:
        lines.append("training:")
        for key in ("steps", "epochs", "best_epoch", "best_metric", "created", "chips_manifest_sha256"):
            if training.get(key) is not None:
                lines.append(f"  {key.replace('_', ' ')}: {training[key]}")
        best = training.get("best_metrics") or {}
        if isinstance(best, Mapping) and best:
            metrics = ", ".join(
                f"{k}={v:.4g}" if isinstance(v, (int, float)) and not isinstance(v, bool) else f"{k}={v}"
                for k, v in best.items()
            )
            lines.append(f"  best metrics: {metrics}")
        other = {
            k: v
            for k, v in training.items()
            if k not in ("steps", "epochs", "best_epoch", "best_metric", "created", "chips_manifest_sha256", "best_metrics")
        }
        for key, value in other.items():
            lines.append(f"  {key.replace('_', ' ')}: {value}")
    else:
        lines.append("training: no provenance recorded")
    return "\n".join(lines)
