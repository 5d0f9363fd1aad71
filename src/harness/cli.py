"""Evaluation and MLOps subcommands of `pantanal`, registered through the entry-point group.

Each module in `COMMAND_MODULES` defines `add_commands(subparsers)`; this keeps one module per
concern (harness, registry, dashboard, package, checklist) and lets `infer.cli` stay unaware of
all of them.
"""

from __future__ import annotations

import argparse
import importlib

COMMAND_MODULES: tuple[str, ...] = (
    "harness.site_cli",
    "harness.registry_cli",
    "harness.dashboard",
    "harness.package",
    "harness.checklist",
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add every harness-side subcommand to the `pantanal` parser."""
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(subparsers)
