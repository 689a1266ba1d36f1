"""The development console backend prints emails a person can read and copy links from."""

from __future__ import annotations

import io

from django.core.mail import EmailMessage

from gallery.mail import ReadableConsoleBackend


def test_a_long_link_is_printed_whole():
    link = "http://127.0.0.1:8000/accounts/confirm-email/MQ:1xUn62:ENzVwq9LmMuQqubvpT9qmsZWFW01FS-OPS2Se__Revg/"
    body = f"You’re receiving this email because you signed up.\n\nTo confirm, go to {link}\n"
    stream = io.StringIO()
    sent = ReadableConsoleBackend(stream=stream).send_messages(
        [EmailMessage("Please confirm", body, "noreply@example.org", ["ada@example.org"])]
    )
    assert sent == 1
    printed = stream.getvalue()
    assert f"To confirm, go to {link}" in printed.splitlines()
    assert "Subject: Please confirm" in printed and "To: ada@example.org" in printed
    assert "You’re receiving" in printed  # not quoted-printable
