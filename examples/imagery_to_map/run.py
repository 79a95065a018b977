#!/usr/bin/env python
"""Imagery → map: an orthophoto → a rendered map of the same area (the pix2pix "aerial → map" task, georeferenced).

No Python package ships such a pair, so bring your own (see README.md) laid out as

    data/imagery_to_map/orthophoto.tif   RGB uint8 orthophoto (e.g. a national 0.5–1 m orthophoto in its projected CRS)
    data/imagery_to_map/map.tif          the map rendered as an RGB uint8 GeoTIFF over the same extent
                                         (e.g. QGIS: Project → Import/Export → Export Map to Image, with a world file)

The map is resampled onto the orthophoto grid with nearest neighbour (no blended colours).

    python examples/imagery_to_map/run.py    # settings in config.yaml
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # examples/pipeline.py: the export → train → predict → evaluate run

from pipeline import run_example  # noqa: E402

MISSING = "Bring an orthophoto GeoTIFF and the same area's map rendered as a GeoTIFF; see examples/imagery_to_map/README.md for how to make and lay them out."


def main(argv: list[str] | None = None) -> int:
    """Run export → train → predict → evaluate with config.yaml; return the exit code."""
    return run_example(HERE, __doc__.split("\n\n")[0], MISSING, argv)


if __name__ == "__main__":
    sys.exit(main())
