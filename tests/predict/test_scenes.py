"""Many scenes: output naming rules, every check before any write, and torchrun rank sharing."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from geop2p.errors import BandIndexError, InputError, OutputExistsError
from geop2p.predict import PredictConfig, default_output_path, predict_scenes, scene_outputs

ATOL = 1e-3


def test_scene_outputs_rules(tmp_path):
    assert default_output_path(tmp_path / "a.tif") == tmp_path / "a_pred.tif"
    assert scene_outputs(["x/a.tif"], out="o.tif")[0].name == "o.tif"
    with pytest.raises(InputError, match="--out-dir"):
        scene_outputs(["a.tif", "b.tif"], out="o.tif")
    with pytest.raises(InputError, match="both be written"):
        scene_outputs(["x/a.tif", "y/a.tif"], out_dir="preds")
    with pytest.raises(InputError, match="not both"):
        scene_outputs(["a.tif"], out="o.tif", out_dir="d")


def test_scene_outputs_refuse_no_scene_and_writing_over_the_scene(tmp_path):
    with pytest.raises(InputError, match="No scene given"):
        scene_outputs([])
    with pytest.raises(InputError, match="is the scene itself"):
        scene_outputs([tmp_path / "a.tif"], out=tmp_path / "a.tif")
    assert default_output_path("x/a.b.tif", tmp_path) == tmp_path / "a.b_pred.tif"


def test_predict_scenes_writes_every_scene_once(make_translator, scene, tmp_path):
    scenes = [scene(40 + 10 * i, 50, name=f"s{i}.tif") for i in range(3)]
    t = make_translator()
    written = predict_scenes(scenes, t, out_dir=tmp_path / "preds")
    assert [p.name for p in written] == ["s0_pred.tif", "s1_pred.tif", "s2_pred.tif"]
    for s, p in zip(scenes, written):
        with rasterio.open(s) as a, rasterio.open(p) as b:
            assert (b.transform, b.crs, b.shape) == (a.transform, a.crs, a.shape)


def test_predict_scenes_from_a_bundle_path_with_a_config_and_progress(identity_bundle, scene, tmp_path):
    src = scene(70, 80, name="a.tif")
    seen = []
    written = predict_scenes([src], identity_bundle, out=tmp_path / "o.tif",
                             config=PredictConfig(device="cpu", overlap=32, tta=2),
                             progress=lambda s, d, n: seen.append((s.name, d, n)))
    assert written == [tmp_path / "o.tif"] and seen[-1] == ("a.tif", 4, 4)
    with rasterio.open(written[0]) as b, rasterio.open(src) as a:
        assert b.tags()["GEOP2P_OVERLAP"] == "32"
        np.testing.assert_allclose(b.read(), a.read(), atol=ATOL)


def test_predict_scenes_shares_scenes_across_ranks(make_translator, scene, tmp_path, monkeypatch):
    scenes = [scene(40, 50, name=f"s{i}.tif") for i in range(5)]
    t = make_translator()
    by_rank = []
    for rank in range(2):
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.setenv("RANK", str(rank))
        # ranks run concurrently for real; run one after the other here, the second must not refuse
        # the first one's outputs, hence overwrite
        by_rank.append([p.name for p in predict_scenes(scenes, t, out_dir=tmp_path / "preds", overwrite=True)])
    assert by_rank == [["s0_pred.tif", "s2_pred.tif", "s4_pred.tif"], ["s1_pred.tif", "s3_pred.tif"]]
    assert sorted(p.name for p in (tmp_path / "preds").iterdir()) == [f"s{i}_pred.tif" for i in range(5)]


def test_predict_scenes_checks_everything_before_writing(make_translator, scene, tmp_path):
    good = scene(40, 50, name="good.tif")
    bad = scene(40, 50, bands=1, name="one_band.tif")
    with pytest.raises(BandIndexError, match="one_band.tif' has 1 band"):
        predict_scenes([good, bad], make_translator(), out_dir=tmp_path / "preds")
    assert not (tmp_path / "preds").exists() or not any((tmp_path / "preds").iterdir())


def test_predict_scenes_checks_every_output_before_writing(make_translator, scene, tmp_path):
    scenes = [scene(40, 50, name="a.tif"), scene(40, 50, name="b.tif")]
    (tmp_path / "b_pred.tif").write_bytes(b"keep")
    with pytest.raises(OutputExistsError, match="b_pred.tif"):
        predict_scenes(scenes, make_translator())
    assert not (tmp_path / "a_pred.tif").exists() and (tmp_path / "b_pred.tif").read_bytes() == b"keep"


def test_torchrun_shares_scenes_across_two_real_ranks(identity_bundle, scene, tmp_path):
    """`torchrun --nproc_per_node 2 -m geop2p predict` writes each scene exactly once, and correctly."""
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    scenes = [scene(40 + 8 * i, 50, name=f"s{i}.tif") for i in range(3)]
    out_dir = tmp_path / "preds"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2]) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(port),
           "-m", "geop2p", "predict", *map(str, scenes), "--model", str(identity_bundle),
           "--out-dir", str(out_dir), "--device", "cpu"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert sorted(p.name for p in out_dir.iterdir()) == ["s0_pred.tif", "s1_pred.tif", "s2_pred.tif"]
    for src in scenes:
        with rasterio.open(src) as a, rasterio.open(out_dir / f"{src.stem}_pred.tif") as b:
            assert (b.transform, b.crs, b.shape) == (a.transform, a.crs, a.shape)
            np.testing.assert_allclose(b.read(), a.read(), atol=ATOL, rtol=0)
