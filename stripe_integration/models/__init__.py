"""Models of the Stripe integration, one module per area, re-exported here.

- connection: the business's StripeConnection, the platform's Connect webhook endpoint,
  per-business IntegrationSettings (with auto-disable's settings and state).
- payouts: a connected account's payouts and the balance transactions each carried.
- runs: IntegrationRun and IntegrationEvent (issue 15).
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
# --- payouts and fees (issue 15): payouts and the balance transactions they carried ---
from .payouts import (  # noqa: F401,E402
    ItemException,
    Payout,
    PayoutItem,
    PayoutStatus,
)
# --- rules and custom fields (issue 15) ---
from .rules import (  # noqa: F401,E402
    FILTER_MAX_LENGTH,
    WRITABLE_NATIVE,
    CustomFieldMapping,
    StripeField,
    StripeRules,
)
# --- runs and events, auto-disable (issue 15) ---
from .runs import (  # noqa: F401,E402
    FAILED_RUN_STATUSES,
    FINISHED_RUN_STATUSES,
    LOG_MAX_CHARS,
    REQUEST_IDS_MAX,
    RUN_TRANSITIONS,
    EventAction,
    EventKind,
    IntegrationEvent,
    IntegrationRun,
    RunKind,
    RunStatus,
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
