"""Evidence as sentences and small tables (report/evidence.py): no raw JSON, CVE lists folded."""

from __future__ import annotations

from pacsradar.models import EvidenceValue
from pacsradar.report.evidence import fold_list, view
from pacsradar.vulns import cve_evidence, matching


def _cve(product: str, version: str) -> dict[str, EvidenceValue]:
    return cve_evidence(product, version, matching(product, version))


def test_a_cve_list_folds_into_one_sentence_with_sources_once() -> None:
    # Given the DICOM-KNOWN-CVE evidence of Orthanc 1.12.3 (9 CVEs, one advisory, no backport)
    ev = _cve("Orthanc", "1.12.3")
    # When viewed
    v = view(ev)
    # Then one sentence says how many, the fixed release and the newest
    assert v.sentences == ("Orthanc 1.12.3: 9 CVEs, fixed in 1.12.11, newest CVE-2026-5445",)
    # And the table has one row per CVE, newest first, without an empty backport column
    (table,) = v.tables
    assert table.headers == ("CVE", "Fixed", "Confidence")
    assert len(table.rows) == 9 and table.rows[0][0] == "CVE-2026-5445"
    # And the source URL repeated nine times is listed once
    assert len(v.sources) == len(set(ev["sources"])) == 1  # type: ignore[arg-type]
    # And the full evidence carries no JSON and no empty backport list
    text = " ".join(f"{k} {t}" for k, t in v.full)
    assert '["' not in text and "backported_by" not in text


def test_cves_without_a_fixed_release_and_backports_are_said() -> None:
    v = view(_cve("DCMTK", "3.6.7"))
    sentence = v.sentences[0]
    assert sentence.startswith("DCMTK 3.6.7: 8 CVEs, fixed in 3.6.9, 6 with no fixed release listed")
    assert "with a distribution backport" in sentence
    assert v.tables[0].headers[-1] == "Backport"


def test_exposure_counts_read_as_a_sentence_and_hashes_as_a_count() -> None:
    v = view(
        {
            "patients": 1,
            "studies": 340,
            "images": 51234,
            "study_years": [2019, 2024],
            "truncated": True,
            "patient_hashes": ["a" * 64, "b" * 64, "a" * 64],
            "keywords": ["PatientName", "PatientID"],
        }
    )
    assert (
        v.sentences[0]
        == "At least 1 patient, 340 studies, 51,234 images (studies 2019-2024) (stopped at --max-records)"
    )
    assert v.sentences[1] == "keywords: PatientName, PatientID; 2 keyed patient hashes (no values)"


def test_long_lists_are_folded() -> None:
    assert fold_list([str(i) for i in range(10)], shown=3) == "0, 1, 2 and 7 more"
    assert fold_list(["", "x", "x", None]) == "x"
