"""Keep credentials out of logs and error messages."""

from __future__ import annotations

import re

__all__ = ["redact_uri"]

_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:@/]*)(?::[^@/]*)?@", re.IGNORECASE)


def redact_uri(uri: str) -> str:
    """``mongodb://bob:s3cret@host/db`` -> ``mongodb://bob:***@host/db``."""
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:***@", uri)
