"""Test and live, side by side (issue 15): which modes the platform has keys for, the key
and Connect client id of each, and the check that refuses a key in the wrong slot.

Settings, per mode: STRIPE_TEST_SECRET_KEY / STRIPE_LIVE_SECRET_KEY with
STRIPE_TEST_CONNECT_CLIENT_ID / STRIPE_LIVE_CONNECT_CLIENT_ID. STRIPE_SECRET_KEY (with
STRIPE_CONNECT_CLIENT_ID) stays the single-mode form: it fills the slot of its own mode,
told by its prefix (sk_test_/rk_test_ or the live ones). A mode is a bool, `livemode`, as
Stripe writes it on every object.
"""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from ..gateway.client import LIVE_KEY_PREFIXES, is_live_key

TEST_KEY_PREFIXES = ("sk_test_", "rk_test_")
MODES = (True, False)  # live first: the default when both are there


def mode_label(livemode: bool) -> str:
    return "Live mode" if livemode else "Test mode"


def mode_name(livemode: bool) -> str:
    return "live" if livemode else "test"


def _slot(livemode: bool) -> tuple[str, str]:
    """(key, client id) of one mode as configured, before any check."""
    if livemode:
        key, client_id = settings.STRIPE_LIVE_SECRET_KEY, settings.STRIPE_LIVE_CONNECT_CLIENT_ID
    else:
        key, client_id = settings.STRIPE_TEST_SECRET_KEY, settings.STRIPE_TEST_CONNECT_CLIENT_ID
    single = settings.STRIPE_SECRET_KEY
    if not key and single and is_live_key(single) == livemode:
        key = single
    if key and not client_id:
        client_id = settings.STRIPE_CONNECT_CLIENT_ID
    return key, client_id


def settings_check() -> None:
    """ImproperlyConfigured, naming the setting, for a key in the wrong slot: a live key as
    STRIPE_TEST_SECRET_KEY, a test key as STRIPE_LIVE_SECRET_KEY, anything that is no
    Stripe secret key, or a STRIPE_SECRET_KEY that contradicts the key of its mode.
    The keys themselves never appear in the message."""
    test, live, single = settings.STRIPE_TEST_SECRET_KEY, settings.STRIPE_LIVE_SECRET_KEY, settings.STRIPE_SECRET_KEY
    if test and not test.startswith(TEST_KEY_PREFIXES):
        what = "a live-mode key" if is_live_key(test) else "not a Stripe test secret key"
        raise ImproperlyConfigured(f"STRIPE_TEST_SECRET_KEY is {what}: it must start with sk_test_ or rk_test_.")
    if live and not live.startswith(LIVE_KEY_PREFIXES):
        what = "a test-mode key" if live.startswith(TEST_KEY_PREFIXES) else "not a Stripe live secret key"
        raise ImproperlyConfigured(f"STRIPE_LIVE_SECRET_KEY is {what}: it must start with the live prefix "
                                   "(sk_ or rk_ followed by live_).")
    if single:
        if not single.startswith(TEST_KEY_PREFIXES + LIVE_KEY_PREFIXES):
            raise ImproperlyConfigured("STRIPE_SECRET_KEY is not a Stripe secret key (sk_/rk_, test_ or live_).")
        same_slot = live if is_live_key(single) else test
        if same_slot and same_slot != single:
            name = "STRIPE_LIVE_SECRET_KEY" if is_live_key(single) else "STRIPE_TEST_SECRET_KEY"
            raise ImproperlyConfigured(f"STRIPE_SECRET_KEY and {name} are both set to different keys of the same "
                                       "mode: set only one of them.")


def secret_key(livemode: bool) -> str:
    return _slot(livemode)[0]


def client_id(livemode: bool) -> str:
    return _slot(livemode)[1]


def configured_modes() -> list[bool]:
    """The modes the platform has a secret key for, live first ([] with none)."""
    return [mode for mode in MODES if secret_key(mode)]


def default_livemode() -> bool:
    """The mode used when nothing names one: live when the platform has a live key, else test."""
    modes = configured_modes()
    return modes[0] if modes else False
