"""The model bundle file: read and write one ``.safetensors`` holding tensors and the geop2p header. No torch.

* :func:`read_bundle_header` reads only the JSON header, with
  ``safetensors.safe_open(..., framework="np").metadata()``: no tensor is read,
  nothing is unpickled, torch is not imported.  A file that is not safetensors
  is looked at (its first bytes only) to say what it is: a pickle or a
  ``torch.save`` ZIP is refused with the reason, never loaded.
* :func:`read_bundle_tensors` reads the tensors as numpy arrays.
* :func:`write_bundle` writes numpy arrays and a :class:`BundleHeader`
  atomically, with the permissions of any other output (the umask's).

Turning arrays into a network is :mod:`geop2p.models.bundle`'s job.

Example:
    >>> header = read_bundle_header("run/model.safetensors")  # doctest: +SKIP
    >>> header.chip_size, header.target.band_names  # doctest: +SKIP
    (256, ('elevation',))
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import numpy as np

from geop2p.errors import BundleError, BundleNotFoundError, InputError
from geop2p.formats import jsonsafe
from geop2p.formats.bundle_header import BUNDLE_SUFFIX, METADATA_KEY, BundleHeader
from geop2p.io.atomic import atomic_path, check_output_free

__all__ = ["read_bundle_header", "read_bundle_tensors", "write_bundle"]


def _check_path(path: Path) -> None:
    if path.suffix.lower() == ".onnx":
        raise BundleError(f"'{path}' is an ONNX model; geop2p needs the .safetensors bundle it was exported from.")
    if path.is_dir():
        hint = path / "model.safetensors"
        extra = f" such as '{hint}'" if hint.exists() else " (the .safetensors file written by geop2p train)"
        raise BundleError(f"'{path}' is a folder; expected a model file{extra}.")
    if not path.exists():
        raise BundleNotFoundError(
            f"Model file '{path}' does not exist; pass the .safetensors bundle written by `geop2p train` "
            "(RUN_DIR/model.safetensors)."
        )


def _not_safetensors(path: Path, reason: str) -> BundleError:
    """Say what a file that safetensors refused is; pickles are recognised by their magic bytes, never loaded."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else 0
            opening = fh.read(1) if 2 <= n < 100 * 1024 * 1024 else b""
        size = path.stat().st_size
    except OSError as exc:
        return BundleError(f"Cannot read model file '{path}': {exc.strerror or exc}.")
    if opening == b"{" and "covered" in reason:  # safetensors: "incomplete metadata, file not fully covered"
        return BundleError(
            f"'{path}' is a damaged or truncated safetensors file ({reason}); cannot read the weights. "
            "Copy it again, or re-run `geop2p train`."
        )
    if head[:4] == b"PK\x03\x04":
        kind = "a ZIP archive, i.e. a pickled PyTorch file (torch.save)"
    elif head[:1] == b"\x80" and len(head) > 1 and head[1] <= 5:
        kind = "a Python pickle"
    else:
        kind = None
    if kind:
        return BundleError(
            f"'{path}' is {kind}; geop2p never unpickles model files. "
            "Use a geop2p bundle (.safetensors) written by `geop2p train`."
        )
    return BundleError(
        f"'{path}' is not a safetensors file ({size} bytes; {reason}); "
        "expected a .safetensors geop2p bundle written by `geop2p train`."
    )


def _metadata(path: Path) -> dict[str, str]:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="np") as fh:
            return dict(fh.metadata() or {})
    except (SafetensorError, OSError, ValueError) as exc:
        reason = " ".join(str(exc).split())[:120] or type(exc).__name__
        raise _not_safetensors(path, reason) from None


def read_bundle_header(path: str | os.PathLike) -> BundleHeader:
    """Read and check only the geop2p header of a bundle (no tensor is read, torch is not imported).

    Raises:
        BundleNotFoundError: the file does not exist.
        BundleError: a folder, an ONNX file, a pickle or torch.save file, not safetensors,
            safetensors without the geop2p header, an unsupported format_version, an inconsistent header.

    Example:
        >>> read_bundle_header("run/model.safetensors").recommended_overlap  # doctest: +SKIP
        64
    """
    path = Path(path)
    _check_path(path)
    metadata = _metadata(path)
    if METADATA_KEY not in metadata:
        raise BundleError(
            f"'{path}' is a safetensors file but not a geop2p model bundle (no '{METADATA_KEY}' metadata). "
            "Bare encoder weights go to `geop2p train --encoder-weights PATH`; "
            "`geop2p predict` needs the bundle written by `geop2p train`."
        )
    try:
        doc = jsonsafe.loads(metadata[METADATA_KEY])
    except ValueError as exc:
        raise BundleError(f"'{path}': the geop2p header is not valid JSON ({exc}); the file is damaged.") from None
    return BundleHeader.from_dict(doc, f"'{path}'")


def read_bundle_tensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """The bundle's tensors as numpy arrays (call :func:`read_bundle_header` first to check the file).

    Raises:
        BundleError: the tensor data is damaged or truncated.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        detail = " ".join(str(exc).split())[:200]
        raise BundleError(f"'{path}': cannot read the weights ({detail}); the file is damaged or truncated.") from None


def write_bundle(
    path: str | os.PathLike,
    tensors: Mapping[str, np.ndarray],
    header: BundleHeader,
    overwrite: bool = False,
) -> Path:
    """Write ``tensors`` and ``header`` as one ``.safetensors`` file, atomically.

    Raises:
        InputError: the name does not end with ``.safetensors``.
        OutputExistsError: ``path`` exists and ``overwrite`` is False.

    Example:
        >>> write_bundle("run/model.safetensors", {"w": np.zeros(3, np.float32)}, header)  # doctest: +SKIP
    """
    from safetensors.numpy import save_file

    path = Path(path)
    if path.suffix.lower() != BUNDLE_SUFFIX:
        raise InputError(f"Model bundle name '{path}' must end with {BUNDLE_SUFFIX}, e.g. run/model.safetensors.")
    check_output_free(path, overwrite)
    arrays = {k: np.require(v, requirements="C") for k, v in tensors.items()}  # keeps 0-d arrays 0-d
    text = jsonsafe.dumps(header.to_dict(), indent=None)
    with atomic_path(path, overwrite=overwrite) as tmp:
        save_file(arrays, str(tmp), metadata={METADATA_KEY: text})
    return path
