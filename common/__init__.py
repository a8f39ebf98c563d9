"""The helpers every pattern subclasses, and the command-line glue they share.

``Queue`` talks to one queue, ``Exchange`` to an exchange and the queue bound
to it; ``cli`` parses the options every script takes and turns broker errors
into one ``error:`` line.
"""

from common.broker import BrokerError, Exchange, Queue

__all__ = ["BrokerError", "Exchange", "Queue"]
