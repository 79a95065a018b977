"""Options and parameter types shared by several commands."""

from __future__ import annotations

import click

__all__ = ["overwrite_option", "IntList", "FloatList", "device_option"]

overwrite_option = click.option(
    "--overwrite", is_flag=True, default=False, help="Replace the output if it already exists."
)

device_option = click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where the network runs; auto picks CUDA when available.",
)


class IntList(click.ParamType):
    """A comma-separated list of integers, e.g. ``1,2,3``."""

    name = "ints"

    def convert(self, value, param, ctx):  # noqa: D102
        if isinstance(value, (list, tuple)):
            return [int(v) for v in value]
        try:
            return [int(v) for v in str(value).split(",") if v.strip() != ""]
        except ValueError:
            self.fail(f"expected comma-separated integers like 1,2,3, got {value!r}", param, ctx)


class FloatList(click.ParamType):
    """A comma-separated list of floats, e.g. ``0.8,0.1,0.1``."""

    name = "floats"

    def convert(self, value, param, ctx):  # noqa: D102
        if isinstance(value, (list, tuple)):
            return [float(v) for v in value]
        try:
            return [float(v) for v in str(value).split(",") if v.strip() != ""]
        except ValueError:
            self.fail(f"expected comma-separated numbers like 0.8,0.1,0.1, got {value!r}", param, ctx)
