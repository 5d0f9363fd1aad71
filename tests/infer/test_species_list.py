"""Site species lists: tolerant parsing, strict names."""

import pytest

from infer.species_list import SpeciesListError, load_species_list
from infer.taxonomy import Taxonomy
from tests.conftest import MINI

TAXONOMY = Taxonomy.from_csv(MINI / "taxonomy.csv")


def test_list_accepts_bom_crlf_comments_and_spacing(tmp_path):
    path = tmp_path / "site.txt"
    text = "# frogs of site 22\r\n22961\r\n\r\n  leptodactylus   PODICIPINUS  \r\nLysapsus limellum # inline comment\r\n"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    species = load_species_list(path, TAXONOMY)
    assert species.labels == {"22961", "1595929"}


def test_list_accepts_birdnet_lines_and_windows_1252(tmp_path):
    path = tmp_path / "birdnet.txt"
    path.write_bytes("# espécies do sítio\nPitangus sulphuratus_Great Kiskadee\nCaiman yacare\n".encode("cp1252"))
    species = load_species_list(path, TAXONOMY)
    assert species.labels == {TAXONOMY.taxa[[t.scientific_name for t in TAXONOMY.taxa].index(n)].label
                              for n in ("Pitangus sulphuratus", "Caiman yacare")}


def test_mask_follows_taxonomy_order(tmp_path):
    path = tmp_path / "one.txt"
    path.write_text("22961\n")
    mask = load_species_list(path, TAXONOMY).mask(TAXONOMY)
    assert mask.sum() == 1
    assert TAXONOMY.labels[mask.argmax()] == "22961"


def test_unknown_names_are_listed_with_line_numbers(tmp_path):
    path = tmp_path / "typos.txt"
    path.write_text("22961\nPitangus sulfuratus\n\nNot a bird\n")
    with pytest.raises(SpeciesListError) as error:
        load_species_list(path, TAXONOMY)
    message = str(error.value)
    assert "2: Pitangus sulfuratus" in message
    assert "4: Not a bird" in message


def test_empty_or_missing_list_is_an_error(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing yet\n\n")
    with pytest.raises(SpeciesListError, match="names no taxa"):
        load_species_list(empty, TAXONOMY)
    with pytest.raises(SpeciesListError, match="cannot read"):
        load_species_list(tmp_path / "absent.txt", TAXONOMY)
