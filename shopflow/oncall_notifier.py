"""E-mail on-call when a task fails: Airflow's notifier mechanism, SMTP via a connection.

Every task of Shopflow's DAGs has :class:`FailureEmailNotifier` as ``on_failure_callback``
(see :func:`shopflow.orchestration.default_args`). It sends nothing unless the
``SHOPFLOW_ALERT_EMAILS`` setting names recipients; the mail is the task's failure message
(what failed, what to do, the runbook and Data Docs links) with the task, the date and a link
to the task's log (:func:`shopflow.oncall.failure_summary`).

The SMTP server is the Airflow connection ``shopflow_smtp`` (host, port, optional login and
password; extras: ``from_email``, ``starttls`` true/false), e.g. from the environment::

    AIRFLOW_CONN_SHOPFLOW_SMTP='smtp://user:secret@mail.example.com:587?from_email=airflow%40example.com&starttls=true'

A notifier that cannot send logs why and does not hide the task's own failure.
"""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)

SMTP_CONN_ID = "shopflow_smtp"


class FailureEmailNotifier(BaseNotifier):
    """``on_failure_callback`` that mails the failure summary to ``SHOPFLOW_ALERT_EMAILS``."""

    def __init__(self, conn_id: str = SMTP_CONN_ID, timeout: float = 30.0):
        super().__init__()
        self.conn_id = conn_id
        self.timeout = timeout

    def notify(self, context) -> None:
        from shopflow.settings import load_settings

        settings = load_settings()
        if not settings.alert_emails:
            return  # off unless recipients are configured
        subject, body = summary_from_context(context, settings)
        try:
            send_mail(self.conn_id, settings.alert_emails, subject, body, timeout=self.timeout)
        except Exception:  # an alert that cannot go out must not mask the task's failure
            log.exception(
                "could not e-mail the failure of %s to %s", subject, settings.alert_emails
            )


def summary_from_context(context, settings) -> tuple[str, str]:
    """The alert's subject and body from a task's Airflow context."""
    from shopflow.oncall import failure_summary

    ti = context["ti"]
    exception = context.get("exception")
    return failure_summary(
        dag_id=ti.dag_id,
        task_id=ti.task_id,
        run_id=ti.run_id,
        ds=context.get("ds"),
        message=str(exception) if exception is not None else "",
        settings=settings,
        map_index=getattr(ti, "map_index", None),
    )


def send_mail(
    conn_id: str, recipients: tuple[str, ...], subject: str, body: str, *, timeout: float = 30.0
) -> None:
    """Send a plain-text mail through the SMTP server of Airflow connection ``conn_id``."""
    from airflow.sdk import Connection

    conn = Connection.get(conn_id)
    extra = conn.extra_dejson
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = extra.get("from_email") or (conn.login or "shopflow@localhost")
    message["To"] = ", ".join(recipients)
    message.set_content(body)
    with smtplib.SMTP(conn.host or "localhost", conn.port or 25, timeout=timeout) as smtp:
        if str(extra.get("starttls", "false")).lower() == "true":
            smtp.starttls()
        if conn.login:
            smtp.login(conn.login, conn.password or "")
        smtp.send_message(message)
