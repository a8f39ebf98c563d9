"""The helpers every pattern subclasses, and the command-line glue they share.

``Queue`` talks to one queue, ``Exchange`` to an exchange and the queue bound
to it; ``cli`` parses the options every script takes and turns broker errors
into one ``error:`` line. Each file has one job: ``connection``, ``publishing``,
``consuming``, ``poison`` (what consuming sets aside), ``errors`` (what went
wrong, in words) and ``topology`` (Queue and Exchange). What one pattern alone
needs lives in its folder.
"""

from common.connection import BrokerError
from common.topology import Exchange, Queue

__all__ = ["BrokerError", "Exchange", "Queue"]
