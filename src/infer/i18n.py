"""Field-facing language: English or Brazilian Portuguese, through gettext catalogs.

The language comes from `--lang`, else from the locale (LANGUAGE, LC_ALL, LC_MESSAGES, LANG).
Training and MLOps messages stay in English; only the field command, its help, its summary and
the HTML report are translated.
"""

from __future__ import annotations

import gettext
import os
from pathlib import Path

DOMAIN = "pantanal"
LOCALE_DIR = Path(__file__).parent / "locale"
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
    return language


def current_language() -> str:
    return _language


def _(message: str) -> str:
    """Translate `message` into the active language."""
    return _translation.gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    return _translation.ngettext(singular, plural, count)
