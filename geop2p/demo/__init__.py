"""The embedded end-to-end demo (``geop2p demo``): a synthetic DEM → imagery scene, then the whole journey.

* :mod:`~geop2p.demo.scene` — the synthetic, seeded scene (fractal terrain, imagery rendered from it).
* :mod:`~geop2p.demo.run` — :func:`run_demo`: export → train → predict → evaluate, timed.
* :mod:`~geop2p.demo.preview` — :func:`write_preview`: DEM | prediction | target with the test chips outlined.
"""

from geop2p.demo.preview import write_preview
from geop2p.demo.run import DEMO_OUTPUTS, DemoConfig, DemoResult, run_demo
from geop2p.demo.scene import DemoScene, make_terrain, render_imagery, write_demo_scene

__all__ = [
    "DEMO_OUTPUTS",
    "DemoConfig",
    "DemoResult",
    "DemoScene",
    "make_terrain",
    "render_imagery",
    "run_demo",
    "write_demo_scene",
    "write_preview",
]
