"""The ``evalwire`` command line.

Plugins are loaded before the command line is built, because they add
options to ``run`` and subcommands to the group; ``-p`` values are therefore
read from the raw arguments first, as pytest does.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Sequence
from typing import Any

import click

from evalwire.config import OptionParser, build_config
from evalwire.errors import EvalwireError, UsageError
from evalwire.plugins import Plugins


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("evalwire")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def _show_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    # Reading the version parses evalwire's METADATA (and imports the email
    # package to do it): only when asked, not to build every command line.
    if not value or ctx.resilient_parsing:
        return
    click.echo(f"evalwire {_version()}", color=ctx.color)
    ctx.exit()


def plugin_args(argv: Sequence[str]) -> list[str]:
    """Every ``-p VALUE`` / ``-pVALUE`` / ``--plugin VALUE`` in ``argv``."""
    found: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg == "--":
            break
        if arg in ("-p", "--plugin"):
            value = next(args, None)
            if value is not None:
                found.append(value)
        elif arg.startswith("--plugin="):
            found.append(arg.split("=", 1)[1])
        elif arg.startswith("-p") and len(arg) > 2 and not arg.startswith("--"):
            found.append(arg[2:])
    return found


#: The ``-p`` option, for plugins' own subcommands: its values are read before parsing.
plugin_option = click.option(
    "-p",
    "--plugin",
    "plugin_args",
    multiple=True,
    metavar="NAME",
    help="Load plugin module NAME, or block plugin NAME with no:NAME.",
    expose_value=False,
)

#: ``-e/--experiments DIR``, for every command that reads an experiments folder.
experiments_option = click.option(
    "-e",
    "--experiments",
    "experiments_dir",
    metavar="DIR",
    help="Folder of experiments (default: experiments).",
)


def _key_values(
    ctx: click.Context, param: click.Parameter, values: Sequence[str]
) -> dict[str, str] | None:
    if not values:
        return None
    result: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {item!r}", ctx, param)
        result[key] = value
    return result


def _dry_run(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    if value is None:
        return None
    try:
        size = int(value)
    except ValueError:
        raise click.BadParameter(f"expected a number of examples, got {value!r}") from None
    if size < 1:
        raise click.BadParameter("must be at least 1")
    return size


def build_cli(plugins: Plugins) -> click.Group:
    """The command group, with plugins' options and subcommands added."""

    @click.group(context_settings={"help_option_names": ["-h", "--help"]})
    @click.option(
        "--version",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_show_version,
        help="Show the version and exit.",
    )
    @plugin_option
    def cli() -> None:
        """evalwire: run evaluation experiments on LLM-powered code."""

    parser = OptionParser()
    plugins.addoption(parser)
    plugin_dests = [option.dest for option in parser.options]

    @cli.command()
    @experiments_option
    @click.option(
        "--name",
        "names",
        multiple=True,
        metavar="NAME",
        help="Run only this experiment (repeatable).",
    )
    @click.option(
        "--dry-run",
        "dry_run",
        is_flag=False,
        flag_value="1",
        default=None,
        metavar="[N]",
        callback=_dry_run,
        help="Run a seeded random sample of N examples (default 1); record nothing.",
    )
    @click.option("--concurrency", type=click.IntRange(min=1), help="Experiments at once.")
    @click.option(
        "--task-concurrency", type=click.IntRange(min=1), help="Units in flight per experiment."
    )
    @click.option("--repetitions", type=click.IntRange(min=1), help="Runs per example.")
    @click.option("--retries", type=click.IntRange(min=0), help="Retries of a failing task.")
    @click.option(
        "--timeout", type=click.FloatRange(min=0), help="Seconds per task call (0: none)."
    )
    @click.option("--prefix", help="Experiment name prefix (default: eval).")
    @click.option(
        "--metadata",
        multiple=True,
        metavar="KEY=VALUE",
        callback=_key_values,
        help="Metadata attached to every experiment (repeatable).",
    )
    @click.option("--executor", metavar="NAME", help="Executor plugin (default: threads).")
    @click.option("--seed", type=int, help="Seed for dry-run sampling.")
    @click.option(
        "--matrix",
        multiple=True,
        metavar="KEY=V1,V2",
        help="Sweep: one arm per combination of values (repeatable).",
    )
    @click.option(
        "--arm",
        "arms",
        multiple=True,
        metavar="KEY=VALUE",
        help="Run only the sweep arms with this value (repeatable).",
    )
    @click.option(
        "--repeats",
        type=click.IntRange(min=1),
        help="Replicates per arm, with seeds SEED, SEED+1, ...",
    )
    @click.option("--select", metavar="EVALUATOR", help="Pick the best arm by this evaluator.")
    @click.option(
        "--select-mode",
        type=click.Choice(["max", "min"]),
        help="Whether the best arm has the highest (default) or lowest score.",
    )
    @click.option(
        "--resume",
        is_flag=True,
        default=None,
        help="Continue each experiment's latest record when its dataset and code are "
        "unchanged, running only what it lacks and the runs whose task failed.",
    )
    @click.option("--config", "config_path", metavar="PATH", help="Config file to read.")
    @click.option("-q", "--quiet", count=True, help="Less output.")
    @click.option("-v", "--verbose", count=True, help="More output.")
    @plugin_option
    def run(config_path: str | None, quiet: int, verbose: int, **values: Any) -> None:
        """Run experiments and report their scores."""
        from evalwire.session import run_session
        from evalwire.sweeps import parse_arm_filter, parse_matrix

        options = {dest: values.pop(dest) for dest in plugin_dests if dest in values}
        values["names"] = tuple(values["names"]) or None
        values["matrix"] = parse_matrix(values.pop("matrix")) or None
        values["arm_filter"] = parse_arm_filter(values.pop("arms")) or None
        values["verbosity"] = verbose - quiet
        config = build_config(values, config_path=config_path, options=options)
        _, status = run_session(config, plugins)
        sys.exit(status)

    for option in parser.options:
        # pytest-style ``dest=`` becomes click's parameter name.
        attrs = {k: v for k, v in option.attrs.items() if k != "dest"}
        decls = [d for d in option.decls if d.startswith("-")]
        run.params.append(click.Option([*decls, option.dest], **attrs))

    @cli.command("plugins")
    @click.option("--json", "as_json", is_flag=True, help="Print JSON.")
    @plugin_option
    def list_plugins(as_json: bool) -> None:
        """List every registered plugin: name, distribution, version, hooks."""
        infos = plugins.infos()
        if as_json:
            import json

            click.echo(
                json.dumps(
                    [
                        {
                            "name": i.name,
                            "distribution": i.distribution,
                            "version": i.version,
                            "hooks": list(i.hooks),
                        }
                        for i in infos
                    ],
                    indent=2,
                )
            )
            return
        width = max((len(i.name) for i in infos), default=4)
        for info in infos:
            origin = f"{info.distribution or '-'} {info.version or ''}".strip()
            hooks = ", ".join(h.removeprefix("evalwire_") for h in info.hooks)
            click.echo(f"{info.name:<{width}}  {origin}  [{hooks}]")

    plugins.register_commands(cli)
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--version"]:  # answers even when a plugin is broken
        click.echo(f"evalwire {_version()}")
        return 0
    try:
        plugins = Plugins.load(plugin_args(args))
        cli = build_cli(plugins)
        cli.main(args=args, prog_name="evalwire", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("Aborted!", err=True)
        return 130
    except EvalwireError as exc:
        click.echo(f"evalwire: error: {exc}", err=True)
        return 2 if isinstance(exc, UsageError) else 1
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def entry() -> None:  # pragma: no cover - the console script
    status = main()
    # A sync task past its timeout may still be running in a worker thread,
    # and Python would wait for it at exit (concurrent.futures joins even
    # daemon workers): everything is reported by now, so do not wait.
    main_thread = threading.main_thread()
    if any(t is not main_thread and t.is_alive() for t in threading.enumerate()):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)
