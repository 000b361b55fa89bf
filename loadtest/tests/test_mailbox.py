"""Reading e-mail codes from the stack's mail folder, as Django's file e-mail backend writes it."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from prepare import MailBox  # noqa: E402


def _message(to: str, code: str) -> str:
    # What django.core.mail.backends.filebased writes per message: the message, then a rule.
    return (
        'Content-Type: text/plain; charset="utf-8"\n'
        "MIME-Version: 1.0\n"
        "Content-Transfer-Encoding: 7bit\n"
        "Subject: Your Drop Shop verification code\n"
        "From: Drop Shop <no-reply@dropshop.local>\n"
        f"To: {to}\n"
        "\n"
        "Welcome to Drop Shop.\n\n"
        f"Your code: {code}\n\n"
        "It works for 10 minutes.\n"
        "\n" + "-" * 79 + "\n"
    )


def test_a_message_appended_to_a_file_already_read_is_found(tmp_path):
    # The backend names a file by the second and a connection's id(); a new connection in the
    # same second can get the id of one just freed, and appends to the same file.
    mail_file = tmp_path / "20260101-120000-140000000000000.log"
    mail_file.write_text(_message("first@loadtest.example.com", "111111"))
    box = MailBox(tmp_path)
    assert box.code_for("first@loadtest.example.com", timeout=5) == "111111"

    with mail_file.open("a") as f:
        f.write(_message("second@loadtest.example.com", "222222"))
    assert box.code_for("second@loadtest.example.com", timeout=5) == "222222"


def test_a_message_half_written_is_read_once_it_is_whole(tmp_path):
    mail_file = tmp_path / "20260101-120000-140000000000001.log"
    whole = _message("later@loadtest.example.com", "333333")
    mail_file.write_text(_message("early@loadtest.example.com", "444444") + whole[:40])
    box = MailBox(tmp_path)
    assert box.code_for("early@loadtest.example.com", timeout=5) == "444444"
    with mail_file.open("a") as f:
        f.write(whole[40:])
    assert box.code_for("later@loadtest.example.com", timeout=5) == "333333"
