"""Honeypot and deception detection for DICOM services (issue 15): tells, weights, score."""
