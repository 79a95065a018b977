"""The ``geop2p`` command line: a click group whose commands wrap library functions.

Each command lives in its own module and is loaded lazily, so ``geop2p --help``
and ``geop2p export-chips`` never import torch.  A :class:`~geop2p.errors.Geop2pError`
becomes one line on stderr and exit code 1; ``-v`` shows the traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import signal
import sys
import threading
import traceback

import click

from geop2p import __version__
from geop2p.errors import Geop2pError

__all__ = ["main", "cli"]

# command name -> module under geop2p.cli that defines a click command named ``command``
COMMANDS: dict[str, str] = {
    "export-chips": "export_chips",
    "info": "info",
    "train": "train",
    "evaluate": "evaluate",
    "predict": "predict",
    "export-onnx": "export_onnx",
    "demo": "demo",
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command is used."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        lazy = [name for name in COMMANDS if importlib.util.find_spec(f"geop2p.cli.{COMMANDS[name]}")]
        return sorted(set(lazy) | set(self.commands))

    def get_command(self, ctx: click.Context, name: str):
        if name in self.commands:
            return self.commands[name]
        module_name = COMMANDS.get(name)
        if module_name is None:
            return None
        try:
            module = importlib.import_module(f"geop2p.cli.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"geop2p.cli.{module_name}":
                return None
            raise
        return module.command

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except Geop2pError as exc:
            if ctx.obj and ctx.obj.get("verbosity", 0) > 0:
                click.echo(traceback.format_exc().rstrip(), err=True)
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            # Ctrl-C or SIGTERM: the command has already removed what it had half written
            click.echo("Interrupted; nothing half-written was left behind.", err=True)
            ctx.exit(130)


def _terminate_like_interrupt(signum, frame) -> None:
    """SIGTERM (what schedulers and `timeout` send) unwinds like Ctrl-C, so partial outputs are cleaned up."""
    raise KeyboardInterrupt


def _configure_logging(verbosity: int) -> None:
    level = {-1: logging.WARNING, 0: logging.INFO}.get(verbosity, logging.DEBUG if verbosity > 0 else logging.ERROR)
    logger = logging.getLogger("geop2p")
    logger.setLevel(level)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        logger.addHandler(handler)
    for handler in logger.handlers:
        handler.setLevel(level)
    logging.captureWarnings(True)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="geop2p")
@click.option("-v", "--verbose", count=True, help="More output; -v also shows tracebacks of errors.")
@click.option("-q", "--quiet", count=True, help="Less output (warnings and errors only).")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: int) -> None:
    """geop2p: translate one georeferenced raster into another with pix2pix.

    \b
    Typical flow:
      geop2p export-chips input.tif target.tif chips/
      geop2p train chips/ --out run/
      geop2p predict scene.tif --model run/model.safetensors
    """
    verbosity = verbose - quiet
    ctx.ensure_object(dict)
    ctx.obj["verbosity"] = verbosity
    ctx.obj["progress"] = verbosity >= 0 and sys.stderr.isatty()
    _configure_logging(verbosity)


def main() -> None:
    """Entry point of the ``geop2p`` console script."""
    from geop2p.io.gdal_log import route_gdal_messages

    route_gdal_messages()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate_like_interrupt)
    cli(prog_name="geop2p")
