"""The README's commands are copy-paste correct: every `geop2p COMMAND --option` it shows exists.

Each mention of ``geop2p <command>`` (in code blocks, inline code and the CLI
table, ``torchrun ... -m geop2p <command>`` too) is split into the command and
the options written after it; the command must exist and every option must be
one of its click parameters. The error example's message is checked against
the real command's output.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from geop2p.cli import cli

README = Path(__file__).resolve().parents[1] / "README.md"

#: ``geop2p <command>`` followed by the rest of its line, up to a closing backtick or table bar
_MENTION = re.compile(r"geop2p ([a-z][a-z-]+)((?:[^`|\n]|\\\|)*)")
_OPTION = re.compile(r"(?<![\w-])(--?[a-zA-Z][\w-]*)")


def _mentions() -> list[tuple[str, list[str]]]:
    found = []
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("|"):  # the CLI table: the options column belongs to the command column
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)]
            cells = [c for c in cells if c]
            m = _MENTION.search(cells[0]) if cells else None
            if m and len(cells) >= 3:
                found.append((m.group(1), _OPTION.findall(m.group(2) + " " + cells[2])))
            continue
        for m in _MENTION.finditer(line):
            rest = m.group(2).split("#")[0]
            found.append((m.group(1), _OPTION.findall(rest)))
    return found


def _params(command_name: str) -> set[str]:
    ctx = cli.make_context("geop2p", [command_name, "--help"], resilient_parsing=True)
    command = cli.get_command(ctx, command_name)
    assert command is not None, f"README mentions `geop2p {command_name}`, which does not exist"
    names = {"--help", "-h"}
    for param in command.params:
        names.update(param.opts)
        names.update(param.secondary_opts)
    return names


MENTIONS = _mentions()
COMMANDS = {"export-chips", "info", "train", "evaluate", "predict", "export-onnx", "demo"}


def test_readme_mentions_every_command():
    assert {c for c, _ in MENTIONS if c in COMMANDS} == COMMANDS


@pytest.mark.parametrize(("command", "options"), [m for m in MENTIONS if m[0] in COMMANDS])
def test_readme_options_exist(command, options):
    valid = _params(command)
    unknown = [o for o in options if o not in valid]
    assert not unknown, f"README shows `geop2p {command}` with unknown option(s) {unknown}"


def test_readme_error_example_is_what_the_cli_prints(tmp_path):
    text = README.read_text(encoding="utf-8")
    example = re.search(r"\$ (geop2p export-chips [^\n]+)\n(Error: [^\n]+)", text)
    assert example, "the README's error example is missing"
    command, expected = example.groups()
    args = shlex.split(command)[1:]
    result = CliRunner().invoke(cli, [a if not a.endswith(".tif") else str(tmp_path / a) for a in args])
    # the size is checked before the files are opened, so the message is the README's exactly
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == expected
