"""geop2p's on-disk formats as value objects, each read and written in one place (docs/formats.md).

No torch and no rasters here: the I/O layer (:mod:`geop2p.io`) fills these
objects from files and writes them back.

* :mod:`~geop2p.formats.chip_manifest` — :class:`ChipManifest`, the chip folder's ``geop2p-chips.json``.
* :mod:`~geop2p.formats.bundle_header` — :class:`BundleHeader`, the model bundle's JSON header.
* :mod:`~geop2p.formats.jsonsafe` — the one JSON policy (non-finite numbers, nesting).
"""

from geop2p.formats.bundle_header import BandSide, BundleHeader
from geop2p.formats.chip_manifest import ChipManifest, ChipSide

__all__ = ["BandSide", "BundleHeader", "ChipManifest", "ChipSide"]
