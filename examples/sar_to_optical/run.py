#!/usr/bin/env python
"""SAR → optical: Sentinel-1 GRD backscatter (σ0 in dB, VV and VH) → Sentinel-2 L2A true colour.

No Python package ships such a pair, so bring your own (see README.md) laid out as

    data/sar_to_optical/s1_sigma0_db.tif   2 bands float32: VV, VH in dB (terrain-corrected, e.g. EPSG:326xx, 10 m)
    data/sar_to_optical/s2_l2a_rgb.tif     3 bands uint16: B4, B3, B2 surface reflectance × 10000, same area and date ±days

Both are read as they are: the S2 image is reprojected onto the S1 grid if they differ.

    python examples/sar_to_optical/run.py    # settings in config.yaml
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # examples/pipeline.py: the export → train → predict → evaluate run

from pipeline import run_example  # noqa: E402

MISSING = 'Bring a Sentinel-1 σ0 dB (VV, VH) GeoTIFF and a Sentinel-2 L2A RGB GeoTIFF of the same area; see examples/sar_to_optical/README.md for how to make and lay them out.'


def main(argv: list[str] | None = None) -> int:
    """Run export → train → predict → evaluate with config.yaml; return the exit code."""
    return run_example(HERE, __doc__.split("\n\n")[0], MISSING, argv)


if __name__ == "__main__":
    sys.exit(main())
