"""The Processing script in a real, headless QGIS: loaded by QGIS's own script provider, run, compared.

Runs only where PyQGIS imports (Debian: ``apt-get install qgis python3-qgis``, then a venv made with
``/usr/bin/python3 -m venv --system-site-packages`` holding geop2p and ``numpy<2``; see tools/qgis/README.md).
QGIS runs in a child process (``QT_QPA_PLATFORM=offscreen``), because ``QgsApplication.exitQgis()`` of
QGIS 3.22 can crash the interpreter at exit; the child reports what it saw as JSON.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import rasterio

pytest.importorskip("qgis.core", reason="PyQGIS (QGIS's Python bindings) is not installed in this Python; "
                    "see tools/qgis/README.md for a venv where it is")

pytestmark = pytest.mark.qgis

SCRIPT = Path(__file__).resolve().parents[2] / "tools" / "qgis" / "geop2p_translate.py"

DRIVER = textwrap.dedent(
    """
    import json, os, sys
    from qgis.core import QgsApplication, QgsProcessingException, QgsProcessingFeedback
    messages = []
    app = QgsApplication([], False)
    app.setPrefixPath(os.environ.get("QGIS_PREFIX_PATH", "/usr"), True)
    app.initQgis()
    QgsApplication.messageLog().messageReceived.connect(lambda m, tag, level: messages.append([tag, int(level), m]))
    sys.path.append(os.path.join(QgsApplication.pkgDataPath(), "python", "plugins"))
    import processing
    from processing.core.Processing import Processing
    from processing.script import ScriptUtils
    Processing.initialize()  # loads every .py of the scripts folders, as QGIS does at start-up
    out = {"scripts_folder": ScriptUtils.defaultScriptsFolder()}
    alg = QgsApplication.processingRegistry().algorithmById("script:geop2p_translate")
    out["algorithm"] = None if alg is None else alg.displayName()
    args = json.loads(sys.argv[1])
    class Feedback(QgsProcessingFeedback):
        def __init__(self):
            super().__init__()
            self.errors = []
        def reportError(self, error, fatalError=False):
            self.errors.append(error)
    runs = {}
    for name, params in args.items():
        feedback = Feedback()
        try:
            runs[name] = {"result": processing.run("script:geop2p_translate", params, feedback=feedback)}
        except QgsProcessingException as exc:
            runs[name] = {"error": " | ".join([str(exc)] + feedback.errors)}
    out["runs"] = runs
    app.processEvents()
    out["messages"] = messages
    print("GEOP2P-JSON " + json.dumps(out, default=str))
    sys.stdout.flush()
    os._exit(0)
    """
)


@pytest.fixture
def identity_bundle(tmp_path) -> Path:
    """A 1-band linear bundle (identity weights) with 32 px chips."""
    import torch

    from geop2p.models import build_generator
    from geop2p.models.bundle import save_bundle
    from tests.fixtures.demo import bundle_meta

    spec = {"architecture": "linear", "in_channels": 1, "out_channels": 1, "params": {}}
    gen = build_generator(spec)
    with torch.no_grad():
        gen.conv.weight.fill_(0.8)
        gen.conv.bias.fill_(0.1)
    norm = {"method": "minmax", "offset": [50.0], "scale": [50.0], "clip": True, "low": None, "high": None}
    meta = bundle_meta(spec, ["elevation"], ["shade"], 32, in_norm=norm, out_norm=dict(norm))
    return save_bundle(tmp_path / "identity.safetensors", gen, meta)


def _run_qgis(tmp_path: Path, runs: dict) -> dict:
    profile = tmp_path / "qgis-profile"
    scripts = profile / "profiles" / "default" / "processing" / "scripts"
    scripts.mkdir(parents=True)
    shutil.copy(SCRIPT, scripts / SCRIPT.name)  # the one file a user copies
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "QGIS_CUSTOM_CONFIG_PATH": str(profile),
           "XDG_RUNTIME_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(runs)], env=env, capture_output=True, text=True,
                          timeout=600, cwd=tmp_path)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("GEOP2P-JSON ")]
    assert proc.returncode == 0 and lines, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(lines[-1][len("GEOP2P-JSON "):])
    assert Path(report["scripts_folder"]) == scripts
    return report


def test_script_loads_runs_and_equals_predict_raster(identity_bundle, make_raster, tmp_path, rng):
    from geop2p.predict import Translator

    dem = rng.uniform(0, 100, size=(1, 40, 70)).astype(np.float32)
    dem[0, 5:9, 10:20] = -9999.0
    scene = make_raster("scene.tif", dem, nodata=-9999.0)
    pickle = tmp_path / "model.pt"
    pickle.write_bytes(b"\x80\x04junk")
    out = tmp_path / "qgis_pred.tif"
    report = _run_qgis(tmp_path, {
        "file": {"INPUT": str(scene), "MODEL": str(identity_bundle), "DEVICE": 1, "OUTPUT": str(out)},
        "temporary": {"INPUT": str(scene), "MODEL": str(identity_bundle), "DEVICE": 1, "OUTPUT": "TEMPORARY_OUTPUT"},
        "pickle": {"INPUT": str(scene), "MODEL": str(pickle), "DEVICE": 1, "OUTPUT": str(tmp_path / "no.tif")},
    })
    assert report["algorithm"] == "Translate raster (geop2p pix2pix)"
    log = "\n".join(m for _, _, m in report["messages"])
    assert "Could not import script algorithm" not in log, log

    expected = Translator.from_file(identity_bundle, device="cpu").predict_raster(scene, tmp_path / "api.tif")
    temporary = Path(report["runs"]["temporary"]["result"]["OUTPUT"])
    assert Path(report["runs"]["file"]["result"]["OUTPUT"]) == out
    assert temporary.name == "OUTPUT.tif" and temporary.parent != tmp_path  # QGIS's temporary folder
    for got in (out, temporary):
        with rasterio.open(got) as a, rasterio.open(expected) as b:
            assert (a.profile["dtype"], a.crs, a.transform, a.nodata) == (b.profile["dtype"], b.crs, b.transform,
                                                                          b.nodata)
            assert np.array_equal(a.read(), b.read()) and np.array_equal(a.read_masks(), b.read_masks())
    error = report["runs"]["pickle"]["error"]
    assert "never loads pickled" in error and "Incorrect parameter value" not in error
    assert not (tmp_path / "no.tif").exists()
