"""Field-facing language: English or Brazilian Portuguese, through gettext catalogs.

The language comes from `--lang`, else from the locale (LANGUAGE, LC_ALL, LC_MESSAGES, LANG).
Training and MLOps messages stay in English; only the field command, its help, its summary and
the HTML report are translated. Common names in Portuguese come from a small sourced table
(`data/common_names_pt_BR.csv`), because the taxonomy carries English names only.

The catalog is `locale/pt_BR/LC_MESSAGES/pantanal.po`, compiled to `pantanal.mo` beside it;
`make translations` extracts new strings, merges them into the catalog and compiles it.
"""

from __future__ import annotations

import argparse
import csv
import functools
import gettext
import os
from pathlib import Path

from infer.taxonomy import Taxon

DOMAIN = "pantanal"
LOCALE_DIR = Path(__file__).parent / "locale"
COMMON_NAMES_PT_BR = Path(__file__).parent / "data" / "common_names_pt_BR.csv"
LANGUAGES = ("en", "pt-BR")

_translation: gettext.NullTranslations = gettext.NullTranslations()
_language = "en"


def detect_language(environ: dict[str, str] | None = None) -> str:
    """`pt-BR` when the locale asks for Portuguese, else `en`."""
    environ = os.environ if environ is None else environ
    for variable in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = environ.get(variable, "")
        if value:
            first = value.split(":")[0].lower()
            return "pt-BR" if first.startswith("pt") else "en"
    return "en"


def set_language(language: str | None) -> str:
    """Activate `language` ("en", "pt-BR", or None for the locale's); return the one in use."""
    global _translation, _language
    language = language or detect_language()
    if language not in LANGUAGES:
        raise ValueError(f"language {language!r} is not supported; choose one of {', '.join(LANGUAGES)}")
    if language == "en":
        _translation = gettext.NullTranslations()
    else:
        _translation = gettext.translation(DOMAIN, LOCALE_DIR, languages=[language.replace("-", "_")])
    _language = language
    _translate_argparse(_translation)
    return language


def current_language() -> str:
    return _language


def _(message: str) -> str:
    """Translate `message` into the active language."""
    return _translation.gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    return _translation.ngettext(singular, plural, count)


def decimal(value: float, digits: int) -> str:
    """`value` with `digits` decimals, written with a decimal comma in Portuguese.

    For messages and the HTML report only: CSV, Raven and Audacity files keep the decimal point
    that the programs reading them expect, whatever the language.
    """
    text = f"{value:.{digits}f}"
    return text.replace(".", ",") if _language == "pt-BR" else text


def _translate_argparse(translation: gettext.NullTranslations) -> None:
    # argparse looks its own words ("usage: ", "options", "show this help message and exit", its
    # error messages) up through module-level gettext functions bound at import, in the default
    # domain and the process locale. Rebinding them sends those words through our catalog, which
    # carries their Portuguese, so `--lang pt-BR --help` is Portuguese throughout.
    argparse._ = translation.gettext
    argparse.ngettext = translation.ngettext


def common_name(taxon: Taxon) -> str:
    """Look up the taxon's common name in the active language; fall back to the taxonomy's (English) one."""
    if _language == "pt-BR":
        return _portuguese_names().get(taxon.scientific_name, taxon.common_name)
    return taxon.common_name


@functools.cache
def _portuguese_names() -> dict[str, str]:
    with open(COMMON_NAMES_PT_BR, newline="", encoding="utf-8") as handle:
        return {row["scientific_name"]: row["common_name_pt_br"] for row in csv.DictReader(handle)}
