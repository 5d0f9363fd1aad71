"""The `pantanal` command.

`infer` (the field command) is defined here. Research subcommands (data, train, harness,
registry, package, ...) register themselves through the `pantanal.commands` entry-point group,
so this module never imports the training or evaluation packages, and a field install without
them still has a working `pantanal infer`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from importlib.metadata import entry_points

from infer import i18n
from infer.i18n import _

log = logging.getLogger(__name__)


def _language_from_argv(argv: list[str]) -> str | None:
    # Help text is built before argparse runs, so --lang is read ahead of it.
    for index, arg in enumerate(argv):
        if arg == "--lang" and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--lang="):
            return arg.split("=", 1)[1]
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pantanal",
        description=_("Offline identification of Pantanal wildlife in audio recordings."),
        epilog=_("Field use needs only 'infer'. The other commands train and evaluate models; they "
                 "are research tools and speak English."),
    )
    parser.add_argument("--lang", choices=i18n.LANGUAGES, help=_("language of messages and reports (default: from the locale)"))
    parser.add_argument("-v", "--verbose", action="store_true", help=_("show debug messages"))
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")

    from infer.command import add_infer_command

    add_infer_command(subparsers)
    for entry in sorted(entry_points(group="pantanal.commands"), key=lambda e: e.name):
        try:
            register = entry.load()
        except ImportError as exc:
            # A field install has no training extras; their subcommands are simply absent.
            log.debug("subcommands %s unavailable: %s", entry.name, exc)
            continue
        register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        i18n.set_language(_language_from_argv(argv))
    except ValueError as exc:
        print(exc, file=sys.stderr)
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except ModuleNotFoundError as exc:
        # Research subcommands import their libraries when they run, so `pantanal --help` stays
        # fast. In a field install (no `train` extra) they fail here, and the message names the fix.
        if args.command == "infer" or not exc.name:
            raise
        print(_("error: 'pantanal %s' needs the research install, which this environment lacks "
                "(module %s not found); install it with: pip install 'pantanal[train]'")
              % (args.command, exc.name), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
