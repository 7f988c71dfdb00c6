"""`{% stripe_import_section %}`: the settings page's import card (latest import, the
button, the rules), so the settings view needs no knowledge of the import."""
from django import template

from ..importing.forms import ImportRulesForm
from ..importing.start import import_latest
from ..models import ImportRules, ImportStatus

register = template.Library()


@register.inclusion_tag("stripe_integration/_import_section.html", takes_context=True)
def stripe_import_section(context, business):
    rules = ImportRules.objects.filter(business=business).first() or ImportRules(business=business)
    job = import_latest(business=business)
    return {"job": job, "form": ImportRulesForm(instance=rules), "csrf_token": context.get("csrf_token"),
            "active": job is not None and job.status in (ImportStatus.WAITING, ImportStatus.RUNNING)}
