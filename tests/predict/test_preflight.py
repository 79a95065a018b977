"""The checks before a prediction: outputs, scenes (complex, truncated), the window bound, no torch needed."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from geop2p.errors import ChipSizeError, InputError, OutputExistsError, RasterReadError
from geop2p.formats import BandSide
from geop2p.normalize import Normalizer
from geop2p.predict.preflight import check_outputs, check_scene, check_window_bound
from tests.conftest import write_raster


def _side(pixel_size=(10.0, 10.0), crs="EPSG:32631", n=2) -> BandSide:
    return BandSide(tuple(f"b{i}" for i in range(n)), "float32", None, Normalizer.identity(n),
                    pixel_size=pixel_size, crs=crs)


# ---------------------------------------------------------------------------------------------- 4. complex, truncated
def test_complex_scene_is_refused_with_the_amplitude_hint(tmp_path):
    path = write_raster(tmp_path / "slc.tif", (np.ones((2, 8, 8)) + 1j).astype(np.complex64))
    with pytest.raises(InputError, match=r"band\(s\) \[1, 2\] are complex \(complex64\).*amplitude \(\|z\|\) or dB"):
        check_scene(path, _side())


def test_truncated_scene_is_refused_before_anything_is_read(tmp_path, rng):
    full = write_raster(tmp_path / "full.tif", rng.integers(0, 255, (2, 256, 256), dtype=np.uint8), tiled=True,
                        blockxsize=64, blockysize=64)
    raw = full.read_bytes()
    cut = tmp_path / "cut.tif"
    cut.write_bytes(raw[: int(len(raw) * 0.6)])
    info, bands = check_scene(full, _side())
    assert bands == [1, 2] and info.count == 2
    with pytest.raises(RasterReadError, match=r"'.*cut.tif' is truncated: block \(\d+, \d+\) of band 1 ends at byte"):
        check_scene(cut, _side())


# ---------------------------------------------------------------------------------------------- 5. outputs, window
def test_outputs_folder_file_read_only(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "f.txt").write_text("mine")
    with pytest.raises(OutputExistsError, match=r"Output '.*d' is a folder.*e\.g\. '.*d/a_pred.tif', or --out-dir"):
        check_outputs([tmp_path / "d"], overwrite=True, scenes=["a.tif"])
    with pytest.raises(InputError, match=r"--out-dir '.*f.txt' is a file; expected a folder"):
        check_outputs([tmp_path / "f.txt" / "a_pred.tif"], False, out_dir=tmp_path / "f.txt")
    with pytest.raises(InputError, match=r"'.*f.txt' is a file, not a folder"):
        check_outputs([tmp_path / "f.txt" / "x" / "a_pred.tif"], False)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        check_outputs([tmp_path / "f.txt"], False)
    check_outputs([tmp_path / "new" / "deeper" / "a_pred.tif"], False)
    assert not (tmp_path / "new").exists(), "checks create nothing"


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a read-only tmpfs needs root")
def test_read_only_file_system_is_refused_up_front(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(ro)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        with pytest.raises(OSError, match="Read-only file system; choose a folder you can write to"):
            check_outputs([ro / "sub" / "a_pred.tif"], False)
    finally:
        subprocess.run(["umount", str(ro)])


def test_window_bound_by_the_largest_scene():
    check_window_bound(256, 256, [(40, 40)], ["a.tif"])  # the model's own chip size is always fine
    check_window_bound(512, 256, [(40, 40), (300, 500)], ["a.tif", "b.tif"])
    with pytest.raises(ChipSizeError, match=r"--window 1024 is larger than the largest scene \('b.tif', 500×300 px\).*"
                                            r"use --window 512 or less"):
        check_window_bound(1024, 256, [(40, 40), (300, 500)], ["a.tif", "b.tif"])
    with pytest.raises(ChipSizeError, match="use --window 512 or less"):  # rounded up to the network's divisor
        check_window_bound(768, 64, [(300, 300)], ["a.tif"], divisor=256)


def test_a_bad_command_is_refused_before_torch_is_imported(identity_bundle, tmp_path):
    """The CLI checks everything that needs no network first: a refusal is quick (and one line)."""
    code = (
        "import sys; from click.testing import CliRunner; from geop2p.cli import cli; "
        f"r = CliRunner().invoke(cli, ['predict', {str(tmp_path / 'nope.tif')!r}, '-m', {str(identity_bundle)!r}]); "
        "print(r.exit_code, 'torch' in sys.modules)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.stdout.split() == ["1", "False"], res.stdout + res.stderr


def test_complex_arrays_are_refused_like_complex_scenes(make_translator):
    with pytest.raises(InputError, match=r"the array is complex \(complex64\); .*amplitude"):
        make_translator().predict_array(np.ones((2, 8, 8), np.complex64))
