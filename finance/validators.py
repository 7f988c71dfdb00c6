"""Checks of free text typed on the invoicing forms (issue 12, item 11), shared by the
staff UI's "Send to Stripe" and the admin's "Generate invoice" action."""

PO_NUMBER_MAX = 100  # Invoice.po_number's max_length


def po_number_problem(value: str) -> str | None:
    """Why a typed PO number cannot be used, or None. A NUL character is refused rather
    than stored: PostgreSQL refuses it in text (a 500), and nobody types one on purpose."""
    if len(value) > PO_NUMBER_MAX:
        return f"A PO number has at most {PO_NUMBER_MAX} characters (this one has {len(value)})."
    if "\x00" in value:
        return "A PO number cannot contain a null character."
    return None
