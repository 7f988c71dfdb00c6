"""QuickSelect draws what Django's Select draws (options, escaping, the chosen one)."""
import re

from django import forms

from crm.filters import QuickSelect


def _options(html):
    return re.findall(r'<option value="([^"]*)"( selected)?>([^<]*)</option>', html)


def test_quick_select_matches_djangos_select():
    choices = [("", "Any contact"), (1, 'A & B <script>"x"</script>'), (2, "Zed"), (3, "=cmd")]
    for value in ("2", "", None, "999"):
        ours = QuickSelect(choices=choices).render("bill_to", value, attrs={"id": "id_bill_to"})
        django = forms.Select(choices=choices).render("bill_to", value, attrs={"id": "id_bill_to"})
        assert _options(ours) == _options(django) and len(_options(ours)) == 4
        assert 'name="bill_to"' in ours and 'id="id_bill_to"' in ours and "<script>" not in ours
