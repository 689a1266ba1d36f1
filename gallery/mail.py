"""Email in development: a console backend a person can read and copy links from.

Django's console backend prints each message's MIME source, whose text is quoted-printable
wrapped at 76 characters, so a verification link arrives cut in two by ``=`` soft line
breaks. ``ReadableConsoleBackend`` prints the headers that matter and the plain-text body
as sent, one line per line. SMTP (``EMAIL_HOST``) is unaffected.
"""

from __future__ import annotations

from django.core.mail import EmailMessage
from django.core.mail.backends.console import EmailBackend


def readable(message: EmailMessage) -> str:
    """``message`` as text: From, To, Subject, a blank line, the body (not MIME-encoded), a rule."""
    lines = [
        f"From: {message.from_email}",
        f"To: {', '.join(message.to)}",
        f"Subject: {message.subject}",
        "",
        message.body.rstrip("\n"),
        "-" * 79,
    ]
    return "\n".join(lines) + "\n"


class ReadableConsoleBackend(EmailBackend):
    """Django's console backend, printing ``readable(message)`` instead of the MIME source."""

    def write_message(self, message: EmailMessage) -> None:
        self.stream.write(readable(message))
