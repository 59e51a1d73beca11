"""Real peers for the tests (HACKING.md "Layout"): Orthanc, DCMTK, hostile servers, TLS.

Synthetic data and the exposed pynetdicom PACS live in :mod:`pacsradar.lab` (shared with
``pacsradar demo``); everything here needs Debian packages or is test-only.
"""

#: Every PHI-bearing attribute of the fixture data carries this prefix: grep outputs for it.
CANARY = "CANARYZQX"
#: Seed of the shared ``lab_datasets`` fixture.
LAB_SEED = 20240229
