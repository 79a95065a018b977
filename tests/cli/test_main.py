"""The geop2p click group: version, help, and how errors reach the user."""

from __future__ import annotations

import click
from click.testing import CliRunner

import geop2p
from geop2p.cli import cli
from geop2p.errors import InputError


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert geop2p.__version__ in result.output


def test_help_lists_commands():
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    assert "export-chips" in result.output


def test_unknown_command_fails():
    result = CliRunner().invoke(cli, ["frobnicate"])
    assert result.exit_code != 0
    assert "No such command" in result.output


def test_geop2p_error_is_one_line_and_exit_1(monkeypatch):
    @click.command()
    def boom():
        raise InputError("size 100 is not a multiple of 32; use 96 or 128.")

    monkeypatch.setitem(cli.commands, "boom", boom)
    result = CliRunner().invoke(cli, ["boom"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == ["Error: size 100 is not a multiple of 32; use 96 or 128."]

    verbose = CliRunner().invoke(cli, ["-v", "boom"])
    assert verbose.exit_code == 1
    assert "Traceback" in verbose.output
