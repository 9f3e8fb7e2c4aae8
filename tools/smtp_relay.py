#!/usr/bin/python3
"""A real SMTP server (aiosmtpd) that delivers every accepted message into Dovecot by LMTP.

Used by the test suite as the "SMTP server that delivers into Dovecot" for POP3-only
mailboxes. Usage: smtp_relay.py SMTP_PORT LMTP_PORT [--tls CERT KEY] [--auth USER PASSWORD]

--tls offers STARTTLS with that certificate; --auth requires SMTP AUTH (PLAIN/LOGIN) with
that user and password, which aiosmtpd accepts only over TLS (unless --auth-over-plain). Each delivered message gets
an X-Relay-TLS header (yes/no) and, when authenticated, X-Relay-Auth (the user): what the
tests read back from the mailbox.
"""
import asyncio
import smtplib
import ssl
import time
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


class LmtpRelay:
    def __init__(self, lmtp_port):
        self.lmtp_port = lmtp_port

    async def handle_DATA(self, server, session, envelope):
        stamp = b"X-Relay-TLS: %s\r\n" % (b"yes" if session.ssl is not None else b"no")
        if session.authenticated and session.auth_data is not None:
            stamp += b"X-Relay-Auth: %s\r\n" % session.auth_data.login
        content = stamp + envelope.original_content

        # Like a real MTA, the relay takes responsibility per recipient: each is
        # delivered in its own LMTP transaction, a temporary failure retried here. An
        # error goes back to the client only while nothing has been delivered — a 451
        # after a partial delivery would make the client send everyone a second copy.
        def deliver_one(rcpt):
            with smtplib.LMTP("127.0.0.1", self.lmtp_port) as lmtp:
                lmtp.sendmail(envelope.mail_from, [rcpt], content)

        def deliver():
            delivered, failed = [], []
            for rcpt in envelope.rcpt_tos:
                for attempt in range(10):
                    try:
                        deliver_one(rcpt)
                        delivered.append(rcpt)
                        break
                    except smtplib.SMTPRecipientsRefused as e:
                        failed.append((rcpt, "refused: %s" % e))
                        break
                    except Exception as e:  # Dovecot busy or down
                        if not delivered and attempt == 0 and isinstance(e, OSError):
                            raise  # nothing taken yet and no store at all: the client retries
                        if attempt == 9:
                            failed.append((rcpt, str(e)))
                        else:
                            time.sleep(0.2)
            return delivered, failed

        try:
            delivered, failed = await asyncio.get_running_loop().run_in_executor(None, deliver)
        except Exception as e:  # Dovecot down: tell the client to retry later.
            return "451 mail store unavailable: %s" % e
        if failed:
            print("relay: not delivered to %s" % failed, file=sys.stderr, flush=True)
            if not delivered:
                return "550 refused: %s" % failed
        return "250 OK delivered"


def main():
    args = sys.argv[1:]
    smtp_port, lmtp_port = int(args[0]), int(args[1])
    options = {}
    if "--tls" in args:
        i = args.index("--tls")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(args[i + 1], args[i + 2])
        options["tls_context"] = context
        options["require_starttls"] = False
    if "--auth" in args:
        i = args.index("--auth")
        user, password = args[i + 1].encode(), args[i + 2].encode()

        def authenticator(server, session, envelope, mechanism, auth_data):
            ok = getattr(auth_data, "login", None) == user and getattr(auth_data, "password", None) == password
            return AuthResult(success=ok, auth_data=auth_data)

        options["authenticator"] = authenticator
        options["auth_required"] = True
        # --auth-over-plain: accept AUTH without TLS too (a careless server), to show
        # that the client refuses to send its password there.
        options["auth_require_tls"] = "--auth-over-plain" not in args
    controller = Controller(LmtpRelay(lmtp_port), hostname="127.0.0.1", port=smtp_port, **options)
    controller.start()
    print("smtp relay listening on 127.0.0.1:%d -> lmtp %d" % (smtp_port, lmtp_port), flush=True)
    try:
        asyncio.get_event_loop().run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
