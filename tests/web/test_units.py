"""Unit tests of the web building blocks: data tables, CVE logic, decoding bounds, parsing."""

from __future__ import annotations

import gzip
import json
import logging
import zlib
from importlib import resources

import httpx
import pytest

from pacsradar.errors import SizeLimitError
from pacsradar.registry import all_specs
from pacsradar.web import client, data
from pacsradar.web.client import HttpReply, _decoder_for, quiet_transport_loggers
from pacsradar.web.cve import matching
from pacsradar.web.html import parse_page
from pacsradar.web.qido import _looks_like_qido


def _raw(name: str) -> dict[str, object]:
    text = resources.files("pacsradar").joinpath("data", name).read_text(encoding="utf-8")
    loaded = json.loads(text)
    assert isinstance(loaded, dict)
    return loaded


def test_data_tables_load_and_every_entry_names_its_source() -> None:
    # Given the three web data tables
    # When they are loaded through their typed views
    fingerprints = data.fingerprint_table()
    credentials = data.credential_table()
    cves = data.cve_table()
    # Then each entry carries a provenance
    assert all(p.source for p in fingerprints.probes)
    assert all(s.source for s in fingerprints.signatures)
    assert all(c.source for cs in credentials.products.values() for c in cs)
    assert all(e.source for e in cves)
    # And the credential policy is "a few attempts", never a brute force
    assert 1 <= credentials.max_attempts_per_host <= 5
    assert all(len(cs) <= 3 for cs in credentials.products.values())
    # And every product named in the issue has evidence
    products = {s.product for s in fingerprints.signatures}
    assert {
        "Orthanc", "Orthanc Explorer 2", "Stone Web Viewer", "OHIF Viewer", "dcm4chee-arc-light",
        "dcm4chee 2.x", "Dicoogle", "Horos Web Portal", "MedDream", "Kheops", "XNAT",
        "WildFly console",
    } <= products  # fmt: skip
    assert _raw("cves.json")["schema"] == 2


#: CERT/CC, April 2026: Orthanc up to 1.12.10, fixed in 1.12.11 (data/cves.json).
ORTHANC_2026 = {f"CVE-2026-{n}" for n in range(5437, 5446)}


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("1.5.7", {"CVE-2025-0896", "CVE-2023-33466", *ORTHANC_2026}),
        ("1.10.1", {"CVE-2023-33466", *ORTHANC_2026}),
        ("1.12.0", ORTHANC_2026),
        ("1.12.10", ORTHANC_2026),
        ("1.12.11", set()),
        ("garbage", set()),
    ],
)
def test_cve_table_matches_orthanc_versions(version: str, expected: set[str]) -> None:
    # Given an Orthanc version string / When matched against the CVE table / Then:
    assert {e.cve for e in matching("Orthanc", version)} == expected


def test_debian_backport_is_recorded_for_cve_2023_33466() -> None:
    # Given the CVE table / When CVE-2023-33466 is looked up
    (entry,) = [e for e in data.cve_table() if e.cve == "CVE-2023-33466"]
    # Then Debian's backport is known, so a match can only be "possible"
    assert entry.backports[0].package_version.startswith("1.10.1")


def test_gzip_bomb_is_stopped_at_the_decoded_bound() -> None:
    # Given 64 MiB of zeros gzip-compressed (about 64 KiB on the wire)
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))
    decoder = _decoder_for("gzip")
    # When it is decoded with 1 MiB of room
    # Then the decoder refuses instead of inflating it
    with pytest.raises(SizeLimitError):
        decoder.feed(bomb, 1024 * 1024 + 1)


def test_small_compressed_bodies_decode() -> None:
    # Given zlib-wrapped and raw deflate bodies / When decoded / Then both come back
    assert _decoder_for("deflate").feed(zlib.compress(b"hello"), 100) == b"hello"
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    body = raw.compress(b"hello") + raw.flush()
    assert _decoder_for("deflate").feed(body, 100) == b"hello"


def test_login_form_and_title_are_parsed() -> None:
    # Given a login page
    html = (
        b"<html><head><title> Portal </title></head><form action='/auth' method='POST'>"
        b"<input type=hidden name=csrf value=x><input name=user><input type=password name=pw>"
        b"</form></html>"
    )
    # When parsed
    page = parse_page(html)
    # Then the title and the form's field names are found
    assert page.title == "Portal"
    assert page.login_form is not None
    assert (page.login_form.user_field, page.login_form.password_field) == ("user", "pw")
    assert page.login_form.hidden == {"csrf": "x"}


def test_qido_shape_check_rejects_html_and_accepts_dicom_json() -> None:
    # Given DICOM JSON and a SPA's catch-all page / Then only the first is QIDO-RS
    assert _looks_like_qido([{"0020000D": {"vr": "UI", "Value": ["1.2.3"]}}])
    assert not _looks_like_qido({"html": "<div id=root>"})
    assert not _looks_like_qido([{"name": "x"}])


def test_reply_json_errors_never_quote_the_body() -> None:
    # Given a body that is not JSON and contains a patient-like value
    reply = HttpReply(200, httpx.Headers(), b"DOE^JANE not json", "http", "/")
    # When parsed / Then the error message is ours
    with pytest.raises(Exception, match="not valid JSON") as info:
        reply.json()
    assert "DOE" not in str(info.value)


def test_transport_loggers_drop_debug_records(caplog: pytest.LogCaptureFixture) -> None:
    # Given the HTTP stack's loggers quietened (URLs and headers may carry identifiers)
    quiet_transport_loggers()
    caplog.set_level(logging.DEBUG)
    # When httpcore logs at DEBUG
    logging.getLogger("httpcore.http11").debug("receive_response_headers %s", "secret")
    # Then nothing is recorded
    assert "secret" not in caplog.text


def test_registry_modules_define_unique_specs() -> None:
    # Given the web/TLS checks listed in the registry
    # When the registry collects their specs
    specs = all_specs()
    # Then every id from the issue is there, each with remediation and references
    assert {
        "WEB-UNAUTH-PHI", "DICOMWEB-UNAUTH-QIDO", "DICOMWEB-UNAUTH-WADO", "DICOMWEB-STOW-OPEN",
        "WEB-BLANK-CREDENTIALS", "WEB-DEFAULT-CREDENTIALS", "WEB-PLAINTEXT", "WEB-CORS-WILDCARD",
        "WEB-WEBDAV-OPEN", "WEB-METRICS-OPEN", "WEB-ORTHANC-INSECURE", "TLS-WEAK",
        "VULN-KNOWN-CVE", "WEB-SERVICE-EXPOSED",
    } <= set(specs)  # fmt: skip
    assert all(s.remediation and s.references for s in specs.values())
    assert "Orthanc" in specs["WEB-UNAUTH-PHI"].remediation_for("Orthanc 1.10.1")


def test_client_module_has_no_import_time_client() -> None:
    # Given the client module / Then it holds no AsyncClient singleton
    assert not any(isinstance(v, httpx.AsyncClient) for v in vars(client).values())
