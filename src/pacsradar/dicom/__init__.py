"""DICOM (DIMSE) audit: an asyncio DICOM Upper Layer client and the checks built on it."""
