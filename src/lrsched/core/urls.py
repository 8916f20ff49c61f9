"""Credentials in URLs (``postgresql://user:password@host/db``) never reach a log, error, param or file."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@\s]*)@")


def mask_password(text: str) -> str:
    """Every ``scheme://user:password@`` in ``text`` becomes ``scheme://user:***@``."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
