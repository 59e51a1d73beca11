"""DICOM checks, one module each, run in the order of :data:`pacsradar.registry.DICOM_CHECK_MODULES`."""
