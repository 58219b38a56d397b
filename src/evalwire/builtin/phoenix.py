"""The ``phoenix`` plugin: datasets from Arize Phoenix, experiments recorded there, ``upload``.

Phoenix is on when ``--phoenix URL``, ``[phoenix] url`` or the Phoenix
client's environment variables say where it is (see
:mod:`evalwire.phoenix.client`); ``--no-phoenix`` turns it off. Then:

* datasets come from Phoenix by name (``--split``, ``--dataset-version``), ahead
  of local files (:mod:`evalwire.phoenix.loader`);
* every experiment, run and evaluation is posted as it completes, and the
  session ends with each experiment's Phoenix link; runs Phoenix could not
  take make the exit status 1 (:mod:`evalwire.phoenix.recorder`). A dry run
  posts nothing;
* each task call is a span in the experiment's Phoenix project, and each run
  links to its trace (:mod:`evalwire.phoenix.traces`; ``--no-traces`` for none).

``evalwire upload`` turns a testset CSV or JSONL into Phoenix datasets and
``evalwire validate`` checks one first (:mod:`evalwire.phoenix.upload`).
``evalwire sync [ID]`` posts what the embedded store holds and Phoenix lacks:
the runs an outage kept from Phoenix (:mod:`evalwire.phoenix.sync`).

This module is only the hooks, options and commands; ``phoenix.client`` is
imported when Phoenix is first used, never when this plugin is loaded.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from evalwire.cli import plugin_option
from evalwire.errors import UsageError
from evalwire.plugins import hookimpl

if TYPE_CHECKING:
    from evalwire.config import Config, OptionParser
    from evalwire.models import Dataset, ExperimentResult, ExperimentSpec, Run
    from evalwire.phoenix.client import Phoenix
    from evalwire.phoenix.traces import TaskTracer
    from evalwire.session import Experiment, Session

NAME = "phoenix"
#: Longest an ending experiment waits for Phoenix to create it (seconds).
CREATE_WAIT = 5.0


# -- set-up -------------------------------------------------------------------


@hookimpl
def evalwire_addoption(parser: OptionParser) -> None:
    parser.addoption(
        "--phoenix",
        dest="phoenix_url",
        default=None,
        metavar="URL",
        help="Load datasets from, and record experiments in, the Phoenix server at URL.",
    )
    parser.addoption(
        "--no-phoenix",
        dest="no_phoenix",
        is_flag=True,
        default=False,
        help="Do not use Phoenix, even if the config or environment names a server.",
    )
    parser.addoption(
        "--no-traces",
        dest="no_traces",
        is_flag=True,
        default=False,
        help="Record runs in Phoenix without their task spans (traces).",
    )
    parser.addoption(
        "--split",
        dest="phoenix_splits",
        multiple=True,
        metavar="NAME",
        help="Run only the Phoenix dataset's examples in split NAME (repeatable).",
    )
    parser.addoption(
        "--dataset-version",
        dest="phoenix_dataset_version",
        default=None,
        metavar="ID",
        help="Run on this version of the Phoenix dataset (default: the latest).",
    )


@hookimpl
def evalwire_configure(config: Config) -> None:
    from evalwire.phoenix.client import Phoenix, target

    if config.getoption("phoenix_url") and config.getoption("no_phoenix"):
        raise UsageError("--phoenix and --no-phoenix contradict each other; give one")
    found = target(config)
    if found is None:
        given = [
            flag
            for flag, dest in (
                ("--split", "phoenix_splits"),
                ("--dataset-version", "phoenix_dataset_version"),
            )
            if config.getoption(dest)
        ]
        if given:
            raise UsageError(
                f"{' and '.join(given)} select a Phoenix dataset, but Phoenix is off: "
                "give --phoenix URL (or [phoenix] url in evalwire.toml)"
            )
    config.stash[NAME] = Phoenix(found, config) if found is not None else None


def _phoenix(config: Config) -> Phoenix | None:
    if NAME not in config.stash:  # the hooks are driven without a session
        evalwire_configure(config)
    phoenix: Phoenix | None = config.stash.get(NAME)
    return phoenix


# -- loader -------------------------------------------------------------------


@hookimpl
def evalwire_load_dataset(spec: ExperimentSpec, config: Config) -> Dataset | None:
    """With Phoenix on, the dataset comes from Phoenix (first); otherwise ``None``."""
    phoenix = _phoenix(config)
    if phoenix is None:
        return None
    from evalwire.phoenix.loader import load_dataset

    return load_dataset(spec, config, phoenix)


# -- recorder -----------------------------------------------------------------


@hookimpl
def evalwire_session_start(session: Session) -> None:
    config = session.config
    try:
        phoenix = _phoenix(config)
        if phoenix is not None and config.dry_run_size is None:
            from evalwire.phoenix.recorder import Recorder

            phoenix.recorder = Recorder(phoenix, config)
    except Exception as exc:
        _internal_error(exc)


@hookimpl
def evalwire_experiment_start(experiment: Experiment) -> None:
    phoenix = experiment.config.stash.get(NAME)
    recorder = getattr(phoenix, "recorder", None)
    if recorder is None:
        return
    try:
        recording = recorder.start(experiment)
    except Exception as exc:
        _internal_error(exc)
        return
    if recording is not None:
        experiment.stash[NAME] = recording


@hookimpl
def evalwire_make_tracer(experiment: Experiment) -> TaskTracer | None:
    """Task spans into the experiment's Phoenix project, when it is recorded there."""
    phoenix = experiment.config.stash.get(NAME)
    recorder = getattr(phoenix, "recorder", None)
    if recorder is None:
        return None
    try:
        tracer: TaskTracer | None = recorder.tracer(experiment.stash.get(NAME))
    except Exception as exc:
        _internal_error(exc)
        return None
    return tracer


@hookimpl
def evalwire_run_complete(experiment: Experiment, run: Run) -> None:
    recording = experiment.stash.get(NAME)
    if recording is not None:
        try:
            recording.add(run)
        except Exception as exc:
            _internal_error(exc)


@hookimpl(tryfirst=True)  # before the store writes the record's final row
def evalwire_experiment_finish(experiment: Experiment, result: ExperimentResult) -> None:
    """Give Phoenix a moment to answer the experiment's creation, so its id is recorded."""
    recording = experiment.stash.get(NAME)
    if recording is not None:
        # An experiment shorter than one round trip ends before Phoenix made
        # it; without its id the store's record sends `evalwire sync` looking
        # for it by name. Bounded: an outage must not hold the session up.
        recording.settled.wait(CREATE_WAIT)


@hookimpl(trylast=True)
def evalwire_session_finish(
    session: Session, results: list[ExperimentResult], exitstatus: int
) -> int | None:
    """Wait for the posts to drain, print each experiment's link; 1 if runs were lost."""
    phoenix = session.config.stash.pop(NAME, None)
    if phoenix is None:
        return None
    try:
        if phoenix.recorder is None:
            return None
        return phoenix.recorder.finish() or None
    except Exception as exc:
        _internal_error(exc)
        return 1
    finally:
        phoenix.close()


def _internal_error(exc: BaseException) -> None:
    sys.stderr.write(f"evalwire: phoenix plugin error (a bug): {type(exc).__name__}: {exc}\n")


# -- commands -----------------------------------------------------------------


def _testset_options(function: Any) -> Any:
    """The options ``upload`` and ``validate`` share: what to read and how."""
    options = [
        click.option(
            "--csv", "csv_path", metavar="PATH", help="Testset CSV (default: [dataset] csv_path)."
        ),
        click.option(
            "--jsonl",
            "jsonl_path",
            metavar="PATH",
            help="Testset JSONL: one {input, expected|output, metadata} a line.",
        ),
        click.option(
            "--dataset",
            metavar="NAME",
            help="Put every row in dataset NAME instead of routing rows by tag.",
        ),
        click.option("--input-keys", metavar="A,B", help="Input columns (default: user_query)."),
        click.option(
            "--output-keys",
            metavar="A,B",
            help="Expected-output columns (default: expected_output|expected|output).",
        ),
        click.option(
            "--metadata-keys", metavar="A,B", help="Metadata columns (default: every other column)."
        ),
        click.option(
            "--tag-column",
            metavar="NAME",
            help="Column (JSONL: metadata key) naming a row's datasets (default: tags).",
        ),
        click.option(
            "--split-column",
            metavar="NAME",
            help="Column (JSONL: metadata key) naming each row's Phoenix splits.",
        ),
        click.option(
            "--delimiter",
            metavar="CHAR",
            help="Separator inside the tag and split columns (default: |).",
        ),
        click.option("--config", "config_path", metavar="PATH", help="Config file to read."),
        plugin_option,
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _read(config_path: str | None, values: dict[str, Any], phoenix_url: str | None = None) -> Any:
    from evalwire.config import build_config
    from evalwire.phoenix.testset import read
    from evalwire.phoenix.upload import layout, source

    config = build_config({}, config_path=config_path, options={"phoenix_url": phoenix_url})
    path, kind = source(config, values.pop("csv_path"), values.pop("jsonl_path"))
    return config, read(path, kind, layout(config, **values))


@hookimpl
def evalwire_register_commands(cli: click.Group) -> None:
    @cli.command("upload")
    @_testset_options
    @click.option(
        "--on-exist",
        type=click.Choice(["skip", "append", "overwrite"]),
        default=None,
        help="What to do with a dataset Phoenix already has (default: skip).",
    )
    @click.option(
        "--force",
        is_flag=True,
        help="With --on-exist overwrite: delete the dataset and its experiments first.",
    )
    @click.option("--strict", is_flag=True, help="Upload nothing if the testset has any problem.")
    @click.option(
        "--phoenix",
        "phoenix_url",
        metavar="URL",
        help="Phoenix server (default: [phoenix] url, else the client's environment).",
    )
    def upload_command(
        config_path: str | None,
        on_exist: str | None,
        force: bool,
        strict: bool,
        phoenix_url: str | None,
        **values: Any,
    ) -> None:
        """Upload a testset (CSV or JSONL) to Phoenix, one dataset per tag."""
        from evalwire.phoenix.client import connect, target
        from evalwire.phoenix.upload import on_exist_setting, summary, upload

        config, testset = _read(config_path, values, phoenix_url)
        action = on_exist_setting(config, on_exist)
        if force and action != "overwrite":
            raise UsageError("--force only applies to --on-exist overwrite")
        for problem in testset.problems:
            click.echo(f"{'error' if problem.fatal else 'warning'}: {problem}", err=True)
        if testset.fatal or (strict and testset.problems):
            click.echo(
                f"upload aborted: {len(testset.problems)} problem(s) in {testset.path} "
                "(`evalwire validate` lists them)",
                err=True,
            )
            sys.exit(1)
        if not testset.rows:
            click.echo(f"nothing to upload: no usable rows in {testset.path}", err=True)
            sys.exit(1)
        found = target(config, required=True)
        assert found is not None
        connection = connect(found)
        try:
            outcomes = upload(testset, connection, action, force=force, echo=click.echo)
            click.echo(summary(outcomes, connection))
        finally:
            connection.close()
        if any(o.action == "failed" for o in outcomes):
            sys.exit(1)

    @cli.command("sync")
    @click.argument("record_id", metavar="[ID]", required=False)
    @click.option(
        "--phoenix",
        "phoenix_url",
        metavar="URL",
        help="Phoenix server (default: [phoenix] url, else the client's environment).",
    )
    @click.option(
        "--store",
        "store",
        metavar="PATH",
        help="Store to read (default: .evalwire/evalwire.db in the project root).",
    )
    @plugin_option
    def sync_command(record_id: str | None, phoenix_url: str | None, store: str | None) -> None:
        """Post to Phoenix the runs and evaluations the store holds and Phoenix lacks.

        Every recorded experiment that ran on a Phoenix dataset, or only the one
        ID names (a full id or a unique prefix). Nothing is posted twice: run
        it again and it posts nothing. Exit 1 if something could not be posted.
        """
        from evalwire.config import build_config
        from evalwire.phoenix.client import connect, section, target
        from evalwire.phoenix.sync import render, settings_from, sync
        from evalwire.store.db import open_store, store_location

        config = build_config({}, options={"phoenix_url": phoenix_url})
        path = store_location(config, store, reading=True)
        assert path is not None  # reading never turns the store off
        found = target(config, required=True)
        assert found is not None
        conn = open_store(path, create=False)
        if conn is None:
            click.echo(f"nothing to sync: there is no store at {path}")
            return
        connection = connect(found)
        try:
            outcomes = sync(
                conn,
                connection,
                settings_from(section(config), found.timeout),
                ref=record_id,
                where=f"the store {path}",
            )
            for line in render(outcomes, connection.url):
                click.echo(line)
        finally:
            connection.close()
            conn.close()
        if any(o.failed or (o.error and not o.skipped) for o in outcomes):
            sys.exit(1)

    @cli.command("validate")
    @_testset_options
    def validate_command(config_path: str | None, **values: Any) -> None:
        """Check a testset: every problem, with its line. Exit 0 valid, 1 problems, 2 error."""
        from evalwire.phoenix.upload import validation_report

        _, testset = _read(config_path, values)
        lines, status = validation_report(testset)
        for line in lines:
            click.echo(line)
        sys.exit(status)
