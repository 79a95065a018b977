"""``geop2p demo`` through click's CliRunner (bad input; the full run is in tests/test_demo.py)."""

from __future__ import annotations

from click.testing import CliRunner

from geop2p.cli import cli


def test_demo_refuses_existing_outputs(tmp_path):
    out = tmp_path / "demo"
    (out / "chips").mkdir(parents=True)
    result = CliRunner().invoke(cli, ["demo", "--out", str(out), "--quick"])
    assert result.exit_code == 1
    assert "already holds demo outputs (chips)" in result.output and "--overwrite" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == ["chips"]


def test_demo_out_is_a_file(tmp_path):
    f = tmp_path / "x"
    f.write_text("x")
    result = CliRunner().invoke(cli, ["demo", "--out", str(f)])
    assert result.exit_code != 0 and "is a file" in result.output


def test_demo_help_lists_options():
    result = CliRunner().invoke(cli, ["demo", "--help"])
    assert result.exit_code == 0
    for option in ("--out", "--overwrite", "--quick"):
        assert option in result.output
