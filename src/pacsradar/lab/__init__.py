"""A deliberately exposed, entirely synthetic DICOM lab (used by tests and ``pacsradar demo``).

Nothing here touches real patient data: :mod:`pacsradar.lab.synthetic` invents every value,
and :class:`pacsradar.lab.pacs.ExposedPacs` answers queries but never sends or stores images.
"""

from __future__ import annotations

from pacsradar.lab.synthetic import (
    LabSummary,
    make_studies,
    summarise,
    to_part10_bytes,
    write_part10,
)

__all__ = ["LabSummary", "make_studies", "summarise", "to_part10_bytes", "write_part10"]
