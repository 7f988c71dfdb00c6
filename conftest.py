"""Project-wide fixtures: two businesses with a user of each role, for tenancy tests."""
import pytest

from crm.models import Role
from tests_support.celery_worker import celery_eager_except_worker_tests, celery_worker  # noqa: F401
from tests_support.sandbox import stripe_env, stripe_sandbox_server  # noqa: F401  (fixtures)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2's deliberate slowness costs ~0.3 s per user created in tests.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def business_a(db):
    from crm.tests.factories import BusinessFactory

    return BusinessFactory(name="Alpha Ltd", slug="alpha")


@pytest.fixture
def business_b(db):
    from crm.tests.factories import BusinessFactory

    return BusinessFactory(name="Beta Ltd", slug="beta")


@pytest.fixture
def finance_a(business_a):
    from crm.tests.factories import member

    return member(business_a, Role.FINANCE, username="finance_a")


@pytest.fixture
def staff_a(business_a):
    from crm.tests.factories import member

    return member(business_a, Role.STAFF, username="staff_a")


@pytest.fixture
def owner_a(business_a):
    from crm.tests.factories import member

    return member(business_a, Role.OWNER, username="owner_a")


@pytest.fixture
def finance_b(business_b):
    from crm.tests.factories import member

    return member(business_b, Role.FINANCE, username="finance_b")
