"""Waking the delivery worker of this process when the receive path queues a 'deliver' job.

The receive path stores a business message and its 'deliver' job in one transaction; after the
commit it calls ``notify`` so the worker in the same process starts at once instead of at its
next poll (``worker_poll_seconds``). Workers in other processes or on other nodes still find the
job by polling: a missed wake-up only delays a delivery, it never loses one (docs/delivery.md).
"""

from __future__ import annotations

from ggk_ebms.wakeup import Wakeup

_deliver = Wakeup()

#: Call a listener after every committed 'deliver' job in this process; returns its remover.
add_listener = _deliver.add_listener
#: A 'deliver' job was committed: wake every listening worker (thread-safe, never raises).
notify = _deliver.notify
