from django.apps import AppConfig


class StripeIntegrationConfig(AppConfig):
    name = "stripe_integration"
    verbose_name = "Stripe integration"

    def ready(self):
        from .connect.modes import settings_check

        settings_check()  # a test key in the live slot (or the reverse) stops the start
        _admin_make_safe()
        # The lower apps announce their changes and leave room on their pages; the
        # integration listens and fills in (its admin extensions register with the admin,
        # stripe_integration/admin/extensions.py).
        from crm.models import Contact
        from crm.page_context import page_context_register
        from crm.signals import contact_billing_changed
        from services.models import Service
        from services.signals import service_changed

        from .credit_notes.views import credit_note_form_context
        from .dashboard_health import dashboard_context
        from .invoicing.views import invoice_detail_context
        from .health.checks import register as health_checks_register

        contact_billing_changed.connect(_contact_billing_changed, sender=Contact, dispatch_uid="stripe_customers")
        service_changed.connect(_service_changed, sender=Service, dispatch_uid="stripe_catalog")
        page_context_register("invoice_detail", invoice_detail_context)
        page_context_register("invoice_detail", credit_note_form_context)
        page_context_register("dashboard", dashboard_context)
        health_checks_register()
        from finance.modes import current_mode_resolver_register

        current_mode_resolver_register(_current_mode)


def _admin_make_safe():
    # The last app to be ready, after every admin module was imported (the admin's own
    # ready() autodiscovers them): every registered admin, ours or an installed package's,
    # answers hostile choices with a form error (crm.choice_fields).
    from django.contrib import admin

    from crm.choice_fields import admin_site_make_safe

    # django-celery-beat's crontab form raises ParseException (a 500) on values such as
    # "-1" instead of a form error; the schedule uses intervals (CELERY_BEAT_SCHEDULE), so
    # crontab schedules are not offered in the admin.
    from django_celery_beat.models import CrontabSchedule

    if admin.site.is_registered(CrontabSchedule):
        admin.site.unregister(CrontabSchedule)
    from .admin.periodic import register as periodic_tasks_register

    periodic_tasks_register(admin.site)
    admin_site_make_safe(admin.site)


def _current_mode(request, business):
    from finance.modes import CurrentMode

    from .connect.oauth import session_livemode

    livemode, available = session_livemode(session=getattr(request, "session", None), business=business)
    return CurrentMode(livemode=livemode, available=available)


def _contact_billing_changed(sender, *, contact, **kwargs):
    from .customers.links import customer_sync_request

    customer_sync_request(contact=contact)


def _service_changed(sender, *, service, **kwargs):
    from .catalog.sync import service_sync_request

    service_sync_request(service=service)
