"""aiosmtpd with required STARTTLS and AUTH, for the delivery tests (campaigns.rs).

python3 smtp_tls_server.py HOST PORT MAILDIR CERT KEY USER PASSWORD

Stores each message in MAILDIR (a Maildir), refuses MAIL before STARTTLS and
before a successful AUTH (PLAIN or LOGIN), and runs until killed.
"""
import ssl
import sys
import threading

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult, LoginPassword

host, port, maildir, cert, key, user, password = sys.argv[1:8]
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == user.encode()
        and auth_data.password == password.encode()
    )
    return AuthResult(success=ok, handled=False)


controller = Controller(
    Mailbox(maildir),
    hostname=host,
    port=int(port),
    tls_context=ctx,
    require_starttls=True,
    authenticator=authenticate,
    auth_required=True,
    auth_require_tls=True,
)
controller.start()
print("ready", flush=True)
threading.Event().wait()
