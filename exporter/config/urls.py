"""Upstream URLs: checked once when read, and redacted wherever one is shown.

An endpoint may carry credentials (`http://user:pass@host/metrics`) or a signed query
(`?X-Amz-Signature=...`, `?api-key=...`). Every place that prints a URL (logs, /rules, the
/health JSON, error messages, `check`) prints redact_url(url), which hides the userinfo and the
value of every query parameter whose name looks like a credential. A URL is checked completely
at start (check_url), so nothing later (the scraper's own parsing) can fail on it with an
exception that would quote it.
"""

import re
from urllib.parse import unquote, urlsplit

HIDDEN = "***"
# A query parameter whose name contains one of these words holds a credential. Over-matching
# (`monkey`) only hides a harmless value; under-matching leaks one.
_SENSITIVE = re.compile(r"token|key|secret|passw|pwd|signature|sig|credential|auth|session|cookie|jwt", re.IGNORECASE)
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)(.*)$", re.DOTALL)


def redact_url(url: str) -> str:
    """The URL with userinfo and credential-like query values replaced by ***.

    The userinfo ends at the LAST `@` before the path, query or fragment, so a password
    holding a raw `@` (`http://u:p@ss@host/`) is hidden whole."""
    match = _SCHEME.match(url)
    if not match:
        return _redact_query(url)
    scheme, rest = match.groups()
    end = len(rest)
    for stop in "?#":
        found = rest.find(stop)
        if found != -1:
            end = min(end, found)
    at = rest.rfind("@", 0, end)
    if at != -1:  # (a `/` before it makes a malformed URL; all before the `@` is hidden all the same)
        rest = HIDDEN + rest[at:]
    return scheme + _redact_query(rest)


def _redact_query(text: str) -> str:
    head, sep, query = text.partition("?")
    if not sep:
        return text
    query, hash_sep, fragment = query.partition("#")
    parts = []
    for part in query.split("&"):
        name, eq, value = part.partition("=")
        parts.append(f"{name}={HIDDEN}" if eq and _SENSITIVE.search(unquote(name)) else part)
    tail = f"#{HIDDEN}" if hash_sep and fragment else hash_sep
    return head + "?" + "&".join(parts) + tail


def check_url(url: str) -> str | None:
    """Why the URL cannot be scraped (a short phrase naming no part of it), or None."""
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        return "holds a space or control character; percent-encode it (%20)"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as err:
        return f"is not a valid URL ({_reason(err)})"
    if parts.scheme not in ("http", "https"):
        return "is not an http:// or https:// URL"
    if not parts.hostname:
        return "has no host name"
    if port == 0:
        return "has port 0"
    return None


def _reason(err: ValueError) -> str:
    text = str(err)
    if "Port" in text or "port" in text:
        return "the port must be a number from 1 to 65535"
    if "IPv6" in text or "bracket" in text.lower():
        return "an IPv6 address needs matching [ ]"
    return "it does not parse"
