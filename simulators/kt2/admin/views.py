"""The JSON shapes of the API (also what the web page shows): accounts, domains, applications, instances,
connection requests.  Every URL in them is minted from the request's root, so it follows `--public-base`.
Statuses come as the API's code (`active`, `pending`, ...) and the seed's Dutch label (`status_label`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from simulators.kt2 import urls
from simulators.kt2.admin import connections, instances
from simulators.kt2.admin.accounts import Account
from simulators.kt2.admin.connections import ConnectionRequest
from simulators.kt2.context import InstanceRecord
from simulators.kt2.data import Application, Domain

if TYPE_CHECKING:
    from simulators.kt2.admin.service import DomainAdmin


def api_url(root: str, *parts: str) -> str:
    return urls.management_api(root) + "".join("/" + quote(p, safe="") for p in parts)


def page_url(root: str, *parts: str) -> str:
    return urls.management_url(root) + "/".join(quote(p, safe="") for p in parts)


class Views:
    def __init__(self, admin: DomainAdmin) -> None:
        self.admin = admin
        self.ctx = admin.ctx

    def instant(self, ts: float | None) -> str | None:
        return None if ts is None else self.ctx.clock.instant(ts)

    def application_name(self, app_id: str) -> str:
        app = self.ctx.data.application(app_id)
        return app.name if app else app_id

    def domain(self, domain: Domain, account: Account, root: str) -> dict[str, Any]:
        data: dict[str, Any] = {"name": domain.name, "title": domain.title, "environment": domain.environment,
                                "fhir_base": urls.fhir_base(root, domain.name),
                                "token_endpoint": urls.token_url(root, domain.name),
                                "url": api_url(root, "domains", domain.name)}
        if account.manages_domain(domain.name):
            data["instances"] = len(self.admin.registry.instances(domain.name))
            data["pending_requests"] = len(self.admin.connections.visible(account, domain=domain.name,
                                                                          status="pending"))
        return data

    def application(self, app: Application, account: Account, root: str) -> dict[str, Any]:
        return {"id": app.id, "name": app.name, "vendor": app.vendor,
                "administered": account.manages_application(app.id), "url": api_url(root, "applications", app.id)}

    def instance(self, record: InstanceRecord, root: str, *, details: bool = False) -> dict[str, Any]:
        data: dict[str, Any] = {
            "client_id": record.client_id, "name": record.name, "application": record.application,
            "application_name": self.application_name(record.application), "domain": record.domain,
            "role": record.role, "status": record.status, "status_label": instances.STATUS_LABELS[record.status],
            "jwks_uri": record.jwks_url, "inline_jwks": record.jwks is not None,
            "redirect_uris": list(record.redirect_uris), "launch_url": record.launch_url,
            "device": record.device, "device_url": f"{urls.fhir_base(root, record.domain)}/{record.device}",
            "url": api_url(root, "instances", record.client_id),
            "page": page_url(root, "instances", record.client_id)}
        if details:
            info = self.admin.registry.details(record.client_id)
            data["origin"] = info["origin"]
            data["connection_request"] = info["request_id"]
            data["created_at"] = self.instant(info["created_at"])
            data["allowed_status_changes"] = list(self.admin.registry.allowed_targets(record.status))
            data["history"] = [{"at": self.instant(h["at"]), "by": h["by"], "from": h["from"],
                                "from_label": instances.STATUS_LABELS.get(h["from"] or "", None),
                                "to": h["to"], "to_label": instances.STATUS_LABELS.get(h["to"], h["to"]),
                                "reason": h["reason"]} for h in info["history"]]
        return data

    def request(self, request: ConnectionRequest, root: str) -> dict[str, Any]:
        return {
            "id": request.id, "status": request.status, "status_label": connections.STATUS_LABELS[request.status],
            "application": request.application, "application_name": self.application_name(request.application),
            "domain": request.domain, "name": request.name, "jwks_uri": request.jwks_uri,
            "redirect_uris": list(request.redirect_uris), "launch_url": request.launch_url,
            "filed_by": request.filed_by, "filed_at": self.instant(request.filed_at),
            "decided_by": request.decided_by, "decided_at": self.instant(request.decided_at),
            "role": request.role, "client_id": request.client_id, "reason": request.reason,
            "instance_url": api_url(root, "instances", request.client_id) if request.client_id else None,
            "url": api_url(root, "connection-requests", request.id),
            "page": connections.request_page(root, request.id)}
