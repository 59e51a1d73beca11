"""The CVE table (data/cves.json): every entry is traceable and bounded, and matching is exact."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from pacsradar.dicom.checks.cve import DICOM_SERVER_SURFACES
from pacsradar.vulns import cve_table, matching

#: The CVEs issue 16 names; each is in the table or explained under "not_included".
NAMED = {
    *(f"CVE-2026-{n}" for n in range(5437, 5446)),
    "CVE-2023-33466",
    "CVE-2026-50003", "CVE-2026-52868", "CVE-2026-50254", "CVE-2026-35505", "CVE-2026-44628",
    "CVE-2022-2119", "CVE-2022-2120", "CVE-2022-2121",
    "CVE-2024-27628", "CVE-2024-34509", "CVE-2025-25472",
    "CVE-2025-0568", "CVE-2025-53948",
}  # fmt: skip


def _raw() -> dict[str, object]:
    text = resources.files("pacsradar").joinpath("data", "cves.json").read_text(encoding="utf-8")
    loaded = json.loads(text)
    assert isinstance(loaded, dict)
    return loaded


def test_every_entry_has_a_source_url_a_date_and_a_version_bound() -> None:
    # Given the raw table / When every entry is read / Then each is traceable and bounded
    entries = _raw()["entries"]
    assert isinstance(entries, list) and entries
    for e in entries:
        assert e["source_url"].startswith("https://"), e["cve"]
        assert e["source"], e["cve"]
        assert e["retrieved"] and (e["published"] is None or len(e["published"]) >= 7), e["cve"]
        assert e.get("fixed_in") or e.get("affected_up_to"), e["cve"]
    # And the typed loader accepts all of them
    assert len(cve_table()) == len(entries)


def test_every_cve_the_issue_names_is_listed_or_its_absence_explained() -> None:
    # Given the table and its "not_included" notes
    listed = {e.cve for e in cve_table()}
    skipped = set(_raw()["not_included"])  # type: ignore[arg-type]
    # Then nothing the issue names is silently missing
    assert NAMED - listed <= skipped
    assert not (listed & skipped)


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        # Debian 12's DCMTK: the 2026 server-side CVEs; 2024 ones listed with Debian's backport
        ("3.6.7", {"CVE-2024-27628", "CVE-2024-34509", "CVE-2024-28130",
                   "CVE-2026-52868", "CVE-2026-50254", "CVE-2026-35505", "CVE-2026-44628"}),
        # Before 3.6.7: the 2022 SCP path traversal and NULL dereference (CVE-2022-2120 is SCU-only)
        ("3.6.6", {"CVE-2022-2119", "CVE-2022-2121", "CVE-2024-27628", "CVE-2024-34509",
                   "CVE-2024-28130", "CVE-2026-52868", "CVE-2026-50254", "CVE-2026-35505",
                   "CVE-2026-44628"}),
        ("3.7.0", {"CVE-2026-52868", "CVE-2026-50254", "CVE-2026-35505", "CVE-2026-44628"}),
        ("3.7.1", set()),
        ("not a version", set()),
    ],
)  # fmt: skip
def test_dcmtk_server_versions_match_only_server_side_cves(version: str, expected: set[str]) -> None:
    # Given a DCMTK version seen on a DICOM server port
    # When it is matched for the surfaces a DICOM server exposes
    found = {e.cve for e in matching("DCMTK", version, DICOM_SERVER_SURFACES)}
    # Then exactly the server-side CVEs of that range come back (no client-only CVE-2026-50003)
    assert found == expected


def test_debian_backports_are_recorded_so_matches_stay_possible() -> None:
    # Given Debian's dcmtk 3.6.7-9~deb12u2/u3 changelog entries
    by_id = {e.cve: e for e in cve_table()}
    # Then the backported fixes are on the entries
    assert by_id["CVE-2024-27628"].backports[0].package_version == "3.6.7-9~deb12u2"
    assert by_id["CVE-2024-28130"].backports[0].package_version == "3.6.7-9~deb12u3"
    # And the 2026 advisory has none (after Debian's last changelog entry)
    assert by_id["CVE-2026-52868"].backports == ()
