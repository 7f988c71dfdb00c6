"""Project-wide fixtures: two businesses with a user of each role, for tenancy tests."""
import pytest

from crm.models import Role


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
