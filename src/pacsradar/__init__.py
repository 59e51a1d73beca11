"""pacsradar: find the medical images an organisation leaks before someone else does.

The package is a library first: the CLI in :mod:`pacsradar.cli` only parses arguments,
calls into the library and renders results.
"""

from __future__ import annotations

__version__ = "0.1.0"

#: Our own DICOM Implementation Class UID (PS3.7 D.3.3.2), a UUID-derived UID under the
#: 2.25 root (PS3.5 B.2) so that pacsradar identifies itself honestly on every association.
IMPLEMENTATION_CLASS_UID = "2.25.197522492040998095040330258051705028554"
#: Implementation Version Name (PS3.7 D.3.3.2.2): at most 16 characters.
IMPLEMENTATION_VERSION_NAME = "PACSRADAR_" + __version__.replace(".", "")

__all__ = ["IMPLEMENTATION_CLASS_UID", "IMPLEMENTATION_VERSION_NAME", "__version__"]
