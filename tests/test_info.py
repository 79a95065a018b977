"""geop2p.info: describing chip folders, rasters and bundles, and doing it without torch."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from geop2p.info import describe, format_description
from geop2p.normalize import Normalizer


@pytest.fixture
def bundle_path(tmp_path, tiny_smp_spec, make_bundle_meta):
    from geop2p.models import build_generator
    from geop2p.models.bundle import save_bundle

    meta = make_bundle_meta(["red", "green", "blue"], ["dsm"], in_nodata=0,
                            target_normalizer=Normalizer("percentile", (50.0,), (25.0,), True, 2, 98).to_dict())
    meta["input"]["pixel_size"], meta["input"]["crs"] = [10.0, 10.0], "EPSG:32631"
    return save_bundle(tmp_path / "m.safetensors", build_generator(tiny_smp_spec), meta)


def test_bundle_description(bundle_path):
    d = describe(bundle_path)
    assert d["kind"] == "bundle" and d["chip_size"] == 64 and d["generator"]["architecture"] == "smp-unet"
    text = format_description(d)
    assert "generator: smp-unet (encoder_name=resnet18, encoder_depth=3, decoder_channels=16/8/8), 3 → 1 bands" in text
    assert "input: red, green, blue (uint8, nodata 0, source bands 1,2,3)" in text
    assert "target: dsm (float32, nodata -9999)" in text
    assert "normalizer: percentile 2-98, clipped to [-1, 1]" in text
    assert "dsm: [25, 75] -> [-1, 1]" in text
    assert "chip size 64 px, recommended overlap 16 px" in text
    assert "trained at 10 × 10 CRS units per pixel, EPSG:32631" in text
    assert "best metrics: val_mae=0.5" in text
    assert "chips manifest sha256: " + "0" * 64 in text


def test_bundle_without_provenance(tmp_path, linear_spec, make_bundle_meta):
    from geop2p.models import build_generator
    from geop2p.models.bundle import save_bundle

    meta = make_bundle_meta(["a", "b", "c"], ["t"])
    meta["training"] = None
    path = save_bundle(tmp_path / "m.safetensors", build_generator(linear_spec), meta)
    assert format_description(describe(path)).endswith("training: no provenance recorded")


def _run_without_torch(code: str, tmp_path) -> dict:
    """Run ``code`` (which calls the CLI) in a fresh interpreter; return whether torch got imported, and the output."""
    script = textwrap.dedent(
        """
        import contextlib, io, json, sys
        out = io.StringIO()
        rc = 0
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            try:
                from geop2p.cli import cli
                cli(ARGS, prog_name="geop2p", standalone_mode=False)
            except SystemExit as exc:
                rc = exc.code or 0
        print(json.dumps({"torch": "torch" in sys.modules, "rc": rc, "output": out.getvalue()}))
        """
    ).replace("ARGS", code)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_info_of_a_bundle_never_imports_torch(bundle_path, tmp_path):
    result = _run_without_torch(f"['info', {str(bundle_path)!r}]", tmp_path)
    assert result["rc"] == 0 and "model bundle" in result["output"], result
    assert result["torch"] is False


def test_export_dry_run_and_chip_info_never_import_torch(pair, tmp_path):
    args = f"['export-chips', {str(pair.input)!r}, {str(pair.target)!r}, 'chips', '--size', '32', '--dry-run']"
    result = _run_without_torch(args, tmp_path)
    assert result["rc"] == 0 and "chips of 32 px planned" in result["output"], result
    assert result["torch"] is False
    from geop2p.export import ExportConfig, export_chips

    export_chips(pair.input, pair.target, tmp_path / "chips", ExportConfig(size=32, block_size=64, buffer=0))
    result = _run_without_torch(f"['info', {str(tmp_path / 'chips')!r}]", tmp_path)
    assert result["rc"] == 0 and "chip folder" in result["output"] and result["torch"] is False
