"""A person logging in at the voorziening's identity provider during a SMART app launch.

The real voorziening sends the browser to DigiD, an employer's IdP or Keycloak; the bench's reference
voorziening simulates them as a page that lists its users, each with a log-in link
(simulators/kt2/idp).  `IdpUser` plays the browser: it opens the IdP page the authorisation server redirected
to, follows the link for its username and returns the redirect back to the authorisation server's callback.
Against a real voorziening this needs a scripted IdP; the suite skips path B unless the target declares one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from simulators.kt2.actors.application import Http

_LINK = re.compile(r'<a\s+href="(?P<href>[^"]+)"')


class IdpLoginFailed(Exception):
    """The IdP page did not offer a log-in for the user (a set-up or voorziening problem; steps decide)."""


@dataclass(frozen=True)
class IdpUser:
    username: str
    identifier: str                  # the identity the IdP returns (an identifier value of the user's resource)
    name: str = "idp-user"

    def log_in(self, http: Http, idp_page: str) -> httpx.Response:
        """GET the IdP page, follow this user's log-in link; returns the IdP's answer (a redirect when it worked)."""
        page = http.request("GET", idp_page, headers={"Accept": "text/html"}, role=self.name, validate=False)
        if page.status_code != 200:
            raise IdpLoginFailed(f"the identity provider page answered {page.status_code}")
        for match in _LINK.finditer(page.text):
            href = unescape(match["href"])
            if parse_qs(urlsplit(href).query).get("username") == [self.username]:
                return http.request("GET", urljoin(idp_page, href), headers={"Accept": "text/html"},
                                    role=self.name, validate=False)
        raise IdpLoginFailed(f"the identity provider page offers no log-in for {self.username!r}")
