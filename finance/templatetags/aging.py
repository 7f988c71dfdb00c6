"""`{{ row|bucket:key }}`: one aging bucket's figure from a finance.reports row."""
from django import template

register = template.Library()


@register.filter
def bucket(row, key):
    return row.get(key)
