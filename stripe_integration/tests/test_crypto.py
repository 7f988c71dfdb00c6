import pytest
from cryptography.fernet import Fernet
from django.db import connection

from stripe_integration.crypto import Secret, decrypt, encrypt
from stripe_integration.models import StripeConnection
from stripe_integration.gateway.types import WEBHOOK_SECRET_PREFIX

pytestmark = pytest.mark.django_db


def test_encrypted_field_stores_ciphertext_only(business_a):
    conn = StripeConnection.objects.create(business=business_a, stripe_user_id="acct_1", access_token="sk_test_token_abc", refresh_token="rt_secret_xyz")
    with connection.cursor() as cur:
        cur.execute("SELECT access_token, refresh_token FROM stripe_integration_stripeconnection WHERE id = %s", [conn.pk])
        raw_access, raw_refresh = cur.fetchone()
    assert "token_abc" not in raw_access and "rt_secret" not in raw_refresh
    assert decrypt(raw_access) == "sk_test_token_abc"
    loaded = StripeConnection.objects.get(pk=conn.pk)
    assert loaded.access_token == "sk_test_token_abc"
    assert "token_abc" not in repr(loaded.access_token)


def test_secret_repr_hides_value():
    assert "abc" not in repr(Secret("abc"))
    assert Secret("abc") == "abc"


def test_key_rotation_old_ciphertext_still_decrypts(settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    token = encrypt(WEBHOOK_SECRET_PREFIX + "rotating")
    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    assert decrypt(token) == WEBHOOK_SECRET_PREFIX + "rotating"
    assert Fernet(new.encode()).decrypt(encrypt("x").encode()) == b"x"
