"""`pacsradar scan` finds an open HTTP directory listing of DICOM files (issue: shares in scan)."""

from __future__ import annotations

import asyncio

import pytest
from sharelab import Server, ShareTree

from pacsradar.config import Limits, ScanOptions
from pacsradar.models import Endpoint
from pacsradar.scan import run_scan

pytestmark = pytest.mark.peers


def _scan(server: Server, only: frozenset[str]) -> dict[str, dict[str, object]]:
    options = ScanOptions(
        limits=Limits(connect_timeout=2.0, read_timeout=5.0, target_deadline=60.0),
        only=only,
        dicom_ports=(),
        web_ports=(server.port,),
        share_ports=(),
    )
    endpoint = Endpoint(host=server.host, port=server.port)
    report = asyncio.run(run_scan([endpoint], options, total=1))
    (result,) = report.results
    return {f.check_id: dict(f.evidence) for f in result.findings}


def test_scan_walks_an_autoindex_listing_found_on_a_web_port(nginx: Server, share_tree: ShareTree) -> None:
    # Given nginx with autoindex on at its root, over a tree holding synthetic DICOM studies
    # When a network scan covers its port with the web and share auditors
    found = _scan(nginx, frozenset({"web", "share"}))
    # Then the listing is walked read-only and the DICOM files are counted exactly
    assert "SHARE-ANON-DICOM" in found, sorted(found)
    evidence = found["SHARE-ANON-DICOM"]
    # (dicom/ plus exports/, whose study is there twice: as a ZIP and as a tar.gz)
    assert evidence["instances"] == share_tree.dicom.files + 2 * share_tree.exports.files
    assert evidence["archive_instances"] == 2 * share_tree.exports.files
    assert evidence["patients"] == share_tree.dicom.patients + share_tree.exports.patients
    assert evidence["studies"] == share_tree.dicom.studies + share_tree.exports.studies


def test_without_the_share_auditor_the_listing_is_not_walked(nginx: Server) -> None:
    # Given the same server, When only the web auditor runs
    found = _scan(nginx, frozenset({"web"}))
    # Then no share finding appears (the walk belongs to the share auditor)
    assert not any(check.startswith("SHARE-") for check in found)
