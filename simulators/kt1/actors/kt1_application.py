"""`Kt1Application`: one KT1.3 application instance talking to a Koppeltaal server.

It does what every connector does - send messages to the Mailbox, claim and
acknowledge what arrives, search its mailbox, publish ActivityDefinitions,
take part in SSO - and hands back small parsed answers the steps can assert
on.  It never asserts anything itself: judging the server is the suite's job,
so an actor is equally usable against a broken server.

HTTP goes through the client passed in (the bench's recording client, or any
object with the same `request(method, url, *, auth, role, headers, params,
json, content, data)` method), so every exchange becomes a report event.
Bearer tokens and client secrets are kept as `Secret`s and never returned as
plain strings.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import httpx

from ktbench.core.secret import Secret
from ktbench.fhir.dstu1.constants import (
    AUTHORIZE_PATH,
    CLAIM_QUERY,
    LAUNCH_PATH,
    MAILBOX_PATH,
    MESSAGE_HEADER_SEARCH_PATH,
    METADATA_PATH,
    MOBILE_LAUNCH_PATH,
    OTHER_PATH,
    OTHER_SEARCH_PATH,
    TOKEN_PATH,
)
from ktbench.fhir.dstu1.links import strip_history, version_of
from ktbench.http.auth import BearerAuth
from ktbench.targets.model import BasicCredential
from simulators.kt1.actors.kt1_messages import (
    KEEP,
    DeliveredMessage,
    HeaderSummary,
    ack_body,
    bundle_link,
    header_summaries,
    message_bundle,
    new_identifier,
)
from simulators.kt1.actors.kt1_resources import LocalResource

XML_TYPE = "application/xml"
JSON_TYPE = "application/json"


class HttpClient(Protocol):
    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response: ...


class _Basic(httpx.Auth):
    """Basic auth from a user name and a Secret password; its repr never shows the password."""

    def __init__(self, username: str, password: Secret) -> None:
        self.username = username
        self._password = password

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        raw = f"{self.username}:{self._password.reveal()}".encode("utf-8")
        request.headers["Authorization"] = "Basic " + base64.b64encode(raw).decode("ascii")
        yield request

    def __repr__(self) -> str:
        return f"Basic({self.username}:***)"


@dataclass
class Answer:
    """A server answer reduced to what checks need: status, content type, parsed body."""

    status: int
    content_type: str
    headers: httpx.Headers
    body: Any                 # dict for JSON/XML that parsed, None when empty or unparseable
    text: str
    parse_error: str | None = None

    @classmethod
    def of(cls, response: httpx.Response) -> Answer:
        content_type = response.headers.get("content-type", "")
        body: Any = None
        error = None
        raw = response.content
        if raw.strip():
            if "xml" in content_type.lower() or raw.lstrip()[:1] == b"<":
                from ktbench.fhir.dstu1.xmlcodec import XmlCodecError, parse_xml
                try:
                    body = parse_xml(raw)
                except XmlCodecError as exc:
                    error = f"XML: {exc}"
            else:
                try:
                    body = json.loads(raw.decode("utf-8"))
                except (UnicodeDecodeError, ValueError) as exc:
                    error = f"JSON: {exc}"
        return cls(response.status_code, content_type, response.headers, body, response.text, error)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def is_json(self) -> bool:
        return self.content_type.lower().startswith("application/json")

    @property
    def is_xml(self) -> bool:
        return "xml" in self.content_type.lower()

    @property
    def location(self) -> str | None:
        return self.headers.get("location")

    @property
    def content_location(self) -> str | None:
        return self.headers.get("content-location")

    @property
    def resource_type(self) -> str | None:
        return self.body.get("resourceType") if isinstance(self.body, dict) else None

    def issues(self) -> list[dict[str, Any]]:
        if self.resource_type != "OperationOutcome":
            return []
        return [i for i in self.body.get("issue") or [] if isinstance(i, dict)]

    def issue_details(self) -> list[str]:
        return [str(i.get("details", "")) for i in self.issues()]

    def issue_codes(self) -> list[str]:
        return [str((i.get("type") or {}).get("code", "")) for i in self.issues()]

    def brief(self) -> str:
        """A one-line description for assertion messages (never includes secrets: bodies are FHIR only)."""
        detail = "; ".join(self.issue_details()) or self.text[:160].replace("\n", " ")
        return f"HTTP {self.status} ({self.content_type or 'no content type'}): {detail}"


@dataclass
class SendResult:
    """The outcome of one Mailbox POST."""

    answer: Answer
    identifier: str
    event: str
    bundle: dict[str, Any]                       # what was sent
    focal: LocalResource
    others: list[LocalResource]

    @property
    def accepted(self) -> bool:
        return self.answer.status == 200 and self.reply_header is not None

    @property
    def reply_header(self) -> dict[str, Any] | None:
        body = self.answer.body
        if not isinstance(body, dict) or body.get("resourceType") != "Bundle":
            return None
        headers = header_summaries(body)
        return headers[0].header if headers else None

    @property
    def reply_headers_count(self) -> int:
        body = self.answer.body
        return len(header_summaries(body)) if isinstance(body, dict) else 0

    @property
    def data_refs(self) -> list[str]:
        header = self.reply_header or {}
        return [d.get("reference") for d in header.get("data") or [] if isinstance(d, dict)
                and isinstance(d.get("reference"), str)]

    def minted_versions(self) -> dict[str, str]:
        """History-less URL -> version, from the reply's data references."""
        found = {}
        for ref in self.data_refs:
            version = version_of(ref)
            if version:
                found[strip_history(ref)] = version
        return found


@dataclass
class TokenSet:
    """An OAuth token answer with the tokens kept secret."""

    answer: Answer
    access_token: Secret | None
    refresh_token: Secret | None
    fields: dict[str, Any]           # every other field (token_type, expires_in, scope, patient, ...)

    @classmethod
    def of(cls, answer: Answer) -> TokenSet:
        body = answer.body if isinstance(answer.body, dict) else {}
        fields = {k: v for k, v in body.items() if k not in ("access_token", "refresh_token")}
        access = body.get("access_token")
        refresh = body.get("refresh_token")
        return cls(answer, Secret(access) if isinstance(access, str) and access else None,
                   Secret(refresh) if isinstance(refresh, str) and refresh else None, fields)

    def __repr__(self) -> str:
        return f"TokenSet(status={self.answer.status}, fields={sorted(self.fields)})"


@dataclass(repr=False)
class Kt1Application:
    """One application instance on a KT1 server (credentials decide its domain)."""

    http: HttpClient
    server_url: str                      # server root, e.g. http://127.0.0.1:8080
    creds: BasicCredential
    resource_base: str = ""              # where this application names its own resources
    fmt: str = "json"                    # json | xml: the representation it speaks
    software: str = "ktbench simulated application"
    bearer: Secret | None = field(default=None, repr=False)
    basic_override: tuple[str, Secret] | None = field(default=None, repr=False)
    domain_override: str | None = None   # the domain it *claims* in bundles (for wrong-domain tests)

    def __repr__(self) -> str:  # short and secret-free: actors can end up in reports as step parameters
        how = "bearer" if self.bearer is not None else "basic"
        return f"{type(self).__name__}({self.creds.app_id} @ {self.server_url}, {how}, {self.fmt})"

    def __post_init__(self) -> None:
        self.server_url = self.server_url.rstrip("/")
        if not self.resource_base:
            self.resource_base = f"https://{self.creds.app_id}.ktbench.test/fhir/Koppeltaal"

    # -- identity ----------------------------------------------------------------------------------
    @property
    def app_id(self) -> str:
        return self.creds.app_id

    @property
    def role(self) -> str:
        return self.creds.role

    @property
    def domain(self) -> str:
        return self.domain_override or self.creds.domain

    def new_url(self, rtype: str, ident: str) -> str:
        return f"{self.resource_base}/{rtype}/{ident}"

    def source(self) -> dict[str, str]:
        return {"name": self.creds.app_id, "software": f"ktbench actor; {self.software}",
                "version": "1.3.5; ktbench", "endpoint": self.resource_base}

    # -- variants ----------------------------------------------------------------------------------
    def with_bearer(self, token: Secret) -> Kt1Application:
        """The same application calling with a Bearer token instead of its Basic credentials."""
        return replace(self, bearer=token, basic_override=None)

    def with_password(self, password: str) -> Kt1Application:
        """The same user name with another password (to test authentication)."""
        return replace(self, basic_override=(self.creds.username, Secret(password)), bearer=None)

    def claiming_domain(self, domain: str) -> Kt1Application:
        return replace(self, domain_override=domain)

    def speaking(self, fmt: str) -> Kt1Application:
        return replace(self, fmt=fmt)

    # -- transport ---------------------------------------------------------------------------------
    def _auth(self, auth: Any) -> Any:
        if auth is not None:
            return None if auth == "none" else auth
        if self.bearer is not None:
            return BearerAuth(self.bearer)
        if self.basic_override is not None:
            return _Basic(*self.basic_override)
        return self.creds

    def call(self, method: str, path_or_url: str, *, params: dict[str, Any] | None = None,
             body: dict[str, Any] | None = None, auth: Any = None, fmt: str | None = None,
             headers: dict[str, str] | None = None, form: dict[str, str] | None = None,
             raw: bytes | None = None) -> Answer:
        """One request; `path_or_url` may be a server path or any absolute URL the server minted.

        `raw` sends bytes as they are (with the format's Content-Type): for malformed-input checks.
        """
        fmt = fmt or self.fmt
        url = self.absolute(path_or_url)
        hdrs = {"Accept": XML_TYPE if fmt == "xml" else JSON_TYPE}
        content: bytes | None = None
        if raw is not None:
            content = raw
            hdrs["Content-Type"] = XML_TYPE if fmt == "xml" else JSON_TYPE
        elif body is not None:
            if fmt == "xml":
                from ktbench.fhir.dstu1.xmlcodec import to_xml
                content = to_xml(body)
                hdrs["Content-Type"] = XML_TYPE
            else:
                content = json.dumps(body).encode("utf-8")
                hdrs["Content-Type"] = JSON_TYPE
        hdrs.update(headers or {})
        response = self.http.request(method, url, auth=self._auth(auth), role=self.role, headers=hdrs,
                                     params=params, content=content, data=form)
        return Answer.of(response)

    def absolute(self, path_or_url: str) -> str:
        """Like the connector: keep only path and query of a minted link, on the configured server."""
        if "://" not in path_or_url:
            return self.server_url + path_or_url
        parts = urlsplit(path_or_url)
        return self.server_url + parts.path + (f"?{parts.query}" if parts.query else "")

    # -- metadata ----------------------------------------------------------------------------------
    def metadata(self, fmt: str | None = None, anonymous: bool = False) -> Answer:
        return self.call("GET", METADATA_PATH, fmt=fmt, auth="none" if anonymous else None)

    # -- Mailbox -----------------------------------------------------------------------------------
    def send(self, event: str, focal: LocalResource, others: list[LocalResource] | tuple = (), *,
             patient_url: str | None = None, focal_version: Any = KEEP,
             other_versions: dict[str, str | None] | None = None, learn: bool = True,
             fmt: str | None = None) -> SendResult:
        """POST one message.  On acceptance the sender learns the versions the server minted."""
        others = list(others)
        identifier = new_identifier()
        bundle = message_bundle(domain=self.domain, event=event, identifier=identifier, focal=focal,
                                others=others, patient_url=patient_url, source=self.source(),
                                header_base=self.resource_base, focal_version=focal_version,
                                other_versions=other_versions)
        answer = self.call("POST", MAILBOX_PATH, body=bundle, fmt=fmt)
        result = SendResult(answer, identifier, event, bundle, focal, others)
        if learn and result.accepted:
            minted = result.minted_versions()
            for res in [focal, *others]:
                if res.url in minted:
                    res.learn_version(minted[res.url])
        return result

    def send_raw(self, bundle: dict[str, Any], fmt: str | None = None) -> Answer:
        return self.call("POST", MAILBOX_PATH, body=bundle, fmt=fmt)

    # -- claim cycle -------------------------------------------------------------------------------
    def claim(self, patient_url: str | None = None, event: str | None = None,
              fmt: str | None = None) -> tuple[Answer, DeliveredMessage | None]:
        """GetNextNewAndClaim (filtered like the connector): the answer and the claimed message, if any."""
        params: dict[str, str] = {"_query": CLAIM_QUERY}
        if patient_url:
            params["Patient"] = patient_url
        if event:
            params["event"] = event
        answer = self.call("GET", MESSAGE_HEADER_SEARCH_PATH, params=params, fmt=fmt)
        message = DeliveredMessage.from_bundle(answer.body) if isinstance(answer.body, dict) else None
        return answer, message

    def ack(self, message: DeliveredMessage | HeaderSummary, status: str, exception: str | None = None, *,
            historyless: bool = False, header: dict[str, Any] | None = None) -> Answer:
        """PUT the ProcessingStatus on the message's versioned self link (or its history-less URL)."""
        summary = message.summary if isinstance(message, DeliveredMessage) else message
        historyless_url = summary.entry_id or strip_history(summary.self_link or "")
        url = historyless_url if historyless or not summary.self_link else summary.self_link
        body = ack_body(header if header is not None else summary.header, status, exception)
        return self.call("PUT", url, body=body)

    def search(self, *, patient_url: str | None = None, event: str | None = None, status: str | None = None,
               count: int | None = None, summary: bool = True, fmt: str | None = None,
               status_param: str = "ProcessingStatus") -> Answer:
        params: dict[str, Any] = {}
        if summary:
            params["_summary"] = "true"
        if count is not None:
            params["_count"] = str(count)
        if patient_url:
            params["Patient"] = patient_url
        if event:
            params["event"] = event
        if status:
            params[status_param] = status
        return self.call("GET", MESSAGE_HEADER_SEARCH_PATH, params=params, fmt=fmt)

    def follow(self, link: str) -> Answer:
        return self.call("GET", link)

    def pages(self, first: Answer, max_pages: int = 20) -> Iterator[Answer]:
        """`first` and the answers its `next` links lead to, in order (bounded: a broken server may loop)."""
        answer = first
        for number in range(max_pages):
            yield answer
            nxt = bundle_link(answer.body, "next") if isinstance(answer.body, dict) else None
            if not nxt or number + 1 >= max_pages:
                return
            answer = self.follow(nxt)

    def search_all(self, *, max_pages: int = 20, **criteria: Any) -> tuple[list[HeaderSummary], list[Answer]]:
        """Every MessageHeader of a search, following `next` links."""
        answers = list(self.pages(self.search(**criteria), max_pages))
        found = [h for a in answers if isinstance(a.body, dict) for h in header_summaries(a.body)]
        return found, answers

    def message(self, message_id: str, fmt: str | None = None) -> tuple[Answer, DeliveredMessage | None]:
        """`_search?_id=` with a bare id or a full (versioned) URL: the complete message bundle."""
        answer = self.call("GET", MESSAGE_HEADER_SEARCH_PATH, params={"_id": message_id}, fmt=fmt)
        message = DeliveredMessage.from_bundle(answer.body) if isinstance(answer.body, dict) else None
        return answer, message

    def find(self, identifier: str, *, max_pages: int = 20, **criteria: Any) -> HeaderSummary | None:
        """The header of the message with this MessageHeader.identifier in this mailbox, if any."""
        return self.find_with_answer(identifier, max_pages=max_pages, **criteria)[0]

    def find_with_answer(self, identifier: str, *, max_pages: int = 20,
                         **criteria: Any) -> tuple[HeaderSummary | None, Answer]:
        """Like `find`, plus the first search answer (to tell "not there" from "search refused")."""
        first = self.search(**criteria)
        for answer in self.pages(first, max_pages):
            if not isinstance(answer.body, dict):
                break
            for header in header_summaries(answer.body):
                if header.identifier == identifier:
                    return header, first
        return None, first

    # -- ActivityDefinitions -----------------------------------------------------------------------
    def activities(self, include_archived: bool = False, fmt: str | None = None) -> tuple[Answer, list[dict]]:
        """Every ActivityDefinition entry visible to this application (follows `next` links)."""
        params = {"code": "ActivityDefinition"}
        if include_archived:
            params["includearchived"] = "yes"
        first = self.call("GET", OTHER_SEARCH_PATH, params=params, fmt=fmt)
        entries = [e for answer in self.pages(first) if isinstance(answer.body, dict)
                   for e in answer.body.get("entry") or [] if isinstance(e, dict)]
        return first, entries

    def publish_activity(self, content: dict[str, Any]) -> Answer:
        return self.call("POST", OTHER_PATH, body=copy.deepcopy(content))

    def update_activity(self, link: str, content: dict[str, Any]) -> Answer:
        return self.call("PUT", link, body=copy.deepcopy(content))

    # -- SSO ---------------------------------------------------------------------------------------
    def launch(self, client_id: str, patient_url: str, user_url: str, resource: str | None = None,
               intent: str | None = None, mobile: bool = False) -> Answer:
        params = {"client_id": client_id, "patient": patient_url, "user": user_url}
        if resource:
            params["resource"] = resource
        if intent:
            params["intent"] = intent
        return self.call("GET", MOBILE_LAUNCH_PATH if mobile else LAUNCH_PATH, params=params)

    def authorize(self, launch_ref: str, redirect_uri: str | None, state: str | None = None,
                  client_id: str | None = None) -> Answer:
        """The Authorize request a launched app makes: no credentials, scope `patient/*.read launch:<ref>`."""
        params = {"response_type": "code", "client_id": client_id or self.app_id,
                  "scope": f"patient/*.read launch:{launch_ref}"}
        if redirect_uri:
            params["redirect_uri"] = redirect_uri
        if state:
            params["state"] = state
        return self.call("GET", AUTHORIZE_PATH, params=params, auth="none")

    def _client_auth(self) -> _Basic:
        return _Basic(self.app_id, self.creds.client_secret)

    def exchange_code(self, code: Secret, redirect_uri: str | None, *, method: str = "GET") -> TokenSet:
        """Trade an authorization code for tokens (Basic client_id:client_secret, like the connector)."""
        params = {"grant_type": "authorization_code", "code": code.reveal()}
        if redirect_uri:
            params["redirect_uri"] = redirect_uri
        if method == "POST":
            answer = self.call("POST", TOKEN_PATH, form=params, auth=self._client_auth())
        else:
            answer = self.call("GET", TOKEN_PATH, params=params, auth=self._client_auth())
        return TokenSet.of(answer)

    def refresh(self, refresh_token: Secret) -> TokenSet:
        answer = self.call("POST", TOKEN_PATH, form={"grant_type": "refresh_token",
                                                     "refresh_token": refresh_token.reveal()},
                           auth=self._client_auth())
        return TokenSet.of(answer)

    def oauth_uris(self) -> dict[str, str]:
        """authorize/token URLs from the Conformance statement (`rest[0].security.extension`)."""
        answer = self.metadata(anonymous=False)
        uris: dict[str, str] = {}
        rest = answer.body.get("rest") if isinstance(answer.body, dict) else None
        if isinstance(rest, dict):
            rest = [rest]
        for item in rest or []:
            for ext in ((item or {}).get("security") or {}).get("extension") or []:
                url = ext.get("url", "") if isinstance(ext, dict) else ""
                if "#" in url and isinstance(ext.get("valueUri"), str):
                    uris.setdefault(url.rsplit("#", 1)[1], ext["valueUri"])
        return uris


def query_of(url: str | None) -> dict[str, str]:
    """The query parameters of a URL (first value of each)."""
    if not url:
        return {}
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}

