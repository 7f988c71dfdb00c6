"""The catalog sync's machinery: one service's product and prices brought to the app's
version (`ServiceSyncer`), the states compared for drift, the names Stripe sees.

The rules are described in `sync.py`, which holds the services that use this.
"""
from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping

from django.db import IntegrityError, transaction
from django.utils import timezone

from finance.money import NotRepresentable, UnsupportedCurrency, to_minor
from services.models import Service

from ..gateway.client import AccessRevoked, Gateway, GatewayError, InvalidRequest, PriceInfo, ProductInfo
from ..models import SYNC_STATE_TRANSITIONS, PriceLink, ServiceSync, StripeConnection, SyncState
from ..connect.oauth import connection_revoke
from ..runs.tracking import note_failure

METADATA_KEYS = ("crm_service_id", "crm_service_code", "crm_business_id")
PRODUCT_FIELDS = ("name", "description", "active", "metadata", "default_price")


class CatalogSyncError(Exception):
    """A sync could not be done; `message` is fit to show (it is also on the row)."""

    retryable = False

    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


class RetryableSyncError(CatalogSyncError):
    """Stripe was unavailable or rate limiting: the same attempt may succeed later."""

    retryable = True


@dataclass
class SyncOutcome:
    """What one service's sync did. `product` is created/updated/archived/unchanged/skipped."""

    state: str
    product: str = "unchanged"
    prices: Counter = field(default_factory=Counter)
    error: str = ""
    retryable: bool = False
    fatal: bool = False  # the connection is unusable: a run stops


# --- names Stripe sees ------------------------------------------------------------------
def product_id_for(service: Service, account: str, *, generation: int = 0) -> str:
    """The product's own id. Stripe wants it unique within the account; the account's id in
    it keeps it unique among all connected accounts too (the sandbox checks ids globally,
    and exports that mix accounts never confuse two businesses' products)."""
    base = f"crm_{account.removeprefix('acct_')}_b{service.business_id}_s{service.pk}"
    return f"{base}_r{generation}" if generation else base


def lookup_key_for(service: Service, currency: str) -> str:
    """Stable across amount changes: the key moves to the service's current price."""
    return f"crm_b{service.business_id}_s{service.pk}_{currency.lower()}"


def _product_metadata(service: Service) -> dict[str, str]:
    return {"crm_service_id": str(service.pk), "crm_service_code": service.code, "crm_business_id": str(service.business_id)}


def _price_metadata(service: Service) -> dict[str, str]:
    return {"crm_service_id": str(service.pk), "crm_business_id": str(service.business_id)}


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def fingerprint(state: Mapping) -> str:
    return _digest({"product": state.get("product"), "prices": state.get("prices")})


# --- states: what Stripe holds / what the app wants ------------------------------------------
def product_state(product: ProductInfo) -> dict:
    return {
        "name": product.name, "description": product.description or "", "active": product.active,
        "metadata": {k: product.metadata.get(k, "") for k in METADATA_KEYS}, "default_price": product.default_price or "",
    }


def _price_state(price: PriceInfo) -> dict:
    return {"currency": price.currency.upper(), "unit_amount": price.unit_amount, "active": price.active,
            "lookup_key": price.lookup_key or ""}


def desired_prices(service: Service) -> dict[str, int]:
    """{CURRENCY: minor amount} of the service's list prices. An amount Stripe cannot take
    exactly (USD 10.005, KWD 1.235) is refused rather than rounded."""
    out = {}
    for price in service.prices.all():
        try:
            out[price.currency.upper()] = to_minor(price.amount, price.currency, strict=True)
        except (NotRepresentable, UnsupportedCurrency) as exc:
            raise CatalogSyncError(f"{price.currency} price {price.amount}: {exc}") from None
    return out


def _default_currency(desired: Mapping[str, int], business_currency: str) -> str | None:
    if not desired:
        return None
    return business_currency.upper() if business_currency.upper() in desired else sorted(desired)[0]


def check_transition(table, current, new, what):
    if new not in table[current]:
        raise ValueError(f"{what} cannot go from {current} to {new}")


# --- one service ----------------------------------------------------------------------------
class ServiceSyncer:
    """Brings one service's product and prices in Stripe to the app's version.

    `remote_product`/`remote_prices` are what Stripe holds now (None: no product there);
    `links` the service's PriceLinks on this connection. Progress is saved as it goes (the
    product id and each price link right after Stripe answers), so a failure half-way
    leaves nothing unknown behind and the retry carries on from there.
    """

    def __init__(self, *, gw: Gateway, connection: StripeConnection, service: Service, row: ServiceSync,
                 links: list[PriceLink], remote_product: ProductInfo | None, remote_prices: list[PriceInfo],
                 business_currency: str, force: bool = False):
        self.gw, self.connection, self.service, self.row = gw, connection, service, row
        self.account = connection.stripe_user_id
        # A recurring price (a subscription's, linked by an import) is not a list price:
        # the sync neither uses nor archives it.
        recurring = {price.id for price in remote_prices if price.recurring}
        self.links = [link for link in links if link.stripe_price_id not in recurring]
        self.recurring_links = [link for link in links if link.stripe_price_id in recurring]
        # The rows' clean() compares businesses: hand them the objects at hand (no query).
        for obj in (row, *self.links):
            obj.connection, obj.service = connection, service
        self.remote_product = remote_product
        self.remote_prices = list(remote_prices)
        self.business_currency = business_currency
        self.force = force
        self.outcome = SyncOutcome(state=SyncState.SYNCED)
        self.writes = 0
        self.created_price_ids: set[str] = set()
        self.track: dict = {"product": None, "prices": {}}

    # -- entry point --
    def run(self) -> SyncOutcome:
        try:
            self._run()
        except CatalogSyncError as exc:
            self.fail(exc.message, retryable=exc.retryable)
        except AccessRevoked as exc:
            note_failure(exc)  # the current run's event (runs.track_run)
            connection_revoke(stripe_user_id=self.connection.stripe_user_id, livemode=self.connection.livemode)
            self.fail(exc.user_message, fatal=True)
        except GatewayError as exc:
            note_failure(exc)
            self.fail(exc.user_message, retryable=exc.retryable)
        return self.outcome

    def _run(self):
        desired = desired_prices(self.service)
        if self.remote_product is None and self.row.stripe_product_id:
            if not self.force:
                self._drift([{"object": "product", "field": "(the product)", "app": self.row.stripe_product_id,
                              "stripe": "missing (deleted in Stripe)", "synced": self.row.stripe_product_id}])
                return
            # Pushing the app's version over a product deleted in Stripe: a new product
            # (a deleted product's id cannot be used again).
            self.save_row(stripe_product_id="")
        if self.remote_product is None:
            if not self.service.active:
                self.outcome.product = "skipped"  # never in Stripe, nothing to archive
                if self.row.pk is not None:
                    self._finish()
                return
            self._create_product(desired)
        elif not self.row.stripe_product_id:
            # The product with our id is there already (made on an earlier connection).
            self._check_mine(self.remote_product)
            self.save_row(stripe_product_id=self.remote_product.id)
        self.track["product"] = product_state(self.remote_product)
        self.track["product_updated"] = self.remote_product.updated
        linked_ids = {link.stripe_price_id for link in self.links}
        for price in self.remote_prices:
            if price.id in linked_ids:
                self.track["prices"][price.id] = _price_state(price)
        if not self.force and self.row.fingerprint and fingerprint(self.track) != self.row.fingerprint:
            drift = self.drift_details(desired)
            if drift:
                self._drift(drift)
                return
        self._write(desired)
        self._finish()

    # -- creating the product (with its default price) --
    def _create_product(self, desired: Mapping[str, int]) -> None:
        service = self.service
        generation = self.row.version if self.force and self.row.fingerprint else 0
        params: dict[str, Any] = {
            "id": product_id_for(service, self.account, generation=generation), "name": service.name, "active": service.active,
            "metadata": _product_metadata(service),
        }
        if service.description:
            params["description"] = service.description
        currency = _default_currency(desired, self.business_currency)
        if currency:
            params["default_price_data"] = {"currency": currency.lower(), "unit_amount": desired[currency],
                                            "metadata": _price_metadata(service)}
        try:
            product, price = self.gw.product_create(account=self.account, params=params,
                                                    idempotency_key=self._key("product-create", params))
        except InvalidRequest as exc:
            if exc.code != "resource_already_exists":
                raise
            self._adopt_product(params["id"])
            return
        self.writes += 1
        self.outcome.product = "created"
        self.save_row(stripe_product_id=product.id)
        self.remote_product = product
        if price is not None:
            self.outcome.prices["created"] += 1
            self.created_price_ids.add(price.id)
            self._link(price, lookup_key="")
            self.remote_prices = [price]

    def _adopt_product(self, product_id: str) -> None:
        """Our id is taken: an earlier attempt made it (its answer was lost) or an earlier
        connection of this account did. Adopt it if its metadata says it is this service's."""
        product = self.gw.product_retrieve(account=self.account, product_id=product_id)
        self._check_mine(product)
        self.remote_product = product
        self.remote_prices = self.gw.prices_list(account=self.account, product_id=product_id)
        self.save_row(stripe_product_id=product.id)

    def _check_mine(self, product: ProductInfo) -> None:
        mine = product.metadata.get("crm_service_id") == str(self.service.pk) and \
            product.metadata.get("crm_business_id") == str(self.service.business_id)
        if not mine:
            raise CatalogSyncError(f"Stripe already has a product {product.id} that is not this service's.")

    # -- drift --
    def drift_details(self, desired: Mapping[str, int]) -> list[dict]:
        """Fields whose Stripe value is neither the last synced one nor the wanted one."""
        stored = self.row.remote_state or {}
        stored_product = stored.get("product") or {}
        want = self._wanted_product(desired)
        details = []
        for name in PRODUCT_FIELDS:
            now = self.track["product"].get(name)
            if now != stored_product.get(name) and (name not in want or now != want[name]):
                details.append({"object": "product", "field": name, "app": want.get(name, "(not yet known)"),
                                "stripe": now, "synced": stored_product.get(name)})
        wanted_ids = self._wanted_price_ids(desired)
        stored_prices = stored.get("prices") or {}
        for price_id, now in self.track["prices"].items():
            before = stored_prices.get(price_id)
            if before is None:
                continue
            wanted_active = price_id in wanted_ids
            if now["active"] != before["active"] and now["active"] != wanted_active:
                details.append({"object": f"price {price_id}", "field": "active", "app": wanted_active,
                                "stripe": now["active"], "synced": before["active"]})
        return details

    def _drift(self, details: list[dict]):
        self.outcome.state = SyncState.DRIFT
        self.outcome.product = "drift"
        self.save_row(state=SyncState.DRIFT, drift=details, last_error="", last_attempt_at=timezone.now())

    def _wanted_product(self, desired: Mapping[str, int]) -> dict:
        service = self.service
        want = {"name": service.name, "description": service.description or "", "active": service.active,
                "metadata": _product_metadata(service)}
        currency = _default_currency(desired, self.business_currency)
        link = self._link_for(currency, desired[currency]) if currency else None
        if link is not None:
            want["default_price"] = link.stripe_price_id
        return want

    def _wanted_price_ids(self, desired: Mapping[str, int]) -> set[str]:
        return {link.stripe_price_id for link in self.links if desired.get(link.currency) == link.amount_minor}

    def _link_for(self, currency: str, amount: int) -> PriceLink | None:
        return next((link for link in self.links if link.currency == currency and link.amount_minor == amount), None)

    # -- writing the differences --
    def _write(self, desired: Mapping[str, int]):
        service = self.service
        replaceable = self._replaceable()
        current_links: dict[str, PriceLink] = {}
        for currency, amount in sorted(desired.items()):
            key = self._lookup_key(currency)
            link = self._link_for(currency, amount) or self._adopt_price(currency, amount, key)
            if link is None:
                self._check_amount_free(currency, amount)
                params = {"product": self.remote_product.id, "currency": currency.lower(), "unit_amount": amount,
                          "lookup_key": key, "transfer_lookup_key": True, "metadata": _price_metadata(service)}
                price = self.gw.price_create(account=self.account, params=params,
                                             idempotency_key=self._key(f"price-create-{currency}-{amount}", params))
                self.writes += 1
                self.outcome.prices["created"] += 1
                self.created_price_ids.add(price.id)
                link = self._link(price, lookup_key=key)
            else:
                now = self.track["prices"].get(link.stripe_price_id)
                if now is None or not now["active"] or now["lookup_key"] != key:
                    params = {"active": True, "lookup_key": key, "transfer_lookup_key": True}
                    price = self.gw.price_update(account=self.account, price_id=link.stripe_price_id, params=params,
                                                 idempotency_key=self._key(f"price-update-{link.stripe_price_id}", params))
                    self.writes += 1
                    if link.stripe_price_id not in self.created_price_ids:
                        self.outcome.prices["updated"] += 1
                    self._track_price(price)
                    self._update_link(link, active=True, lookup_key=key)
                elif link.stripe_price_id not in self.created_price_ids:
                    self.outcome.prices["unchanged"] += 1
            current_links[currency] = link

        want = self._wanted_product(desired)
        changes = {name: value for name, value in want.items() if self.track["product"].get(name) != value}
        if changes:
            product = self.gw.product_update(account=self.account, product_id=self.remote_product.id, params=changes,
                                             idempotency_key=self._key("product-update", changes))
            self.writes += 1
            self.track["product"] = product_state(product)
            self.track["product_updated"] = product.updated
            if self.outcome.product != "created":
                self.outcome.product = "archived" if changes.get("active") is False else "updated"

        # Archive last, once the default price has moved off the old one.
        current_ids = {link.stripe_price_id for link in current_links.values()}
        for link in self.links:
            if link.stripe_price_id in current_ids:
                continue
            now = self.track["prices"].get(link.stripe_price_id)
            if now is not None and now["active"] and (link.stripe_price_id in replaceable
                                                      or link.stripe_price_id in self.created_price_ids):
                params = {"active": False}
                price = self.gw.price_update(account=self.account, price_id=link.stripe_price_id, params=params,
                                             idempotency_key=self._key(f"price-archive-{link.stripe_price_id}", params))
                self.writes += 1
                self.outcome.prices["archived"] += 1
                self._track_price(price)
            if link.active:
                self._update_link(link, active=False, lookup_key=(now or {}).get("lookup_key", link.lookup_key))

    def _replaceable(self) -> set[str]:
        """The linked prices this sync may archive once the service no longer uses them,
        as Stripe held them before its writes: the prices made for this service (our
        metadata), the product's default price and those holding the service's lookup key
        in their currency (the prices the service was using, its own or the account's it
        took over). Any other price is the account's: it may be in use outside the app
        (payment links, its other tools), so it is left active, whatever an older import
        linked (the import now links only the price a service takes over)."""
        ours = (str(self.service.pk), str(self.service.business_id))
        made = {p.id for p in self.remote_prices
                if (p.metadata.get("crm_service_id"), p.metadata.get("crm_business_id")) == ours}
        default = (self.track["product"] or {}).get("default_price") or ""
        keyed = {price_id for price_id, state in self.track["prices"].items()
                 if state["lookup_key"] and state["lookup_key"] == self._lookup_key(state["currency"])}
        return made | keyed | ({default} if default else set())

    def _check_amount_free(self, currency: str, amount: int) -> None:
        """A recurring price linked (by an import) at this amount holds the service's link
        for it: a one-time price of the same amount could not be linked."""
        taken = next((link for link in self.recurring_links
                      if link.currency == currency and link.amount_minor == amount), None)
        if taken is not None:
            raise CatalogSyncError(
                f"The {currency} list price is the amount of Stripe price {taken.stripe_price_id}, a recurring "
                f"(subscription) price, which invoices cannot use: change the service's {currency} price.")

    def _lookup_key(self, currency: str) -> str:
        """The service's lookup key in `currency`: ours, unless a price of the account
        linked by the import carries its own (the account's code may look prices up by it):
        that one stays and moves to the current price, as ours would."""
        ours = lookup_key_for(self.service, currency)
        theirs = [link for link in self.links if link.currency == currency and link.lookup_key
                  and link.lookup_key != ours]
        if not theirs:
            return ours
        return sorted(theirs, key=lambda link: not link.active)[0].lookup_key

    def _adopt_price(self, currency: str, amount: int, key: str) -> PriceLink | None:
        """A price of our product with this currency and amount that we hold no link for
        (made by a lost answer, or on an earlier connection): use it, never make another."""
        candidates = [
            p for p in self.remote_prices
            if p.product == self.remote_product.id and p.currency.upper() == currency and p.unit_amount == amount
            and not p.recurring
            and (p.lookup_key == key or p.metadata.get("crm_service_id") == str(self.service.pk))
        ]
        if not candidates:
            return None
        price = sorted(candidates, key=lambda p: (not p.active, p.lookup_key != key))[0]
        return self._link(price, lookup_key=price.lookup_key)

    # -- bookkeeping --
    def _track_price(self, price: PriceInfo):
        state = _price_state(price)
        if state["lookup_key"]:
            # transfer_lookup_key took the key off whichever price had it (as Stripe does).
            for other_id, other in self.track["prices"].items():
                if other_id != price.id and other["lookup_key"] == state["lookup_key"]:
                    other["lookup_key"] = ""
        self.track["prices"][price.id] = state

    def _link(self, price: PriceInfo, *, lookup_key: str) -> PriceLink:
        self._track_price(price)
        link = PriceLink(
            business_id=self.service.business_id, connection=self.connection, service=self.service,
            currency=price.currency.upper(), amount_minor=price.unit_amount, stripe_price_id=price.id,
            active=price.active, lookup_key=lookup_key or "",
        )
        try:
            with transaction.atomic():
                clean_and_save(link)
        except IntegrityError:
            # Another worker recorded the same price first (same idempotency key, same id).
            link = PriceLink.objects.get(connection=self.connection, stripe_price_id=price.id)
        self.links.append(link)
        return link

    def _update_link(self, link: PriceLink, **fields):
        if all(getattr(link, k) == v for k, v in fields.items()):
            return
        for name, value in fields.items():
            setattr(link, name, value)
        clean_and_save(link, update_fields=[*fields, "updated_at"])

    def _key(self, what: str, params: Mapping) -> str:
        return f"crm-{self.connection.pk}-s{self.service.pk}-v{self.row.version}-{what}-{_digest(params)[:16]}"

    def save_row(self, **fields):
        row = self.row
        if "state" in fields:
            check_transition(SYNC_STATE_TRANSITIONS, row.state, fields["state"], "A service sync")
        changed = [name for name, value in fields.items() if getattr(row, name) != value]
        for name in changed:
            setattr(row, name, fields[name])
        if row.pk is None:
            clean_and_save(row)
        elif changed:
            clean_and_save(row, update_fields=[*changed, "updated_at"])

    def _finish(self):
        state = dict(self.track) if self.track["product"] is not None else {}
        fields: dict[str, Any] = {"state": SyncState.SYNCED, "last_error": "", "drift": [], "remote_state": state,
                                  "fingerprint": fingerprint(state) if state else ""}
        if self.writes or self.row.state != SyncState.SYNCED or self.row.synced_at is None:
            now = timezone.now()
            fields.update(synced_at=now, last_attempt_at=now)
        if self.writes:
            fields["version"] = self.row.version + 1
        self.save_row(**fields)

    def fail(self, message: str, *, retryable: bool = False, fatal: bool = False):
        self.outcome = SyncOutcome(state=SyncState.ERROR, product="failed", prices=self.outcome.prices,
                                   error=message, retryable=retryable, fatal=fatal)
        fields: dict[str, Any] = {"state": SyncState.ERROR, "last_error": message, "last_attempt_at": timezone.now()}
        if self.track["product"] is not None:
            # What Stripe holds now includes the writes that did succeed: without this the
            # next sync would take them for changes made by hand.
            fields.update(remote_state=dict(self.track), fingerprint=fingerprint(self.track))
        if self.writes:
            # The writes that were answered are recorded; the next attempt must not replay
            # their keys (a later write of the same field would be answered from the past).
            fields["version"] = self.row.version + 1
        if self.row.state == SyncState.DRIFT and not self.force:
            fields.pop("state")
        self.save_row(**fields)


def clean_and_save(obj, *, update_fields=None):
    # Foreign keys and unique constraints are left to the database: the rows come from this
    # module's own queries, and a duplicate (two workers) is an IntegrityError handled by
    # the caller. Validating them here would cost four queries per row on a 1,000-service run.
    obj.full_clean(exclude=["business", "connection", "service", "contact"], validate_unique=False,
                   validate_constraints=False)
    obj.save(update_fields=update_fields)
    return obj


def row_for(connection: StripeConnection, service: Service) -> ServiceSync:
    row = ServiceSync.objects.filter(connection=connection, service=service).first()
    return row or ServiceSync(business_id=service.business_id, connection=connection, service=service)
