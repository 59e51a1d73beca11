"""Fixtures of the file-audit tests: real vsftpd, Samba and nginx on loopback (see sharelab.py)."""

from __future__ import annotations

from sharelab import nginx, share_tree, smbd, vsftpd

__all__ = ["nginx", "share_tree", "smbd", "vsftpd"]
