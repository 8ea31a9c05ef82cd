"""Fixes to LocalStack itself that a docker-free run needs."""

import logging

from localstack.runtime import hooks

LOG = logging.getLogger(__name__)


@hooks.on_infra_start()
def wake_hypercorn_loop_on_shutdown():
    """SIGTERM could leave LocalStack running for good (GATEWAY_SERVER=hypercorn).

    ``HypercornRuntimeServer.shutdown`` runs in a "Runtime-Shutdown" thread and ends with
    ``self.loop.stop()``: from a thread other than the loop's, that only sets a flag, and the main
    thread's event loop, by then idle in ``epoll_wait`` without a timer (the listeners are closed),
    never wakes to read it (a signal does not help: PEP 475 retries the wait). Seen here: after
    "[shutdown] Stopping all services" the process stayed up for minutes. Scheduling the stop with
    ``call_soon_threadsafe`` writes to the loop's self-pipe, so it returns and the process exits.
    """
    from localstack.runtime.server.hypercorn import HypercornRuntimeServer

    original = HypercornRuntimeServer.shutdown
    if getattr(original, "_concertmaster_patched", False):
        return

    def shutdown(self):
        original(self)
        try:
            self.loop.call_soon_threadsafe(self.loop.stop)
        except RuntimeError:  # loop already closed
            pass

    shutdown._concertmaster_patched = True
    HypercornRuntimeServer.shutdown = shutdown
