"""stripe_sandbox: an offline, stateful stand-in for Stripe's HTTP API.

The app talks to it with the real stripe-python client, only with another base
address. See README.md.
"""

from .app import Sandbox
from .server import make_server, start_in_thread

__all__ = ["Sandbox", "make_server", "start_in_thread"]
