"""Secret redaction, applied to every HTTP exchange before it becomes an event.

Reports, attachments and logs are shared with people who must never see
credentials, so everything the bench records passes through a `Redactor` first:

* headers: Authorization / Proxy-Authorization keep their scheme ("Basic ***")
  so a reader still sees *how* a request authenticated; Cookie, Set-Cookie and
  X-Koppeltaal-Secret are blanked;
* URL query strings, form bodies and JSON bodies: the OAuth and credential
  fields in `SENSITIVE_FIELDS`, plus passwords in URL userinfo;
* PEM private keys anywhere in any text, and the private members of any JWK in JSON;
* any value the redactor was told about (configured passwords and client
  secrets) or has *learned* (tokens and codes seen in earlier traffic), wherever
  it reappears - an echoed password in an error text, a token in a URL path.

`code` is special: in an OAuth redirect or token request it is the authorization
code, but in FHIR it is everywhere (Coding.code, Other.code, and the KT1 search
`Other/_search?code=ActivityDefinition`); blanking - and worse, learning - those
would make the reports useless.  `code` is therefore only redacted in an
OAuth-shaped context: a JSON object, query string or form that also carries
grant_type, redirect_uri, state, client_id, code_verifier, iss, launch or scope,
or a URL whose path names an OAuth endpoint (oauth, token, authorize).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

REDACTED = "***"

SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-koppeltaal-secret"}
)
# Headers whose first word (the auth scheme) is kept.
_SCHEME_HEADERS = frozenset({"authorization", "proxy-authorization"})
_URL_HEADERS = frozenset({"location", "content-location", "referer"})

SENSITIVE_FIELDS = frozenset(
    {
        "access_token",
        "refresh_token",
        "id_token",
        "code",
        "client_secret",
        "password",
        "client_assertion",
        "activation_code",
        "authorization_code",
        "launch",        # a KT1 launch id / a KT2 HTI launch token: whoever holds it can redeem the launch
        "launch_id",
        "token",         # a KT2 introspection request's HTI token
        "code_verifier",  # PKCE: with the code it redeems the launch
        "session",       # a domain admin session (the KT2 admin API's log-in answer)
    }
)
# Members of a JWK that are private key material (RFC 7518 §6.2.2, §6.3.2, §6.4): blanked in any JSON object
# with a "kty", whoever published it (a JWKS that leaks them is a finding, never a report's content).
JWK_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
# Fields whose values are worth remembering: if they show up again elsewhere they are redacted too.
_LEARNABLE_FIELDS = SENSITIVE_FIELDS - {"password", "client_secret"}
_OAUTH_CONTEXT_KEYS = frozenset(
    {"grant_type", "redirect_uri", "state", "client_id", "code_verifier", "iss", "launch", "scope"}
)
# Secrets shorter than tokens (KT1 activation codes are six digits) are learned too, and replaced only where
# they stand alone, so an ordinary number that merely contains the digits is left as it is.
_SHORT_LEARNABLE = {"activation_code": 6}
_SCOPE_LAUNCH_RE = re.compile(r"(?<![^\s])launch:(?P<ref>[^\s]+)")   # `launch:<id or activation code>`
_OAUTH_PATH_RE = re.compile(r"oauth|token|authori[sz]e", re.IGNORECASE)

_PEM_RE = re.compile(
    r"-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY-----.*?(?:-----END \1PRIVATE KEY-----|\Z)", re.DOTALL
)
_FIELD_ALT = "|".join(sorted(SENSITIVE_FIELDS - {"code"}, key=len, reverse=True))
# Query strings inside free text (links in bodies, log lines): redacted with the same rules as URLs.
_QUERY_IN_TEXT_RE = re.compile(r"(?P<sep>[?#])(?P<q>[^\s\"'<>?#]*=[^\s\"'<>#]*)")
# Remaining key=value pairs in free text or malformed form bodies (never `code`: see module docstring).
_KV_RE = re.compile(rf"(?P<pre>(?:^|[?&;\s])(?:{_FIELD_ALT})=)(?P<val>[^&\s\"'<>]+)", re.IGNORECASE)
# "key": "value" in text that is not (valid) JSON.
_JSON_KV_RE = re.compile(rf"(?P<pre>\"(?:{_FIELD_ALT})\"\s*:\s*\")(?P<val>(?:[^\"\\]|\\.)*)\"", re.IGNORECASE)

_MIN_KNOWN_SECRET = 4  # shorter "secrets" would blank ordinary words
_MIN_LEARNED = 8  # values learned from traffic must look like tokens, not like words


def _is_json_type(content_type: str | None) -> bool:
    ct = (content_type or "").lower()
    return "json" in ct


def _is_form_type(content_type: str | None) -> bool:
    return "application/x-www-form-urlencoded" in (content_type or "").lower()


class Redactor:
    """Redacts headers, URLs and bodies; remembers secret values to scrub them everywhere."""

    def __init__(self, known_secrets: Iterable[str] = ()) -> None:
        self._known: set[str] = set()
        for value in known_secrets:
            self.learn(value)

    # -- known values --------------------------------------------------------------------------
    def learn(self, value: object, *, min_length: int = _MIN_KNOWN_SECRET) -> None:
        """Remember a secret value so it is redacted wherever it appears later."""
        if isinstance(value, str) and len(value) >= min_length and value != REDACTED:
            self._known.add(value)

    def _learn_from_traffic(self, value: object, field: str = "") -> None:
        self.learn(value, min_length=_SHORT_LEARNABLE.get(field, _MIN_LEARNED))

    @property
    def known_secrets(self) -> frozenset[str]:
        return frozenset(self._known)

    def scrub_known(self, text: str) -> str:
        """Replace every known secret (raw, URL-quoted or JSON-escaped) in `text`."""
        for secret in sorted(self._known, key=len, reverse=True):
            for form in {secret, quote(secret, safe=""), json.dumps(secret)[1:-1]}:
                if not form or form not in text:
                    continue
                if len(form) < _MIN_LEARNED:  # short: only where it stands alone
                    text = re.sub(rf"(?<![A-Za-z0-9]){re.escape(form)}(?![A-Za-z0-9])", REDACTED, text)
                else:
                    text = text.replace(form, REDACTED)
        return text

    # -- headers -------------------------------------------------------------------------------
    def header_value(self, name: str, value: str) -> str:
        lname = name.lower()
        if lname in _SCHEME_HEADERS:
            scheme, _, credentials = value.strip().partition(" ")
            if credentials and scheme.isalpha():
                self._learn_from_traffic(credentials.strip())  # a server echoing it back must not reveal it
                return f"{scheme} {REDACTED}"
            self._learn_from_traffic(value.strip())
            return REDACTED
        if lname in SENSITIVE_HEADERS:
            return REDACTED
        if lname in _URL_HEADERS:
            return self.url(value)
        return self.text(value)

    def headers(self, headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
        return tuple((name, self.header_value(name, value)) for name, value in headers)

    # -- URLs ----------------------------------------------------------------------------------
    def url(self, url: str) -> str:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, hostport = netloc.rpartition("@")
            user, sep, _password = userinfo.partition(":")
            netloc = f"{user}:{REDACTED}@{hostport}" if sep else netloc
        oauth_path = bool(_OAUTH_PATH_RE.search(parts.path))
        query = self.query(parts.query, oauth=oauth_path) if parts.query else parts.query
        fragment = self.query(parts.fragment, oauth=oauth_path) if "=" in parts.fragment else parts.fragment
        rebuilt = urlunsplit((parts.scheme, netloc, parts.path, query, fragment))
        return self.scrub_known(rebuilt)

    def query(self, query: str, *, oauth: bool = False) -> str:
        """Redact a query string or form body; `oauth` says the context makes `code` an authorization code."""
        pairs = parse_qsl(query, keep_blank_values=True)
        if not pairs:
            return query
        oauth = oauth or any(k.lower() in _OAUTH_CONTEXT_KEYS for k, _ in pairs)
        out = []
        changed = False
        for key, value in pairs:
            lkey = key.lower()
            if lkey in SENSITIVE_FIELDS and (lkey != "code" or oauth):
                if lkey in _LEARNABLE_FIELDS:
                    self._learn_from_traffic(value, lkey)
                value = REDACTED
                changed = True
            elif lkey == "scope" and _SCOPE_LAUNCH_RE.search(value):
                value = self.scope(value)
                changed = True
            out.append((key, value))
        return urlencode(out, safe="*") if changed else query

    def scope(self, value: str) -> str:
        """An OAuth scope with its `launch:<ref>` (a KT1 launch id or activation code) redacted and learned."""
        def hide(match: re.Match[str]) -> str:
            self._learn_from_traffic(match.group("ref"), "activation_code")
            return "launch:" + REDACTED
        return _SCOPE_LAUNCH_RE.sub(hide, value)

    # -- bodies --------------------------------------------------------------------------------
    def body(self, body: bytes | str | None, content_type: str | None = None) -> str:
        """A redacted, printable version of a request/response body."""
        if body is None:
            return ""
        if isinstance(body, bytes):
            if not body:
                return ""
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                return f"<{len(body)} bytes of binary content>"
        else:
            text = body
        stripped = text.lstrip()
        if _is_json_type(content_type) or (not content_type and stripped[:1] in "{["):
            try:
                data = json.loads(text)
            except ValueError:
                pass
            else:
                return self.text(json.dumps(self.json(data), ensure_ascii=False, indent=2))
        if _is_form_type(content_type):
            return self.text(self.query(text))
        return self.text(text)

    def json(self, data: object) -> object:
        """Redact sensitive fields in parsed JSON (recursively); returns a new structure."""
        if isinstance(data, dict):
            oauth_shaped = any(k in data for k in _OAUTH_CONTEXT_KEYS)
            jwk = isinstance(data.get("kty"), str)
            out: dict[str, object] = {}
            for key, value in data.items():
                if jwk and key in JWK_PRIVATE_MEMBERS:
                    if isinstance(value, str):
                        self._learn_from_traffic(value)
                    out[key] = REDACTED
                    continue
                lkey = key.lower() if isinstance(key, str) else key
                sensitive = lkey in SENSITIVE_FIELDS and (lkey != "code" or oauth_shaped)
                if sensitive and isinstance(value, (str, int, float)) and not isinstance(value, bool):
                    if lkey in _LEARNABLE_FIELDS:
                        self._learn_from_traffic(str(value), lkey)
                    out[key] = REDACTED
                elif lkey == "scope" and isinstance(value, str):
                    out[key] = self.scope(value)
                elif sensitive and lkey != "code":
                    out[key] = REDACTED
                else:
                    out[key] = self.json(value)
            return out
        if isinstance(data, list):
            return [self.json(item) for item in data]
        if isinstance(data, str):
            return redact_pem(data)
        return data

    def text(self, text: str) -> str:
        """Last line of defence for free text: PEM keys, key=value pairs, JSON-ish pairs, known values."""
        text = redact_pem(text)
        text = _QUERY_IN_TEXT_RE.sub(self._query_in_text, text)
        text = _KV_RE.sub(lambda m: m.group("pre") + REDACTED, text)
        text = _JSON_KV_RE.sub(lambda m: m.group("pre") + REDACTED + '"', text)
        return self.scrub_known(text)


    def _query_in_text(self, match: re.Match[str]) -> str:
        raw = match.group("q")
        escaped = "&amp;" in raw  # a link inside HTML/XML
        query = raw.replace("&amp;", "&") if escaped else raw
        redacted = self.query(query)
        if redacted == query:
            return match.group(0)
        return match.group("sep") + (redacted.replace("&", "&amp;") if escaped else redacted)


def redact_pem(text: str) -> str:
    """Replace PEM private keys (any flavour: RSA, EC, ENCRYPTED, PKCS#8) by a marker."""
    return _PEM_RE.sub(lambda m: f"-----BEGIN {m.group(1)}PRIVATE KEY-----{REDACTED}-----END {m.group(1)}PRIVATE KEY-----", text)


# Module-level conveniences using a stateless redactor (no known secrets).
def redact_headers(headers: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return Redactor().headers(headers)


def redact_url(url: str) -> str:
    return Redactor().url(url)


def redact_body(body: bytes | str | None, content_type: str | None = None) -> str:
    return Redactor().body(body, content_type)


def redact_text(text: str) -> str:
    return Redactor().text(text)
