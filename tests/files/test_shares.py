"""Share audits against real vsftpd, Samba and nginx on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from sharelab import Server, ShareTree

from pacsradar.config import ScanOptions
from pacsradar.engine import AuditContext
from pacsradar.files.auditor import ShareAuditor
from pacsradar.files.options import FileAuditOptions
from pacsradar.files.remote import audit_url
from pacsradar.files.shares.ftp import parse_list_line
from pacsradar.files.shares.smb import parse_share_enum
from pacsradar.models import Endpoint, TargetResult
from pacsradar.net import Net

pytestmark = pytest.mark.peers


def _ids(result: TargetResult) -> list[str]:
    return sorted(f.check_id for f in result.findings)


def _dicom_evidence(result: TargetResult) -> dict[str, object]:
    finding = next(f for f in result.findings if f.check_id == "SHARE-ANON-DICOM")
    return dict(finding.evidence)


def _assert_exact(result: TargetResult, tree: ShareTree, *, other_files: int = 0) -> None:
    assert _ids(result) == ["SHARE-ANON-ACCESS", "SHARE-ANON-DICOM"]
    ev = _dicom_evidence(result)
    assert ev["instances"] == tree.dicom.files
    assert ev["patients"] == tree.dicom.patients
    assert ev["studies"] == tree.dicom.studies
    assert ev["bytes"] == tree.dicom.bytes
    assert (ev["year_min"], ev["year_max"]) == tree.dicom.years
    assert ev["modalities"] == ["CT"]
    details = result.attempts[0].details
    assert details["not_dicom"] == tree.text_files + other_files
    assert details["truncated"] is False


def test_anonymous_ftp_dicom_tree_yields_exact_counts(vsftpd: Server, share_tree: ShareTree) -> None:
    # Given vsftpd serving the synthetic tree anonymously
    # When the dicom directory is audited
    result = audit_url(f"ftp://{vsftpd.host}:{vsftpd.port}/dicom", FileAuditOptions(workers=1))
    # Then the exact synthetic counts are reported, with the product recognised
    _assert_exact(result, share_tree)
    assert result.product == "vsftpd"


@pytest.mark.parametrize("scheme", ["ftp", "http"])
def test_archives_on_a_share_are_read_in_place(
    scheme: str, vsftpd: Server, nginx: Server, share_tree: ShareTree
) -> None:
    # Given a share's exports/ holding one study as a ZIP and as a tar.gz
    server = vsftpd if scheme == "ftp" else nginx
    # When the directory is audited
    result = audit_url(f"{scheme}://{server.host}:{server.port}/exports/", FileAuditOptions(workers=1))
    # Then both archives are opened with ranged reads and their members count exactly
    ev = _dicom_evidence(result)
    assert ev["instances"] == ev["archive_instances"] == 2 * share_tree.exports.files
    assert ev["patients"] == share_tree.exports.patients
    assert ev["studies"] == share_tree.exports.studies
    assert (ev["year_min"], ev["year_max"]) == share_tree.exports.years
    details = result.attempts[0].details
    assert details["archives"] == 2
    assert details["files_seen"] == 2
    # And far fewer bytes than the archives hold were fetched for the ZIP (its members' heads)
    assert details["truncated"] is False


def test_anonymous_ftp_without_dicom_yields_only_access(vsftpd: Server) -> None:
    # Given an anonymous FTP directory holding only text files
    # When it is audited
    result = audit_url(f"ftp://{vsftpd.host}:{vsftpd.port}/docs", FileAuditOptions(workers=1))
    # Then only SHARE-ANON-ACCESS is reported, counting both files (one in a subdirectory)
    assert _ids(result) == ["SHARE-ANON-ACCESS"]
    assert result.attempts[0].details["files_seen"] == 2


def test_samba_guest_shares_are_enumerated_and_counted(smbd: Server, share_tree: ShareTree) -> None:
    # Given Samba with two guest shares (one with DICOM, one with documents)
    # When the server is audited without naming a share
    result = audit_url(f"smb://{smbd.host}:{smbd.port}", FileAuditOptions(workers=1))
    # Then both shares are found through srvsvc and the DICOM counts are exact
    details = result.attempts[0].details
    assert details["shares_enumerated"] is True
    assert details["shares_readable"] == 2
    _assert_exact(result, share_tree, other_files=2)  # the docs share's two text files
    assert result.product == "samba"


def test_samba_share_without_dicom_yields_only_access(smbd: Server) -> None:
    # Given the Samba guest share that holds only documents
    # When that share alone is audited
    result = audit_url(f"smb://{smbd.host}:{smbd.port}/docs", FileAuditOptions(workers=1))
    # Then only SHARE-ANON-ACCESS is reported
    assert _ids(result) == ["SHARE-ANON-ACCESS"]
    assert result.attempts[0].details["files_seen"] == 2


def test_nginx_autoindex_yields_exact_counts(nginx: Server, share_tree: ShareTree) -> None:
    # Given nginx with autoindex over the synthetic tree
    # When the listing is audited
    result = audit_url(f"http://{nginx.host}:{nginx.port}/dicom/", FileAuditOptions(workers=1))
    # Then headers are read with Range requests and the counts are exact
    _assert_exact(result, share_tree)
    assert result.product == "nginx"


def test_nginx_listing_without_dicom_yields_only_access(nginx: Server) -> None:
    # Given an autoindex directory without DICOM
    # When it is audited
    result = audit_url(f"http://{nginx.host}:{nginx.port}/docs/", FileAuditOptions(workers=1))
    # Then only SHARE-ANON-ACCESS is reported
    assert _ids(result) == ["SHARE-ANON-ACCESS"]


def test_share_bounds_truncate_and_say_so(vsftpd: Server) -> None:
    # Given a file bound smaller than the tree
    options = FileAuditOptions(workers=1, share_max_files=4)
    # When the tree is audited
    result = audit_url(f"ftp://{vsftpd.host}:{vsftpd.port}/dicom", options)
    # Then the walk stops at the bound and reports the truncation
    details = result.attempts[0].details
    assert details["files_seen"] == 4
    assert details["truncated"] is True
    assert details["truncated_by"] == ["share_max_files"]


def test_share_auditor_runs_in_the_engine_protocol(vsftpd: Server, share_tree: ShareTree) -> None:
    # Given scan options selecting shares and an FTP endpoint on port 21 (mapped to the test server)
    options = ScanOptions(only=frozenset({"share"}))
    auditor = ShareAuditor()
    assert auditor.wants(Endpoint(host="127.0.0.2", port=21), [], options)
    assert not auditor.wants(
        Endpoint(host="127.0.0.2", port=21), [], ScanOptions(only=frozenset({"dicom", "web"}))
    )
    assert not auditor.wants(Endpoint(host="127.0.0.2", port=104), [], options)

    # When the auditor audits the real server (the test port stands in for 21)
    class _Ftp(ShareAuditor):
        async def audit(self, endpoint: Endpoint, ctx: AuditContext) -> TargetResult:
            from pacsradar.files.auditor import file_options
            from pacsradar.files.remote import audit_ftp

            return await asyncio.to_thread(
                audit_ftp, endpoint.host, endpoint.port, file_options(ctx.options), "/dicom"
            )

    ctx = AuditContext(options=options, net=Net(options.limits))
    result = asyncio.run(_Ftp().audit(Endpoint(host=vsftpd.host, port=vsftpd.port), ctx))
    # Then it returns a TargetResult with the share findings
    _assert_exact(result, share_tree)


def test_closed_ftp_port_is_an_error_attempt_not_safe(closed_ports: Callable[..., int]) -> None:
    # Given nothing listening
    port = closed_ports("127.0.0.4")
    # When it is audited
    result = audit_url(f"ftp://127.0.0.4:{port}/", FileAuditOptions(workers=1, timeout=2))
    # Then it is unreachable with an error attempt, and no finding
    assert result.reachable is False
    assert result.attempts[0].status == "error"
    assert result.findings == ()


def test_list_line_parser_rejects_hostile_names() -> None:
    # Given LIST lines with traversal and odd entries
    lines = [
        "-rw-r--r--    1 0        0            3532 Nov 22 21:00 IM 0001",
        "drwxr-xr-x    2 0        0            4096 Nov 22 21:00 ..",
        "lrwxrwxrwx    1 0        0               4 Nov 22 21:00 link -> /etc",
        "garbage",
    ]
    # When they are parsed
    parsed = [parse_list_line(line) for line in lines]
    # Then names keep spaces, '..' and garbage are dropped, links are links
    assert parsed == [("IM 0001", "file", 3532), None, ("link", "link", 4), None]


def test_share_enum_parser_is_bounded() -> None:
    # Given truncated and empty NetrShareEnum stubs
    # When parsed / Then they yield nothing or a ScanError, never a crash
    from pacsradar.files.shares.base import ShareError

    assert parse_share_enum(b"\x01\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00") == []
    with pytest.raises(ShareError):
        parse_share_enum(b"\x01\x00\x00\x00\x01\x00\x00\x00\x04\x00\x02\x00\x05\x00\x00\x00")
