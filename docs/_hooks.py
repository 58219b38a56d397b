"""mkdocs hooks: pages generated from the code, so the reference never goes stale.

Registered in ``mkdocs.yml`` under ``hooks:`` (mkdocs >= 1.6, no plugin needed):

- ``<!-- hook-reference -->`` becomes the reference of every hook, read from
  the docstrings and banner comments of ``evalwire/hookspecs.py``;
- ``<!-- cli-reference -->`` becomes the reference of every ``evalwire``
  command and option, walked from ``evalwire.cli.build_cli`` with evalwire's
  own plugins (each option and command says which plugin adds it);
- ``<!-- cli-options: MODULE -->`` becomes the options a plugin module adds
  to ``evalwire run`` (used for the first-party plugins' pages);
- ``CONTRIBUTING.md`` at the repository root becomes the page
  ``contributing.md``, with its ``docs/`` links made relative to the site;
- ``configuration.md`` is checked to name every config key the code accepts:
  a missing key is a warning, which fails ``mkdocs build --strict``.

The documented plugins are evalwire's own (third-party plugins installed in
the environment are left out, so the site is the same wherever it is built),
plus any public module of ``evalwire.builtin`` not yet registered as an entry
point in the installed metadata, so a built-in documents itself as soon as it
exists.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
import pkgutil
import re
import sys
from functools import cache
from pathlib import Path
from typing import Any

import click
from mkdocs.structure.files import File

log = logging.getLogger("mkdocs.hooks.evalwire")

REPO = Path(__file__).resolve().parents[1]
if importlib.util.find_spec("evalwire") is None:  # mkdocs run outside evalwire's environment
    sys.path.insert(0, str(REPO / "src"))
FIRST_PARTY_SOURCES = sorted((REPO / "plugins").glob("evalwire-*/src"))
HOOK_MARKER = "<!-- hook-reference -->"
CLI_MARKER = "<!-- cli-reference -->"
OPTIONS_MARKER = re.compile(r"<!-- cli-options: ([\w.]+) -->")


# -- mkdocs events ----------------------------------------------------------------------


def on_pre_build(config: Any) -> None:
    # `mkdocs serve` rebuilds in the same process: read the code afresh each time.
    for cached in (doc_plugins, option_owners, command_owners):
        cached.cache_clear()


def on_files(files: Any, config: Any) -> Any:
    contributing = REPO / "CONTRIBUTING.md"
    if contributing.is_file():
        text = contributing.read_text(encoding="utf-8")
        text = re.sub(r"\]\(docs/([^)\s]+)\)", r"](\1)", text)
        files.append(File.generated(config, "contributing.md", content=text))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if HOOK_MARKER in markdown:
        markdown = markdown.replace(HOOK_MARKER, hook_reference())
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_reference())
    markdown = OPTIONS_MARKER.sub(lambda m: plugin_options(m.group(1)), markdown)
    if page.file.src_uri == "configuration.md":
        check_configuration_keys(markdown)
    return markdown


# -- text ----------------------------------------------------------------------------


_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj):`~?([^`]+)`")


def rst_to_markdown(text: str) -> str:
    """Docstring markup (Sphinx roles, ``double backticks``) as Markdown code spans."""
    text = _ROLE.sub(r"``\1``", text)
    return re.sub(r"``(.+?)``", r"`\1`", text)


def cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|").replace("<", "&lt;").replace("*", "\\*")


# -- the plugins documented -----------------------------------------------------------------


@cache
def doc_plugins() -> Any:
    """evalwire's own plugins: its entry points, and any built-in module not yet among them."""
    import evalwire.builtin
    from evalwire.plugins import Plugins

    plugins = Plugins.load((), autoload=False)
    for info in pkgutil.iter_modules(evalwire.builtin.__path__):
        if info.name.startswith("_") or plugins.has(info.name):
            continue
        module = importlib.import_module(f"evalwire.builtin.{info.name}")
        if not plugins.pm.is_registered(module):
            plugins.register(module, info.name, "evalwire")
    return plugins


def implementers(hook_name: str) -> list[str]:
    plugins = doc_plugins()
    impls = getattr(plugins.pm.hook, hook_name).get_hookimpls()
    return sorted({impl.plugin_name for impl in impls})


def _alone(hook_name: str, plugin: object) -> Any:
    """A caller of one hook that calls only ``plugin``'s implementation."""
    pm = doc_plugins().pm
    others = [p for p in pm.get_plugins() if p is not plugin]
    return pm.subset_hook_caller(hook_name, remove_plugins=others)


@cache
def option_owners() -> dict[str, str]:
    """The plugin that adds each ``evalwire run`` option, by the option's destination."""
    from evalwire.config import OptionParser

    owners: dict[str, str] = {}
    for name, plugin in doc_plugins().pm.list_name_plugin():
        parser = OptionParser()
        _alone("evalwire_addoption", plugin)(parser=parser)
        for option in parser.options:
            owners[option.dest] = name
    return owners


@cache
def command_owners() -> dict[str, str]:
    """The plugin that adds each subcommand, by the command's name."""
    owners: dict[str, str] = {}
    for name, plugin in doc_plugins().pm.list_name_plugin():
        group = click.Group()
        _alone("evalwire_register_commands", plugin)(cli=group)
        for command in group.commands:
            owners[command] = name
    return owners


# -- the hook reference -------------------------------------------------------------------


_BANNER = re.compile(r"^# -- (.+?) -*$")
_DEF = re.compile(r"^def (evalwire_\w+)\(")


def hook_reference() -> str:
    from evalwire import hookspecs

    lines = inspect.getsource(hookspecs).splitlines()
    stages: list[tuple[str, list[str], list[str]]] = []  # (title, note lines, hook names)
    in_note = False
    for line in lines:
        banner = _BANNER.match(line)
        if banner:
            stages.append((banner.group(1), [], []))
            in_note = True
            continue
        if in_note and line.startswith("#"):
            stages[-1][1].append(line.lstrip("#").strip())
            continue
        in_note = False
        hook = _DEF.match(line)
        if hook and stages:
            stages[-1][2].append(hook.group(1))

    out = [rst_to_markdown(inspect.getdoc(hookspecs) or ""), ""]
    out += ["| Hook | Stage | Called | Built-in implementations |", "| --- | --- | --- | --- |"]
    for title, _, names in stages:
        for name in names:
            called = "first answer wins" if _firstresult(name) else "every plugin"
            builtins = ", ".join(f"`{p}`" for p in implementers(name)) or "—"
            out.append(f"| [`{name}`](#{name}) | {title} | {called} | {builtins} |")
    for title, note, names in stages:
        out += ["", f"## {title[:1].upper()}{title[1:]}", ""]
        if note:
            out += [rst_to_markdown(" ".join(note)), ""]
        for name in names:
            out += _hook_section(name)
    return "\n".join(out) + "\n"


def _firstresult(name: str) -> bool:
    from evalwire import hookspecs

    return bool(getattr(hookspecs, name).evalwire_spec.get("firstresult"))


def _hook_section(name: str) -> list[str]:
    from evalwire import hookspecs

    function = getattr(hookspecs, name)
    signature = inspect.signature(function)
    params = ", ".join(f"{p.name}: {p.annotation}" for p in signature.parameters.values())
    returns = signature.return_annotation
    called = (
        "**First answer wins**: plugins are asked in turn until one returns something "
        "other than `None`."
        if _firstresult(name)
        else "**Every plugin is called.**"
    )
    builtins = implementers(name)
    by = f" Built-in implementations: {', '.join(f'`{p}`' for p in builtins)}." if builtins else ""
    return [
        f"### `{name}`",
        "",
        "```python",
        f"@evalwire.hookimpl\ndef {name}({params}) -> {returns}: ...",
        "```",
        "",
        called + by,
        "",
        rst_to_markdown(inspect.getdoc(function) or ""),
        "",
    ]


# -- the CLI reference ----------------------------------------------------------------------


def cli_reference() -> str:
    from evalwire.cli import build_cli

    cli = build_cli(doc_plugins())
    root = click.Context(cli, info_name="evalwire")
    names = cli.list_commands(root)
    # `run` first: it is the command; the rest alphabetically.
    names = sorted(names, key=lambda n: (n != "run", n))
    out = [
        "## `evalwire`",
        "",
        "```text",
        cli.get_usage(root),
        "```",
        "",
        _help_text(cli),
        "",
        "| Command | What it does | Added by |",
        "| --- | --- | --- |",
    ]
    for name in names:
        command = cli.get_command(root, name)
        if command is None or command.hidden:
            continue
        owner = command_owners().get(name)
        out.append(
            f"| [`{name}`](#evalwire-{name}) | {cell(command.get_short_help_str(200))} "
            f"| {f'`{owner}` plugin' if owner else 'core'} |"
        )
    out += ["", *_params_table(cli, root)]
    for name in names:
        command = cli.get_command(root, name)
        if command is None or command.hidden:
            continue
        ctx = click.Context(command, info_name=name, parent=root)
        out += [
            "",
            f"## `evalwire {name}` {{#evalwire-{name}}}",
            "",
            "```text",
            command.get_usage(ctx),
            "```",
            "",
            _help_text(command),
        ]
        owner = command_owners().get(name)
        if owner:
            out += ["", f"Added by the `{owner}` plugin."]
        out += ["", *_params_table(command, ctx, owners=option_owners() if name == "run" else {})]
    return "\n".join(out) + "\n"


def _help_text(command: click.Command) -> str:
    text = inspect.cleandoc(command.help or "").split("\f")[0]
    return "\n".join(line for line in text.splitlines() if line.strip() != "\b")


def _params_table(
    command: click.Command, ctx: click.Context, owners: dict[str, str] | None = None
) -> list[str]:
    arguments = [p for p in command.get_params(ctx) if isinstance(p, click.Argument)]
    options = [
        p
        for p in command.get_params(ctx)
        if isinstance(p, click.Option) and not p.hidden and p.get_help_record(ctx)
    ]
    out: list[str] = []
    if arguments:
        out += ["Arguments: " + ", ".join(f"`{a.make_metavar(ctx)}`" for a in arguments), ""]
    if not options:
        return out
    with_owner = bool(owners)
    out.append("| Option | Description |" + (" Added by |" if with_owner else ""))
    out.append("| --- | --- |" + (" --- |" if with_owner else ""))
    for option in options:
        record = option.get_help_record(ctx)
        assert record is not None
        decls, help_text = record
        row = f"| `{decls}` | {cell(help_text)} |"
        if with_owner:
            owner = (owners or {}).get(option.name or "")
            row += f" {f'`{owner}`' if owner else 'core'} |"
        out.append(row)
    return out


def plugin_options(module_name: str) -> str:
    """The options ``module_name``'s ``evalwire_addoption`` adds to ``evalwire run``."""
    from evalwire.config import OptionParser

    module = _import_first_party(module_name)
    parser = OptionParser()
    hook = getattr(module, "evalwire_addoption", None)
    if hook is not None:
        hook(parser=parser)
    if not parser.options:
        return "This plugin adds no options to `evalwire run`."
    command = click.Command("run", add_help_option=False)
    for option in parser.options:
        attrs = {k: v for k, v in option.attrs.items() if k != "dest"}
        decls = [d for d in option.decls if d.startswith("-")]
        command.params.append(click.Option([*decls, option.dest], **attrs))
    ctx = click.Context(command, info_name="run")
    return "\n".join(_params_table(command, ctx)) + "\n"


def _import_first_party(module_name: str) -> Any:
    """A module of evalwire or of a first-party plugin, installed or not (from ``plugins/``)."""
    try:
        return importlib.import_module(module_name)
    except ImportError:
        pass
    saved = list(sys.path)
    sys.path[:0] = [str(p) for p in FIRST_PARTY_SOURCES]
    try:
        return importlib.import_module(module_name)
    finally:
        sys.path[:] = saved


# -- configuration keys ------------------------------------------------------------------


def config_keys() -> dict[str, list[str]]:
    """Every config key the code checks, by where it goes, read from the code itself."""
    keys: dict[str, list[str]] = {}
    from evalwire import config

    keys["top level"] = sorted(getattr(config, "_SETTINGS", {}))
    keys["run options (top level)"] = sorted(option_owners())
    try:
        from evalwire.phoenix import client

        keys["[phoenix]"] = sorted(getattr(client, "_SECTION_TYPES", {}))
    except ImportError:
        pass
    try:
        dask_plugin = _import_first_party("evalwire_dask.plugin")
        keys["[dask]"] = sorted(getattr(dask_plugin, "SETTINGS", {}))
    except ImportError:
        pass
    return keys


def check_configuration_keys(markdown: str) -> None:
    for where, names in config_keys().items():
        for name in names:
            if f"`{name}`" not in markdown:
                log.warning(
                    "configuration.md does not document the %s key `%s` "
                    "(the code accepts it); add it to the page",
                    where,
                    name,
                )
