"""SOP classes offered to an unknown peer to profile what it would do for anyone (PS3.4)."""

from __future__ import annotations

import uuid

from pacsradar.dicom.client import ProposedContext

VERIFICATION = "1.2.840.10008.1.1"
# PS3.4 C.6: Query/Retrieve Information Models
PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
PATIENT_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.1.2"
PATIENT_ROOT_GET = "1.2.840.10008.5.1.4.1.2.1.3"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"
# PS3.4 K.6: Modality Worklist
MWL_FIND = "1.2.840.10008.5.1.4.31"
# PS3.4 CC.3.1: Unified Procedure Step SOP classes whose SCP answers C-FIND (Pull, Watch)
UPS_PULL = "1.2.840.10008.5.1.4.34.6.3"
UPS_WATCH = "1.2.840.10008.5.1.4.34.6.2"
# PS3.4 B.5: a few common Storage SOP classes
STORAGE = {
    "1.2.840.10008.5.1.4.1.1.2": "CT Image Storage",
    "1.2.840.10008.5.1.4.1.1.4": "MR Image Storage",
    "1.2.840.10008.5.1.4.1.1.1": "CR Image Storage",
    "1.2.840.10008.5.1.4.1.1.1.1": "Digital X-Ray Image Storage - For Presentation",
    "1.2.840.10008.5.1.4.1.1.6.1": "Ultrasound Image Storage",
    "1.2.840.10008.5.1.4.1.1.7": "Secondary Capture Image Storage",
}

#: A fresh, unregistered abstract syntax (PS3.5 B.2: a UUID-derived 2.25 UID), new in every
#: process. A real SCP rejects it with result 3, abstract syntax not supported (PS3.8 §9.3.3.2);
#: an accept-everything honeypot accepts it. Proposed last, so the other context ids never move.
CANARY_SYNTAX = f"2.25.{uuid.uuid4().int}"

NAMES = {
    VERIFICATION: "Verification",
    PATIENT_ROOT_FIND: "PatientRoot-FIND",
    PATIENT_ROOT_MOVE: "PatientRoot-MOVE",
    PATIENT_ROOT_GET: "PatientRoot-GET",
    STUDY_ROOT_FIND: "StudyRoot-FIND",
    STUDY_ROOT_MOVE: "StudyRoot-MOVE",
    STUDY_ROOT_GET: "StudyRoot-GET",
    MWL_FIND: "ModalityWorklist-FIND",
    UPS_PULL: "UPS-Pull",
    UPS_WATCH: "UPS-Watch",
    **{uid: name.replace(" Image Storage", "-STORE").replace(" ", "") for uid, name in STORAGE.items()},
    CANARY_SYNTAX: "random-2.25-syntax",
}

FIND_CLASSES = (STUDY_ROOT_FIND, PATIENT_ROOT_FIND)
MOVE_CLASSES = (STUDY_ROOT_MOVE, PATIENT_ROOT_MOVE)
GET_CLASSES = (STUDY_ROOT_GET, PATIENT_ROOT_GET)


def probe_contexts() -> tuple[ProposedContext, ...]:
    """Verification first, then Q/R, MWL, storage, UPS and the canary: one association profiles
    them all (17 contexts; PS3.8 §9.3.2.2 allows 128). UPS came later and is proposed after the
    storage classes, so the context ids the older checks and the honeypot tells saw stay put."""
    uids = [
        VERIFICATION,
        STUDY_ROOT_FIND,
        PATIENT_ROOT_FIND,
        STUDY_ROOT_MOVE,
        PATIENT_ROOT_MOVE,
        STUDY_ROOT_GET,
        PATIENT_ROOT_GET,
        MWL_FIND,
        *STORAGE,
        UPS_PULL,
        UPS_WATCH,
        CANARY_SYNTAX,
    ]
    return tuple(ProposedContext(uid) for uid in uids)
