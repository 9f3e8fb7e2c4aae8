#!/usr/bin/python3
"""A real SMTP server (aiosmtpd) that delivers every accepted message into Dovecot by LMTP.

Used by the test suite as the "SMTP server that delivers into Dovecot" for POP3-only
mailboxes. Usage: smtp_relay.py SMTP_PORT LMTP_PORT
"""
import asyncio
import smtplib
import sys

from aiosmtpd.controller import Controller


class LmtpRelay:
    def __init__(self, lmtp_port):
        self.lmtp_port = lmtp_port

    async def handle_DATA(self, server, session, envelope):
        def deliver():
            with smtplib.LMTP("127.0.0.1", self.lmtp_port) as lmtp:
                return lmtp.sendmail(envelope.mail_from, envelope.rcpt_tos, envelope.original_content)

        try:
            refused = await asyncio.get_running_loop().run_in_executor(None, deliver)
        except smtplib.SMTPRecipientsRefused as e:
            return "550 recipient refused by the mail store: %s" % e
        except Exception as e:  # Dovecot down: tell the client to retry later.
            return "451 mail store unavailable: %s" % e
        if refused:
            return "550 refused: %s" % refused
        return "250 OK delivered"


def main():
    smtp_port, lmtp_port = int(sys.argv[1]), int(sys.argv[2])
    controller = Controller(LmtpRelay(lmtp_port), hostname="127.0.0.1", port=smtp_port)
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
