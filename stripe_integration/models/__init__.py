"""Models of the Stripe integration, one module per area, re-exported here.

- connection: the business's StripeConnection, the platform's Connect webhook endpoint,
  per-business IntegrationSettings.
"""
from .connection import (  # noqa: F401
    ConnectionStatus,
    ConnectWebhookEndpoint,
    IntegrationSettings,
    LineOrder,
    StripeConnection,
)
