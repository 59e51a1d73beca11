"""Product-specific remediation snippets shared by the DICOM checks (configuration key names are
the products' own; see shared/reference/orthanc_security_keys.csv for Orthanc)."""

from __future__ import annotations

ORTHANC_AE = (
    'Orthanc: set "DicomCheckCalledAet": true, list every legitimate peer in "DicomModalities" '
    'with "DicomCheckModalityHost": true, and set "DicomAlwaysAllowEcho"/"DicomAlwaysAllowFind"/'
    '"DicomAlwaysAllowGet"/"DicomAlwaysAllowMove"/"DicomAlwaysAllowStore" to false.'
)
DCMQRSCP_AE = (
    "dcmqrscp: restrict each AETable entry to named peers (HostTable symbolic names, not ANY) "
    "and keep the called-AE check (do not run with --no-check / -nc)."
)
DCMTK_BASED = f"If this is Orthanc: {ORTHANC_AE} If this is DCMTK's dcmqrscp: {DCMQRSCP_AE}"
DCM4CHEE_AE = (
    "dcm4chee-arc: disable 'Accept Unknown Calling AE Titles' (dcmAcceptUnknownCallingAETitles) on "
    "the archive AE and register peers as network AEs."
)
PYNETDICOM_AE = (
    "pynetdicom: set AE.require_called_aet = True and AE.require_calling_aet to the allowed peers."
)
CONQUEST_AE = "Conquest: list allowed peers in ACRNEMA.MAP and enable the calling-AE check in dicom.ini."

AE_POLICY = {
    "DCMTK-based": DCMTK_BASED,
    "Orthanc": ORTHANC_AE,
    "DCMTK": DCMQRSCP_AE,
    "dcm4che": DCM4CHEE_AE,
    "pynetdicom": PYNETDICOM_AE,
    "Conquest": CONQUEST_AE,
}
