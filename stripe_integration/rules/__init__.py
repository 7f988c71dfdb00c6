"""Rules and custom fields of the integration (issue 15: m3ter's account rules, Upflow's
custom fields).

- `expressions.py`: the CEL filter (cel-python): checked on save, evaluated on a plain
  dict of one contact's fields and custom fields, nothing else.
- `eligibility.py`: whether a contact may go to Stripe (include list, exclude list,
  filter) and why not; the customer sync, the invoice push and the unbilled run ask it.
- `mapping.py`: custom fields <-> Stripe metadata keys and native customer fields, both
  ways where Stripe allows it. Called by customers/links.py, invoicing/push.py and the
  webhook apply code; `views.py`/`forms.py` are the rules page and its preview.
"""
