"""`ktbench serve portal` / `ktbench serve module`: one simulated KT2 application, standalone on loopback https.

What a tester needs to connect the bench's application to a voorziening by hand: a JWKS URL (the key is
generated, or read with `--key`), and for the module its launch URL and redirect URI, all on
https://127.0.0.1:<port> with a certificate from a test CA made in `--tls-dir` (the voorziening must trust
`ca.pem` from there, e.g. through the reference voorziening's `trusted_ca_file`).  Notifications can be
sent to `<base>/<app>/notify/<channel>`.  Every launch, redirect and notification received is printed as
one line (field names only: launch tokens and codes are secrets).
"""

from __future__ import annotations

import sys
from pathlib import Path

from simulators.common.host import ServerTls
from simulators.common.standalone import ListenError, listen, serve_forever
from simulators.common.tls import TestCertificateAuthority
from simulators.kt2.actors.host import ActorHost, Received
from simulators.kt2.actors.keys import KeyRing

ROLES = ("portal", "module")


class _PrintingInbox:
    """The host's inbox, also printing one line per received request."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def add(self, item: Received) -> None:
        self.inner.add(item)
        fields = ", ".join(sorted(item.form)) or f"{len(item.body)} bytes"
        print(f"received {item.kind} for {item.app} at {item.path} ({fields})", flush=True)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def serve_actor(role: str, *, port: int = 0, tls_dir: Path = Path("ktbench-actors-tls"), key: Path | None = None,
                algorithm: str = "RS512", http: bool = False) -> int:
    prefix = f"ktbench serve {role}"
    if role not in ROLES:
        print(f"{prefix}: unknown application {role!r} (known: {', '.join(ROLES)})", file=sys.stderr)
        return 2
    try:
        keys = KeyRing.from_private_text(key.read_text(encoding="utf-8"), algorithm=algorithm) if key \
            else KeyRing.generated(algorithm)
    except (OSError, ValueError, TypeError, KeyError) as exc:
        print(f"{prefix}: cannot use --key {key}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    tls = None
    ca_file = None
    if not http:
        try:
            ca = TestCertificateAuthority(tls_dir, name=f"ktbench {role} test CA")
            issued = ca.server_certificate(role)
        except OSError as exc:
            print(f"{prefix}: cannot write the test CA to {tls_dir}: {exc.strerror or exc}", file=sys.stderr)
            return 2
        tls, ca_file = ServerTls(issued.cert_file, issued.key_file), ca.ca_file
    try:
        sock = listen("127.0.0.1", port)
    except ListenError as exc:
        print(f"{prefix}: {exc}", file=sys.stderr)
        return 2
    host = ActorHost()
    host.inbox = _PrintingInbox(host.inbox)  # type: ignore[assignment]
    host.add(role, keys)
    host.base_url = f"{'http' if http else 'https'}://127.0.0.1:{sock.getsockname()[1]}"
    lines = [f"ktbench simulated KT2 {role} on {host.base_url} (kid {keys.current.kid}, {algorithm})",
             f"  JWKS URL:         {host.jwks_url(role)}"]
    if role == "module":
        lines += [f"  launch URL:       {host.launch_url(role)}", f"  redirect URI:     {host.redirect_uri(role)}"]
    lines.append(f"  notifications:    {host.notification_url(role, '<channel>')}")
    if ca_file is not None:
        lines.append(f"  test CA:          {Path(ca_file).resolve()} (the voorziening must trust it)")
    return serve_forever(host.asgi, sock, "\n".join(lines), tls=tls)
