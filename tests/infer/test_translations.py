"""The Brazilian Portuguese catalog: complete, compiled from its .po, and used by the command."""

import argparse
import gettext
import io
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir, extract_from_file
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from infer import i18n
from infer.cli import main

CATALOG = i18n.LOCALE_DIR / "pt_BR" / "LC_MESSAGES"
KEYWORDS = {"_": None, "ngettext": (1, 2)}
UPDATE_HINT = "run `make translations`, translate the new entries in pantanal.po, and run it again"


@pytest.fixture(autouse=True)
def english_afterwards():
    yield
    i18n.set_language("en")


def source_messages() -> set:
    """Every msgid the field command can show: ours through `_`/`ngettext`, and argparse's own."""
    found = extract_from_dir(str(Path(i18n.__file__).parent), method_map=[("**.py", "python")], keywords=KEYWORDS)
    ours = {message for _file, _line, message, _comments, _context in found}
    theirs = {message for _line, message, _comments, _context in
              extract_from_file("python", argparse.__file__, keywords=KEYWORDS)}
    return ours | theirs


def read_catalog():
    with open(CATALOG / "pantanal.po", "rb") as handle:
        return read_po(handle)


def is_translated(message) -> bool:
    strings = message.string if isinstance(message.string, tuple) else (message.string,)
    return all(strings) and not message.fuzzy


def test_every_field_message_is_translated():
    translated = {m.id for m in read_catalog() if m.id and is_translated(m)}
    missing = sorted(str(m) for m in source_messages() - translated)
    assert missing == [], f"untranslated messages: {UPDATE_HINT}"


def test_translations_keep_their_placeholders():
    problems = [(m.id, [str(e) for e in errors]) for m, errors in read_catalog().check() if errors]
    assert problems == []


def test_compiled_catalog_matches_the_po():
    compiled = io.BytesIO()
    write_mo(compiled, read_catalog())
    compiled.seek(0)
    expected = gettext.GNUTranslations(compiled)
    with open(CATALOG / "pantanal.mo", "rb") as handle:
        committed = gettext.GNUTranslations(handle)
    assert committed._catalog == expected._catalog, f"pantanal.mo is stale: {UPDATE_HINT}"


def test_plural_forms_follow_portuguese():
    i18n.set_language("pt-BR")
    assert i18n.ngettext("expected %s argument", "expected %s arguments", 0) == "esperado %s argumento"
    assert i18n.ngettext("expected %s argument", "expected %s arguments", 2) == "esperados %s argumentos"


def test_help_is_portuguese_throughout(capsys):
    with pytest.raises(SystemExit):
        main(["--lang", "pt-BR", "infer", "--help"])
    text = capsys.readouterr().out
    assert text.startswith("uso: pantanal infer")
    assert "opções:" in text
    assert "pasta de saída" in text


def test_language_follows_the_locale():
    assert i18n.detect_language({"LANG": "pt_BR.UTF-8"}) == "pt-BR"
    assert i18n.detect_language({"LANGUAGE": "en_GB:pt_BR", "LANG": "pt_BR.UTF-8"}) == "en"
    assert i18n.detect_language({}) == "en"


def test_portuguese_names_table_is_sourced():
    import csv

    with open(i18n.COMMON_NAMES_PT_BR, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and all(row["common_name_pt_br"] and row["source"].startswith("http") for row in rows)
    assert len({row["scientific_name"] for row in rows}) == len(rows)


def test_portuguese_messages_use_a_decimal_comma():
    from infer.audio import format_duration

    i18n.set_language("pt-BR")
    assert i18n.decimal(2.54, 1) == "2,5"
    assert format_duration(12.25) == "12,2 s"
    assert "em 3,5 s" in i18n.ngettext(
        "%d file: %d processed, %d skipped (outputs already complete), %d failed, in %s s",
        "%d files: %d processed, %d skipped (outputs already complete), %d failed, in %s s", 2,
    ) % (2, 2, 0, 0, i18n.decimal(3.46, 1))

    i18n.set_language("en")
    assert i18n.decimal(2.54, 1) == "2.5"
    assert format_duration(12.25) == "12.2 s"
