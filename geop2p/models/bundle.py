"""Model bundles ↔ networks: save a generator as a bundle, load a bundle as a generator. No pickle.

The file (tensors + JSON header) is read and written by
:mod:`geop2p.io.bundle_file`; the header is the value object
:class:`~geop2p.formats.bundle_header.BundleHeader`.  This module adds what
needs torch: the generator's ``state_dict`` in and out, and the check that the
weights match the header's architecture (built from the registry).

Example:
    >>> from geop2p.models import build_generator
    >>> g = build_generator({"architecture": "linear", "in_channels": 3, "out_channels": 1})
    >>> save_bundle("model.safetensors", g, meta)  # doctest: +SKIP
    >>> generator, header = load_bundle("model.safetensors", device="cuda")  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from geop2p.errors import BundleError, ConfigError, SizeMultipleError
from geop2p.formats import jsonsafe
from geop2p.formats.bundle_header import BUNDLE_FORMAT, BUNDLE_FORMAT_VERSION, BundleHeader
from geop2p.io.atomic import check_output_free
from geop2p.io.bundle_file import read_bundle_header, read_bundle_tensors, write_bundle
from geop2p.models.generators import build_generator, resolve_generator_spec
from geop2p.normalize import Normalizer

__all__ = ["ModelBundle", "header_for", "load_bundle", "read_bundle", "save_bundle", "unwrap"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelBundle:
    """A bundle in memory: the checked header and the generator's weights.

    Attributes:
        header: the bundle's header.
        state_dict: tensor name -> tensor (on CPU).

    Example:
        >>> bundle = read_bundle("model.safetensors")  # doctest: +SKIP
        >>> generator = bundle.build(device="cuda")  # doctest: +SKIP
    """

    header: BundleHeader
    state_dict: dict[str, torch.Tensor]

    @property
    def generator_spec(self) -> dict[str, Any]:
        """The ``generator`` spec: architecture, channels, params."""
        return self.header.generator

    @property
    def input_normalizer(self) -> Normalizer:
        """Normalizer for the input bands."""
        return self.header.input.normalizer

    @property
    def target_normalizer(self) -> Normalizer:
        """Normalizer for the target bands (its ``denormalize`` writes predictions back in units)."""
        return self.header.target.normalizer

    @property
    def chip_size(self) -> int:
        """Chip size the model was trained on (pixels)."""
        return self.header.chip_size

    @property
    def recommended_overlap(self) -> int:
        """Overlap between prediction windows recommended at training time (pixels)."""
        return self.header.recommended_overlap

    def build(self, device: str | torch.device = "cpu") -> nn.Module:
        """The generator with these weights, on ``device``, in eval mode.

        Raises:
            BundleError: the header's architecture is unknown, or the weights do not match it.
        """
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
    tensors = {k: torch.from_numpy(v) for k, v in read_bundle_tensors(path).items()}
    return ModelBundle(header=header, state_dict=tensors)


def load_bundle(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, BundleHeader]:
    """Load a bundle: the generator (weights loaded strictly, eval mode, on ``device``) and its header.

    Nothing is unpickled: the header is JSON and the tensors are read by safetensors.

    Example:
        >>> generator, header = load_bundle("run/model.safetensors", device="cpu")  # doctest: +SKIP
        >>> header.target.normalizer  # doctest: +SKIP
    """
    bundle = read_bundle(path)
    module = bundle.build(device)
    logger.debug("Loaded %s generator from %s", bundle.header.architecture, path)
    return module, bundle.header


def unwrap(module: nn.Module) -> nn.Module:
    """The bare generator inside DistributedDataParallel / DataParallel / torch.compile wrappers."""
    for _ in range(3):
        inner = getattr(module, "module", None) or getattr(module, "_orig_mod", None)
        if inner is None:
            break
        module = inner
    return module


def header_for(generator: nn.Module, meta: BundleHeader | Mapping[str, Any]) -> BundleHeader:
    """The bundle header of ``generator``: ``meta`` completed with the format fields and the module's spec, checked.

    ``meta`` may be a :class:`BundleHeader` (returned as it is) or its document lacking ``format``,
    ``format_version``, ``geop2p_version`` or ``generator`` (taken from ``generator.spec``).

    Raises:
        BundleError: the document is invalid, or lacks ``generator`` and the module has no ``.spec``.
    """
    if isinstance(meta, BundleHeader):
        return meta
    if not isinstance(meta, Mapping):
        raise BundleError(f"bundle metadata must be a dict (docs/formats.md, 'Model bundle'); got {type(meta).__name__}.")
    doc = jsonsafe.to_json(meta)
    doc.setdefault("format", BUNDLE_FORMAT)
    doc.setdefault("format_version", BUNDLE_FORMAT_VERSION)
    from geop2p import __version__

    doc.setdefault("geop2p_version", __version__)
    if "generator" not in doc:
        spec = getattr(generator, "spec", None)
        if spec is None:
            raise BundleError(
                "meta has no 'generator' spec and the module has no .spec; build the generator with "
                "geop2p.models.build_generator or pass meta['generator']."
            )
        doc["generator"] = copy.deepcopy(spec)
    return BundleHeader.from_dict(doc, "bundle metadata")


def save_bundle(
    path: str | os.PathLike,
    generator: nn.Module,
    meta: BundleHeader | Mapping[str, Any],
    overwrite: bool = False,
) -> Path:
    """Write ``generator``'s weights and its header as one ``.safetensors`` bundle, atomically.

    ``meta`` is a :class:`BundleHeader` or its document; ``format``,
    ``format_version``, ``geop2p_version`` and (from ``generator.spec``)
    ``generator`` are filled in when a document lacks them.  Everything is
    checked before anything is written: the header, that the module matches the
    header's generator spec tensor by tensor, and that ``chip_size`` suits the
    architecture.

    Returns:
        The path written.

    Raises:
        InputError: the name does not end with ``.safetensors``.
        OutputExistsError: ``path`` exists and ``overwrite`` is False.
        BundleError: the header is invalid or does not match the module.

    Example:
        >>> save_bundle("run/model.safetensors", generator, header)  # doctest: +SKIP
    """
    generator = unwrap(generator)
    path = Path(path)
    check_output_free(path, overwrite)
    header = header_for(generator, meta)
    try:
        spec = resolve_generator_spec(header.generator)
    except ConfigError as exc:
        raise BundleError(f"bundle metadata: 'generator' is invalid: {exc}") from None
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
    if header.chip_size % divisor:
        size_error = SizeMultipleError(header.chip_size, divisor, "--size", "chip_size", f"{spec['architecture']} needs it")
        raise BundleError(f"bundle metadata: {size_error}")
    if header.generator != spec:
        header = header.replace(generator=spec)
    tensors = {k: v.detach().to("cpu").contiguous().numpy() for k, v in state.items()}
    write_bundle(path, tensors, header, overwrite=overwrite)
    logger.info("Wrote model bundle %s (%d tensors)", path, len(tensors))
    return path
