"""Check specs of the file and share audit, and how findings are built from a :class:`Tally`."""

from __future__ import annotations

from pacsradar.checks import (
    GDPR_ART32,
    HIPAA_ACCESS,
    PS315_ANNEX_E,
    CheckSpec,
    cwe,
)
from pacsradar.files.tally import Tally
from pacsradar.models import Endpoint, Evidence, Finding, Holdings, Reference, Severity

CVE_2019_11687 = Reference(
    title="CVE-2019-11687: DICOM Part 10 preamble allows executable polyglot files",
    url="https://nvd.nist.gov/vuln/detail/CVE-2019-11687",
)
PS310_PREAMBLE = Reference(
    title="DICOM PS3.10 §7.1 and §7.5: File preamble and dual-format files",
    url="https://dicom.nema.org/medical/dicom/current/output/html/part10.html#sect_7.1",
)
PS315_TABLE_E11 = Reference(
    title="DICOM PS3.15 Annex E Table E.1-1: Application Level Confidentiality Profile Attributes",
    url="https://dicom.nema.org/medical/dicom/current/output/html/part15.html#table_E.1-1",
)

FILE_PHI = CheckSpec(
    id="FILE-PHI",
    title="DICOM files carry identifying attributes (PS3.15 Annex E)",
    severity=Severity.HIGH,
    category="files",
    description=(
        "DICOM files under the audited path hold attributes that the PS3.15 Annex E Basic "
        "Profile removes or replaces: each present one is a line of patient data readable by "
        "anyone who can read the files."
    ),
    remediation=(
        "Restrict file-system access to the images to the service accounts that need them; "
        "de-identify copies kept for research or teaching with a PS3.15 Annex E profile "
        "(including burned-in annotations and private tags) and delete stray exports."
    ),
    references=(PS315_ANNEX_E, PS315_TABLE_E11, HIPAA_ACCESS, GDPR_ART32),
    cwe="CWE-359",
)

FILE_PREAMBLE_EXECUTABLE = CheckSpec(
    id="FILE-PREAMBLE-EXECUTABLE",
    title="DICOM file preamble holds an executable header (CVE-2019-11687)",
    severity=Severity.HIGH,
    category="files",
    description=(
        "The 128-byte Part 10 preamble of these files starts an executable (PE, ELF, Mach-O or "
        "script): the file is both a valid image and a program, which can carry malware past "
        "filters that only look at DICOM content."
    ),
    remediation=(
        "Quarantine the files and scan them for malware; configure archives and gateways to "
        "zero or validate the preamble on import (only all-zero or TIFF preambles are expected)."
    ),
    references=(CVE_2019_11687, PS310_PREAMBLE, cwe(434)),
    cwe="CWE-434",
)

FILE_PREAMBLE_UNKNOWN = CheckSpec(
    id="FILE-PREAMBLE-UNKNOWN",
    title="DICOM file preamble is non-zero and of unknown kind",
    severity=Severity.INFO,
    category="files",
    description=(
        "The preamble is neither zero, TIFF nor a known executable format. PS3.10 allows "
        "application data there; it is listed so it can be reviewed."
    ),
    remediation="Check which application wrote these preambles; zero them if nothing needs them.",
    references=(PS310_PREAMBLE, CVE_2019_11687),
)

SHARE_ANON_ACCESS = CheckSpec(
    id="SHARE-ANON-ACCESS",
    title="File share readable without credentials",
    severity=Severity.MEDIUM,
    category="shares",
    description=(
        "The share accepts an anonymous (FTP), guest or null (SMB) session, or lists its files "
        "over HTTP, without any credential."
    ),
    remediation=(
        "Disable anonymous FTP, SMB guest and null sessions ('map to guest = never', "
        "'restrict anonymous = 2') and web directory listings ('autoindex off'); require "
        "authenticated, encrypted access."
    ),
    product_remediation={
        "vsftpd": "In vsftpd.conf set anonymous_enable=NO.",
        "samba": "In smb.conf set 'map to guest = never' and remove 'guest ok = yes'.",
        "nginx": "Remove 'autoindex on' from the location serving the files.",
    },
    references=(HIPAA_ACCESS, GDPR_ART32, cwe(284)),
    cwe="CWE-284",
)

SHARE_ANON_DICOM = CheckSpec(
    id="SHARE-ANON-DICOM",
    title="Medical images on a share readable without credentials",
    severity=Severity.CRITICAL,
    category="shares",
    description=(
        "An anonymous, guest or listing share holds DICOM files: anyone on the network can copy "
        "the images and the patient data in their headers (counted per PS3.15 Annex E)."
    ),
    remediation=(
        "Take the share offline or require authentication now; move the images to a PACS with "
        "access control; find out how long the share was exposed and assess breach notification "
        "duties (HIPAA §164.404, GDPR Art. 33)."
    ),
    references=(PS315_ANNEX_E, PS315_TABLE_E11, HIPAA_ACCESS, GDPR_ART32, cwe(306)),
    cwe="CWE-306",
)

SPECS: tuple[CheckSpec, ...] = (
    FILE_PHI,
    FILE_PREAMBLE_EXECUTABLE,
    FILE_PREAMBLE_UNKNOWN,
    SHARE_ANON_ACCESS,
    SHARE_ANON_DICOM,
)


def preamble_findings(endpoint: Endpoint, tally: Tally) -> list[Finding]:
    found: list[Finding] = []
    executable = sum(tally.preambles[k] for k in ("pe", "elf", "macho", "script"))
    if executable:
        evidence: Evidence = {
            "files": executable,
            "pe": tally.preambles["pe"],
            "elf": tally.preambles["elf"],
            "macho": tally.preambles["macho"],
            "script": tally.preambles["script"],
            "kinds": [kind for kind, _ in tally.executable],
        }
        evidence["paths" if tally.show_paths else "path_hashes"] = [token for _, token in tally.executable]
        found.append(
            FILE_PREAMBLE_EXECUTABLE.finding(
                endpoint,
                summary=f"{executable} DICOM file(s) with an executable preamble",
                evidence=evidence,
            )
        )
    unknown = tally.preambles["unknown"]
    if unknown:
        found.append(
            FILE_PREAMBLE_UNKNOWN.finding(
                endpoint,
                summary=f"{unknown} DICOM file(s) with a non-zero preamble of unknown kind",
                evidence={
                    "files": unknown,
                    ("paths" if tally.show_paths else "path_hashes"): list(tally.unknown_preamble),
                },
            )
        )
    return found


def phi_summary(tally: Tally) -> str:
    years = f", studies {tally.year_min}-{tally.year_max}" if tally.year_min is not None else ""
    inside = f" ({tally.archive_dicom} inside archives)" if tally.archive_dicom else ""
    return (
        f"{tally.dicom_files} DICOM file(s){inside}, {len(tally.patients)} patient(s), "
        f"{len(tally.studies)} study(ies){years}; {tally.phi_files} file(s) with PHI, "
        f"up to {tally.phi_lines_max} identifying attribute(s) per file"
    )


def local_findings(endpoint: Endpoint, tally: Tally) -> tuple[Finding, ...]:
    found: list[Finding] = []
    if tally.phi_files:
        # The keyed hashes let the JSON's exposure block count the same distinct patients and
        # studies as the summary (report.exposure); never values, never written out.
        holdings = Holdings(patients=tuple(sorted(tally.patients)), studies=tuple(sorted(tally.studies)))
        found.append(
            FILE_PHI.finding(
                endpoint, summary=phi_summary(tally), evidence=tally.phi_evidence(), holdings=holdings
            )
        )
    found.extend(preamble_findings(endpoint, tally))
    return tuple(found)


def share_findings(
    endpoint: Endpoint, tally: Tally, access: Evidence, *, product: str | None
) -> tuple[Finding, ...]:
    found = [
        SHARE_ANON_ACCESS.finding(
            endpoint,
            summary=f"anonymous {endpoint.protocol} access: {tally.files_seen} file(s) listed",
            evidence=access,
            product=product,
        )
    ]
    if tally.dicom_files:
        found.append(
            SHARE_ANON_DICOM.finding(
                endpoint,
                summary=phi_summary(tally),
                evidence={**access, **tally.phi_evidence()},
                product=product,
            )
        )
    found.extend(preamble_findings(endpoint, tally))
    return tuple(found)


__all__ = [
    "FILE_PHI",
    "FILE_PREAMBLE_EXECUTABLE",
    "FILE_PREAMBLE_UNKNOWN",
    "SHARE_ANON_ACCESS",
    "SHARE_ANON_DICOM",
    "SPECS",
    "local_findings",
    "share_findings",
]
