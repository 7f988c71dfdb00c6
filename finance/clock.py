"""The business day the money reports and "overdue" are computed for (local date): one
function that every page, filter and report reads, so they agree with one another (and a
test that lets time pass moves it in one place, beside Stripe's clock)."""
from django.utils import timezone


def today():
    return timezone.localdate()
