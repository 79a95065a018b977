"""geop2p.qgis.translate: what tools/qgis/geop2p_translate.py calls (no QGIS needed; tests/qgis/test_processing.py
runs the script in a real QGIS where one is installed)."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import rasterio

from geop2p import qgis as core_module

QGIS_DIR = Path(__file__).resolve().parents[2] / "tools" / "qgis"
SCRIPT = QGIS_DIR / "geop2p_translate.py"


@pytest.fixture(scope="module")
def core():
    return core_module


@pytest.fixture
def identity_bundle(tmp_path) -> Path:
    """A 1-band linear bundle with identity weights: predictions equal the input."""
    import torch

    from geop2p.models import bundle

    from geop2p.models import build_generator
    from tests.fixtures.demo import bundle_meta

    spec = {"architecture": "linear", "in_channels": 1, "out_channels": 1, "params": {}}
    gen = build_generator(spec)
    with torch.no_grad():
        for p in gen.parameters():
            p.zero_()
        conv = next(m for m in gen.modules() if isinstance(m, torch.nn.Conv2d))
        conv.weight[0, 0, 0, 0] = 1.0
    norm = {"method": "minmax", "offset": [50.0], "scale": [50.0], "clip": True, "low": None, "high": None}
    meta = bundle_meta(spec, ["elevation"], ["elevation"], 32, in_norm=norm, out_norm=dict(norm))
    path = tmp_path / "identity.safetensors"
    bundle.save_bundle(path, gen, meta)
    if path.read_bytes()[:1] == b"\x80":  # see tests/fixtures/demo.py
        meta["training"]["note"] = "x"
        bundle.save_bundle(path, gen, meta, overwrite=True)
    return path


@pytest.fixture
def scene(make_raster, rng) -> Path:
    data = rng.uniform(0, 100, size=(1, 40, 70)).astype(np.float32)
    return make_raster("scene.tif", data, nodata=-9999.0)


def test_layer_source_path(core, scene):
    assert core.layer_source_path(f"{scene}|layername=scene") == scene
    with pytest.raises(core.QgisInputError, match="web or database layer"):
        core.layer_source_path("type=xyz&url=https://tile.openstreetmap.org/{z}/{x}/{y}.png")
    with pytest.raises(core.QgisInputError, match="does not exist"):
        core.layer_source_path("/nowhere/scene.tif")
    with pytest.raises(core.QgisInputError, match="no source"):
        core.layer_source_path("")


def test_default_output_names(core):
    assert core.default_output_path(Path("/d/s.tif"), Path("/r/model.safetensors")) == Path("/d/s_pred.tif")
    assert core.default_output_path(Path("/d/s.tif"), Path("/r/sar2opt.safetensors")) == Path("/d/s_sar2opt_pred.tif")


def test_resolve_request(core, scene, identity_bundle, tmp_path):
    req = core.resolve_request(str(scene), str(identity_bundle), "")
    assert req.output == scene.with_name("scene_identity_pred.tif") and not req.overwrite
    # QGIS resolves "Save to temporary file" with parameterAsOutputLayer; the placeholder itself never reaches here
    with pytest.raises(core.QgisInputError, match="parameterAsOutputLayer"):
        core.resolve_request(str(scene), str(identity_bundle), core.TEMPORARY_OUTPUT)
    req = core.resolve_request(str(scene), str(identity_bundle), str(tmp_path / "o.tif"), overwrite=True)
    assert req.output == tmp_path / "o.tif" and req.overwrite


@pytest.mark.parametrize(
    "model, output, message",
    [
        (None, "", "No model chosen"),
        ("missing.safetensors", "", "does not exist"),
        ("model.pt", "", "never loads pickled"),
        ("BUNDLE", "out.png", "must be a GeoTIFF"),
        ("BUNDLE", "SCENE", "input file itself"),
        ("BUNDLE", "EXISTING", "already exists"),
    ],
)
def test_resolve_request_refusals(core, scene, identity_bundle, tmp_path, model, output, message):
    (tmp_path / "model.pt").write_bytes(b"\x80\x04junk")
    (tmp_path / "existing.tif").write_bytes(b"x")
    subst = {"BUNDLE": str(identity_bundle), "SCENE": str(scene), "EXISTING": str(tmp_path / "existing.tif")}
    model = subst.get(model, str(tmp_path / model) if model else model)
    output = subst.get(output, str(tmp_path / output) if output else output)
    with pytest.raises(core.QgisInputError, match=message):
        core.resolve_request(str(scene), model, output)


def test_run_translation_calls_geop2p(core, scene, identity_bundle, tmp_path):
    req = core.resolve_request(str(scene), str(identity_bundle), str(tmp_path / "pred.tif"))
    seen = []
    out = core.run_translation(req, progress=seen.append, device="cpu")
    assert out == tmp_path / "pred.tif"
    assert seen[0] == 0.0 and seen[-1] == 100.0 and seen == sorted(seen)
    with rasterio.open(scene) as src, rasterio.open(out) as dst:
        assert (dst.crs, dst.transform, dst.width, dst.height) == (src.crs, src.transform, src.width, src.height)
        np.testing.assert_allclose(dst.read(1), src.read(1), atol=1e-3)


def test_cancel_leaves_no_output(core, scene, identity_bundle, tmp_path):
    req = core.resolve_request(str(scene), str(identity_bundle), str(tmp_path / "pred.tif"))
    polls = []

    def is_canceled() -> bool:  # cancel while geop2p is predicting, after the first window
        polls.append(1)
        return len(polls) > 2

    with pytest.raises(core.TranslationCanceled):
        core.run_translation(req, is_canceled=is_canceled, device="cpu")
    assert len(polls) == 3
    assert not (tmp_path / "pred.tif").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".pred")]


def test_qgis_script_uses_only_the_core(core):
    """The Processing script is plain Python that delegates to geop2p.qgis (it cannot run without QGIS)."""
    tree = ast.parse(SCRIPT.read_text())
    calls = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute) and
             isinstance(node.value, ast.Name) and node.value.id == "core"}
    assert {"resolve_request", "run_translation", "TranslationCanceled"} <= calls
    assert all(hasattr(core, name) for name in calls)


def test_the_script_is_the_only_python_file_and_holds_no_dataclass():
    """QGIS's loader runs every .py of a scripts folder (os.walk) without registering it in sys.modules."""
    assert sorted(p.name for p in QGIS_DIR.rglob("*.py")) == ["geop2p_translate.py"]
    text = SCRIPT.read_text()
    assert "dataclass" not in text and "from __future__" not in text
    assert "from geop2p import qgis as core" in text


def test_the_scripts_choices_are_the_cores():
    """The script repeats DEVICES and the file filter so it loads without geop2p; they must stay the core's."""
    values = {}
    for node in ast.parse(SCRIPT.read_text()).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in ("DEVICES", "MODEL_FILE_FILTER"):
                values[node.targets[0].id] = ast.literal_eval(node.value)
    assert tuple(values["DEVICES"]) == core_module.DEVICES
    assert values["MODEL_FILE_FILTER"] == core_module.MODEL_FILE_FILTER
    assert "All files (*.*)" in core_module.MODEL_FILE_FILTER  # so QGIS lets a .pt through to the friendly refusal


def test_device_messages_speak_of_the_device_parameter(core, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(core.QgisInputError, match="set the Device parameter to cpu") as info:
        core.check_device("cuda")
    assert "--device" not in str(info.value)
    assert core.check_device("auto") == "auto"
