import factory
from django.contrib.auth import get_user_model

from crm.models import Business, Individual, Membership, Opportunity, Organization, Role, Ticket


class BusinessFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Business

    name = factory.Sequence(lambda n: f"Business {n}")
    slug = factory.Sequence(lambda n: f"business-{n}")
    country = "GB"
    default_currency = "GBP"
    finance_enabled = True


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", "pw")

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    business = factory.SubFactory(BusinessFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.STAFF


def member(business, role=Role.STAFF, **user_kwargs):
    """A user with a membership of `role` in `business`; finance/owner get admin access."""
    user_kwargs.setdefault("is_staff", role != Role.STAFF)
    user = UserFactory(**user_kwargs)
    MembershipFactory(business=business, user=user, role=role)
    return user


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    business = factory.SubFactory(BusinessFactory)
    name = factory.Sequence(lambda n: f"Org {n} Ltd")
    billing_email = factory.Sequence(lambda n: f"billing{n}@org.example")
    country = "GB"
    tax_id = factory.Sequence(lambda n: f"GB{100000000 + n}")


class IndividualFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Individual

    business = factory.SubFactory(BusinessFactory)
    name = factory.Sequence(lambda n: f"Person {n}")
    email = factory.Sequence(lambda n: f"person{n}@example.com")
    country = "GB"


class OpportunityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Opportunity

    business = factory.SubFactory(BusinessFactory)
    contact = factory.SubFactory(IndividualFactory, business=factory.SelfAttribute("..business"))
    title = factory.Sequence(lambda n: f"Opportunity {n}")


class TicketFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Ticket

    business = factory.SubFactory(BusinessFactory)
    contact = factory.SubFactory(IndividualFactory, business=factory.SelfAttribute("..business"))
    subject = factory.Sequence(lambda n: f"Ticket {n}")
