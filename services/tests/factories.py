from decimal import Decimal

import factory

from crm.tests.factories import BusinessFactory
from services.models import Service, ServicePrice


class ServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Service

    business = factory.SubFactory(BusinessFactory)
    code = factory.Sequence(lambda n: f"SVC-{n:04d}")
    name = factory.Sequence(lambda n: f"Service {n}")


class ServicePriceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ServicePrice

    service = factory.SubFactory(ServiceFactory)
    business = factory.SelfAttribute("service.business")
    currency = "USD"
    amount = Decimal("100.00")
