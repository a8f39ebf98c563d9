"""What went wrong, in words: why a connection failed (reason()) or ended (lost()), and
what to do about a declaration the broker refused (hint()). Each says what to check,
never a traceback."""

import ipaddress
import re
import shlex
import socket
import ssl

import pika

# A blocked-connection timeout: the broker stopped reading from publishers (an alarm).
BLOCKED = (
    "the broker blocked publishing and did not resume in time: it is short of memory or "
    "disk (see `rabbitmqctl status`, alarms)"
)


def reason(error: BaseException, url: str) -> str:
    """What a failed connection to url means, and what to check, in words."""
    given = pika.URLParameters(url)
    if isinstance(error, pika.exceptions.ProbableAuthenticationError):
        if given.credentials.username == "guest" and not on_this_machine(given.host):
            # The broker refuses a wrong password and guest from afar in the same words.
            return (
                "the broker refused the user guest: check the password; and unless the broker "
                "lets guest in from other machines (loopback_users; the official Docker image "
                "does, a package install does not), use a user of your own (rabbitmqctl add_user)"
            )
        return "the broker refused the user name or password: check them in the URL"
    if isinstance(error, pika.exceptions.ProbableAccessDeniedError):
        return f"the virtual host {given.virtual_host!r} does not exist, or the user may not use it"
    if isinstance(error, pika.exceptions.ConnectionClosedByBroker):
        return f"the broker closed the connection: {error.reply_text}"
    if isinstance(error, ssl.SSLError):
        if error.reason == "CERTIFICATE_VERIFY_FAILED":
            why = getattr(error, "verify_message", None) or error.reason
            if "mismatch" in why or "expired" in why:  # trusted, but not for this host, or old
                return f"TLS failed: the broker's certificate: {why}"
            return (
                f"TLS failed ({why}): if your own CA signed the broker's "
                "certificate, name its certificate with SSL_CERT_FILE=ca.pem"
            )
        return f"TLS failed ({error.reason}): is that port the broker's TLS port (5671)?"
    if isinstance(error, UnicodeError):
        return "the host name is not valid"
    if isinstance(error, socket.gaierror):
        return f"the host name does not resolve ({error.strerror})"
    if "Timeout" in repr(error):  # pika's stack or socket time-out
        return "something answers there, but not an AMQP broker (it timed out)"
    return "no broker answers there: is RabbitMQ running, and are host and port right?"


def lost(error: BaseException) -> str:
    """Why an open connection ended, in words: the broker's reason when it gave one (a
    restart says CONNECTION_FORCED), else only that it dropped (a crash, the network)."""
    if isinstance(error, pika.exceptions.ConnectionClosedByBroker):
        return f"the broker closed the connection: {error.reply_text}"
    return "the connection dropped"


def on_this_machine(host: str) -> bool:
    """Whether host names this machine (loopback), where RabbitMQ lets guest log in."""
    try:
        return host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


INEQUIVALENT = re.compile(
    r"inequivalent arg '([^']+)' for (queue|exchange) '([^']*)' in vhost '([^']*)': "
    r"received (.+) but current is (.+)$"
)


def hint(reply_text: str) -> str:
    """What to do about a declaration the broker refused (PRECONDITION_FAILED): the
    queue or exchange exists with other settings than this script declares."""
    found = INEQUIVALENT.search(reply_text)
    if not found:
        return ""
    setting, kind, name, vhost, *values = found.groups()
    # "the value 'quorum' of type 'longstr'" says no more than "'quorum'"
    asked, current = (re.sub(r"the value ('[^']*') of type '\w+'", r"\1", v) for v in values)
    if setting == "x-queue-type" and current == "none":  # RabbitMQ 3's word for classic
        current = "'classic'"
    said = f"this script declares the {kind} {name!r} with {setting} {asked}, but it has {current}"
    if kind == "exchange":
        return f" ({said}: delete it, in the management UI's Exchanges tab, and run again)"
    where = "" if vhost == "/" else f" -p {shlex.quote(vhost)}"
    delete = f"`rabbitmqctl delete_queue{where} {name}`"
    existing = {"none": "classic", "'classic'": "classic", "'quorum'": "quorum"}.get(current)
    if setting == "x-queue-type" and existing and asked != "'stream'":  # QUEUE_TYPE: not streams
        return f" ({said}: run with QUEUE_TYPE={existing}, or delete it with {delete})"
    return f" ({said}: delete it with {delete} and run again)"
