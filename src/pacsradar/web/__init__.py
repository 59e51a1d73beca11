"""Web, DICOMweb and portal checks (issue 3). Entry point: :class:`pacsradar.web.auditor.WebAuditor`.

Import ``pacsradar.web.auditor`` for the auditor; this package module stays import-light so
that the check modules can import each other without cycles.
"""

from __future__ import annotations
