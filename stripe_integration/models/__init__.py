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
# --- webhooks (issue 7): the inbox of Stripe events ---
from .webhooks import (  # noqa: F401,E402
    DONE_STATUSES,
    DeliverySource,
    DeliveryStatus,
    WebhookDelivery,
)
# --- catalog and customers (issue 5): links to Stripe products, prices, customers ---
from .sync import (  # noqa: F401,E402
    ACTIVE_RUN_STATUSES,
    SYNC_RUN_TRANSITIONS,
    SYNC_STATE_TRANSITIONS,
    CustomerLink,
    CustomerOrigin,
    CustomerState,
    PriceLink,
    ServiceSync,
    SyncRun,
    SyncRunKind,
    SyncRunStatus,
    SyncState,
)
# --- invoices (issue 6): tax rates, coupons, product the invoice push reuses ---
from .invoicing import (  # noqa: F401,E402
    INVOICE_RUN_TRANSITIONS,
    BillingObjectKind,
    InvoiceRun,
    InvoiceRunStatus,
    StripeBillingObject,
)
# --- import of an account's history (issue 15) ---
from .importing import (  # noqa: F401,E402
    IMPORT_PHASES,
    IMPORT_TRANSITIONS,
    ImportedObject,
    ImportRules,
    ImportStatus,
    StripeImport,
    UncollectibleAs,
)
