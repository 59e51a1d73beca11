"""The one registry: every family, every unit, every check id, and the intrusive flag."""

from __future__ import annotations

import ast
import importlib
import inspect

from pacsradar.checks import Check, Unit
from pacsradar.cli.scanopts import ONLY_CHOICES
from pacsradar.config import ScanOptions
from pacsradar.families import FAMILIES, SCAN_FAMILIES
from pacsradar.registry import MODULES_BY_FAMILY, all_specs, catalogue, family_of, units
from pacsradar.scan import OPTIONAL_AUDITORS


def test_every_family_has_units_and_every_unit_a_family() -> None:
    # Given the family table and the registry
    # Then they name the same families, and each family has at least one unit
    assert set(MODULES_BY_FAMILY) == {f.name for f in FAMILIES}
    for family in FAMILIES:
        assert units(family.name), family.name
        assert all(isinstance(u, Check | Unit) for u in units(family.name))


def test_only_choices_defaults_and_auditors_come_from_the_family_table() -> None:
    # Given the family table / Then --only, the default selection and the auditors agree with it
    assert ONLY_CHOICES == SCAN_FAMILIES == ("dicom", "web", "share")
    assert ScanOptions().only == frozenset(SCAN_FAMILIES)
    assert set(OPTIONAL_AUDITORS) == {"web", "share"}


def test_catalogue_lists_each_check_id_once_with_its_families() -> None:
    # Given the catalogue behind `pacsradar checks`
    listed = catalogue()
    ids = [c.id for c in listed]
    # Then each id appears once, and it is the same set as all_specs()
    assert len(ids) == len(set(ids)) and set(ids) == set(all_specs())
    by_id = {c.id: c for c in listed}
    # And shared specs list every family that can report them
    assert by_id["TLS-WEAK"].families == ("dicom", "web")
    assert by_id["FILE-PREAMBLE-EXECUTABLE"].families == ("share", "files")
    assert by_id["SHARE-ANON-DICOM"].units == ("share.ftp", "share.smb", "share.http")
    assert family_of("FILE-PHI") == "files" and family_of("NO-SUCH-ID") is None
    # And every entry carries what the listing shows
    for c in listed:
        assert c.severity and c.title and c.references and c.intrusive in ("no", "opt-in", "yes")


def test_the_c_move_probe_is_declared_opt_in() -> None:
    # Given DICOM-RETRIEVE-OPEN, whose C-MOVE probe runs only with --intrusive
    entry = next(c for c in catalogue() if c.id == "DICOM-RETRIEVE-OPEN")
    # Then the listing says so, and what the step sends
    assert entry.intrusive == "opt-in"
    assert entry.intrusive_step is not None and "C-MOVE" in entry.intrusive_step


def _reads_intrusive_option(module_name: str) -> bool:
    tree = ast.parse(inspect.getsource(importlib.import_module(module_name)))
    return any(
        isinstance(node, ast.Attribute)
        and node.attr == "intrusive"
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "options"
        for node in ast.walk(tree)
    )


def test_a_check_that_reads_the_intrusive_option_declares_it() -> None:
    # Given every check module in the registry
    readers = []
    for modules in MODULES_BY_FAMILY.values():
        for ref in modules:
            module_name, _, attribute = ref.partition(":")
            if not _reads_intrusive_option(module_name):
                continue
            readers.append(module_name)
            # When it branches on options.intrusive
            value = getattr(importlib.import_module(module_name), attribute or "CHECK")
            declared = value if isinstance(value, tuple) else (value,)
            # Then its unit is marked intrusive or names its opt-in step
            assert any(u.intrusive or u.intrusive_step for u in declared), module_name
    assert "pacsradar.dicom.checks.retrieve" in readers  # the scan sees the one that does
