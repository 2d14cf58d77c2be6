"""Keep credentials out of logs, errors and files.

Two tools, used together wherever a URI or a driver's error text can reach a person or a file:

* ``redact_uri(uri)`` is what we show of a URI: scheme, user, hosts, database and the values of
  options known to be harmless; the password and every other option value become ``***``.
* ``Scrubber`` knows the secrets of one URI (the password and secret-bearing option values, in
  every spelling: as written, percent-decoded, re-encoded, ``repr``-escaped) and removes them from
  any text, such as a driver's exception message. ``ScrubbingFormatter`` applies it to every log
  line the handlers it is set on write, tracebacks included.

Strategy: a password is not always well formed. ``mongodb://u:se/cret@h`` (unescaped ``/``),
``u:sec@ret@h`` (unescaped ``@``) and ``user:secret@h`` (no scheme) all reach us, and the driver's
own parser reads them differently (``se`` as a port, ``cret@h`` as a database). So the user
information is taken, conservatively, to run up to the *last* ``@``: nothing before it is shown
but the user name. When that ``@`` could be inside the query (an unescaped ``?`` or ``#`` before
it), nothing after the scheme is shown at all. A URI whose user information needs escaping is
refused before the driver parses it (``uri_problem``), so no driver message quotes a fragment of it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus, unquote, unquote_plus

__all__ = ["redact_uri", "uri_problem", "secrets_of", "Scrubber", "ScrubbingFormatter", "MASK"]

#: What a secret is replaced with.
MASK = "***"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
#: A user name we show; anything else (a fragment of a mangled password, say) is masked.
_PLAIN_USER = re.compile(r"[A-Za-z0-9._~%+=,-]*")
#: Options whose values are shown: booleans, numbers and enumerations, never credentials or file contents.
_SHOWN_OPTIONS = frozenset(name.lower() for name in (
    "appName", "authMechanism", "authSource", "compressors", "connectTimeoutMS", "directConnection",
    "heartbeatFrequencyMS", "journal", "loadBalanced", "localThresholdMS", "maxConnecting", "maxIdleTimeMS",
    "maxPoolSize", "maxStalenessSeconds", "minPoolSize", "readConcernLevel", "readPreference", "replicaSet",
    "retryReads", "retryWrites", "serverSelectionTimeoutMS", "socketTimeoutMS", "srvMaxHosts",
    "srvServiceName", "ssl", "timeoutMS", "tls", "tlsAllowInvalidCertificates", "tlsAllowInvalidHostnames",
    "tlsInsecure", "uuidRepresentation", "w", "waitQueueTimeoutMS", "wTimeoutMS", "zlibCompressionLevel",
))
_SHOWN_VALUE = re.compile(r"[A-Za-z0-9_.:+-]*")
_OPTION_NAME = re.compile(r"[A-Za-z0-9_]+")
#: Characters that must be percent-encoded inside the user name or password of a URI.
_MUST_ESCAPE = "/?#@[]"


def _split(uri: str) -> tuple[str, str | None, str]:
    """``(scheme, userinfo or None, rest)``; the userinfo runs to the last ``@``."""
    match = _SCHEME.match(uri)
    scheme = match.group(0) if match else ""
    body = uri[len(scheme):]
    userinfo, at, rest = body.rpartition("@")
    return (scheme, userinfo, rest) if at else (scheme, None, body)


def _show_query(query: str) -> str:
    shown = []
    for pair in re.split(r"[&;]", query):
        name, eq, value = pair.partition("=")
        if not _OPTION_NAME.fullmatch(name):
            shown.append(MASK)
        elif eq and not (name.lower() in _SHOWN_OPTIONS and _SHOWN_VALUE.fullmatch(value)):
            shown.append(f"{name}={MASK}")
        else:
            shown.append(pair)
    return "&".join(shown)


def redact_uri(uri: str) -> str:
    """What may be shown of ``uri``: ``mongodb://bob:s3cret@host/db?tlsCertificateKeyFilePassword=x``
    -> ``mongodb://bob:***@host/db?tlsCertificateKeyFilePassword=***``."""
    scheme, userinfo, rest = _split(uri)
    if userinfo is not None and any(c in userinfo for c in "?#"):
        return f"{scheme}{MASK}"  # the last '@' may be inside the query: which part is which is unknowable
    shown_user = ""
    if userinfo is not None:
        user, colon, _ = userinfo.partition(":")
        shown_user = (user if _PLAIN_USER.fullmatch(user) else MASK) + (f":{MASK}" if colon else "") + "@"
    rest, hash_, _ = rest.partition("#")
    location, question, query = rest.partition("?")
    return f"{scheme}{shown_user}{location}{question}{_show_query(query) if question else ''}" + (
        f"#{MASK}" if hash_ else "")


def uri_problem(uri: str) -> str | None:
    """Why ``uri`` cannot be a MongoDB URI that is safe to hand to the driver, or ``None``.

    Checked before the driver sees it: the driver's own messages about a mangled password quote
    pieces of it (``Port contains non-digit characters`` for ``u:se/cret@h``)."""
    scheme, userinfo, _ = _split(uri)
    if scheme.lower() not in ("mongodb://", "mongodb+srv://"):
        return "it must start with mongodb:// or mongodb+srv://"
    if userinfo is None:
        return None
    _, _, password = userinfo.partition(":")
    if any(c in userinfo for c in _MUST_ESCAPE) or ":" in password or re.search(r"%(?![0-9A-Fa-f]{2})", userinfo):
        return ("the user name or password (everything before the last @) contains characters that must be "
                "percent-encoded (/ ? # @ : [ ] %): write them with urllib.parse.quote_plus")
    return None


def _secret_options(query: str) -> Iterable[str]:
    # ``;`` separates options for some drivers and not for others: a value may run past it.
    pairs = set(re.split(r"[&;]", query)) | set(query.split("&"))
    for pair in sorted(pairs):
        name, eq, value = pair.partition("=")
        if not eq or (name.lower() in _SHOWN_OPTIONS and _SHOWN_VALUE.fullmatch(value)):
            continue
        yield value
        # authMechanismProperties=AWS_SESSION_TOKEN:tok,SERVICE_NAME:x -- drivers echo the parts
        for decoded in {value, unquote(value), unquote_plus(value)}:
            for part in decoded.split(","):
                yield part.partition(":")[2]


def secrets_of(uri: str) -> list[str]:
    """The secret substrings of ``uri`` (password, secret option values), raw as written, under every
    reading of an ambiguous URI: the user information may end at any ``@`` (ours takes the last, the
    driver's the last before the first ``/`` or ``?``), and the options may start at any ``?``."""
    scheme = _split(uri)[0]
    bodies = [uri[len(scheme):]]
    if scheme.lower() not in ("mongodb://", "mongodb+srv://"):
        bodies.append(uri)  # ``bob://0000@h`` may be ``user:password@host`` with no scheme: bob / //0000
    found: list[str] = []
    for body in bodies:
        for at in (i for i, c in enumerate(body) if c == "@"):
            userinfo = body[:at]
            found.append(userinfo.partition(":")[2])
            if any(c in userinfo for c in "/?#"):  # which part is which is unclear: all of it may be secret
                found.append(userinfo)
        for question in (i for i, c in enumerate(body) if c == "?"):
            found += _secret_options(body[question + 1:])
    return [s for s in found if s]


def _spellings(secret: str) -> set[str]:
    forms = {secret}
    for _ in range(2):  # as written, decoded, decoded again (a password that itself looks encoded)
        forms |= {decode(f) for f in forms for decode in (unquote, unquote_plus)}
    for plain in list(forms):
        forms |= {quote(plain, safe=""), quote_plus(plain), repr(plain)[1:-1]}
    return {f for f in forms if f}


class Scrubber:
    """Replaces given secrets, in every spelling, by ``***`` in any text. Empty: changes nothing."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        forms: set[str] = set()
        for secret in secrets:
            forms |= _spellings(secret)
        # Longest first, so a secret that contains another is masked whole.
        self._pattern = re.compile("|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))) \
            if forms else None

    @classmethod
    def for_uri(cls, uri: str | None) -> Scrubber:
        return cls(secrets_of(uri) if uri else ())

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __call__(self, text: str) -> str:
        return self._pattern.sub(MASK, text) if self._pattern is not None else text


class ScrubbingFormatter(logging.Formatter):
    """A ``logging.Formatter`` whose output (message, arguments, traceback) never holds a secret."""

    def __init__(self, fmt: str, scrub: Scrubber) -> None:
        super().__init__(fmt)
        self.scrub = scrub

    def format(self, record: logging.LogRecord) -> str:
        return self.scrub(super().format(record))
