"""The rules' filter: a CEL expression (cel-python) on one contact.

The expression sees a single variable, `contact`, a plain map built here
(`contact_activation`): id, kind, name, email, phone, the address fields, country,
tax_id, organization (its name) and `custom_fields` (the contact's values: text, number,
bool, date as "YYYY-MM-DD", e-mail). Nothing else is reachable: CEL has no attribute
access on Python objects, only keys of the maps given to it.

`filter_compile` checks an expression when it is saved or previewed: its length (at most
FILTER_MAX_LENGTH characters), its syntax, no comprehension macros (map, filter, all,
exists, exists_one: the only way CEL loops; measured, two nested ones over list literals
that fit in 1,000 characters took 22 s to evaluate with cel-python, one 4 s, and the
contact has no lists to loop over: `in` covers "one of these values"), and its types,
by evaluating it once on a sample contact that has every defined custom field: it must
give true or false. Without loops the cost of an evaluation is linear in the expression's
size (well under a second at 1,000 characters). Errors are FilterError, with a message fit for the form. At run time a contact
whose evaluation fails (a custom field it lacks, read without `has()`) is left out, with
the error as the reason.
"""
from __future__ import annotations

import logging
import re
from typing import Any

import celpy
from celpy import celtypes

from crm.models import Contact, ContactKind, CustomFieldDefinition, CustomFieldType

from ..models import FILTER_MAX_LENGTH

log = logging.getLogger(__name__)

MACROS = frozenset({"map", "filter", "all", "exists", "exists_one"})
_SAMPLE = {CustomFieldType.TEXT: "sample", CustomFieldType.NUMBER: 1, CustomFieldType.BOOL: True,
           CustomFieldType.DATE: "2000-01-01", CustomFieldType.EMAIL: "someone@example.com"}
CONTACT_FIELDS = ("id", "kind", "name", "email", "phone", "address_line1", "address_line2", "city", "postal_code",
                  "state", "country", "tax_id", "organization", "custom_fields")


class FilterError(Exception):
    def __init__(self, message: str):
        self.message = message
        super().__init__(message)


def contact_activation(contact: Contact) -> dict[str, Any]:
    """The plain map a filter sees as `contact` (the module doc lists its keys)."""
    specific = contact.specific if type(contact) is Contact else contact
    is_org = contact.kind == ContactKind.ORGANIZATION
    organization = "" if is_org else (specific.organization.name if specific.organization_id else "")
    return {
        "id": contact.pk or 0, "kind": contact.kind, "name": contact.name,
        "email": (specific.billing_email if is_org else specific.email) or "",
        "phone": contact.phone, "address_line1": contact.address_line1, "address_line2": contact.address_line2,
        "city": contact.city, "postal_code": contact.postal_code, "state": contact.state, "country": contact.country,
        "tax_id": specific.tax_id if is_org else "", "organization": organization,
        "custom_fields": dict(contact.custom_fields) if isinstance(contact.custom_fields, dict) else {},
    }


def sample_activation(definitions: list[CustomFieldDefinition]) -> dict[str, Any]:
    sample = {name: "" for name in CONTACT_FIELDS}
    sample.update(id=1, kind=ContactKind.ORGANIZATION, custom_fields={d.key: _SAMPLE[d.field_type] for d in definitions})
    return sample


class CompiledFilter:
    def __init__(self, expression: str, program):
        self.expression = expression
        self._program = program

    def evaluate(self, activation: dict[str, Any]) -> bool:
        """True or False; FilterError when the expression cannot be evaluated for it."""
        try:
            result = self._program.evaluate({"contact": celpy.json_to_cel(activation)})
        except celpy.CELEvalError as exc:
            raise FilterError(_eval_message(exc)) from None
        except RecursionError:
            raise FilterError("The expression is nested too deeply.") from None
        except Exception as exc:  # noqa: BLE001 - cel-python may raise others on odd input: a reason, not a 500
            raise FilterError(f"{type(exc).__name__}: {exc}"[:300]) from None
        if isinstance(result, celpy.CELEvalError):
            raise FilterError(_eval_message(result))
        if not isinstance(result, celtypes.BoolType):
            raise FilterError(f"The expression must be true or false; it gives a {_type_name(result)}.")
        return bool(result)


def _eval_message(exc: Exception) -> str:
    first = exc.args[0] if exc.args else str(exc)
    message = str(first)
    match = re.search(r"no such member in mapping: '([^']*)'", message)
    if match:
        return f"no field {match.group(1)!r} (use has() for custom fields a contact may lack)"
    if "no matching overload" in message:
        return "the operands' types do not match (e.g. a text compared with a number)"
    return message[:300]


def _type_name(value: Any) -> str:
    return {celtypes.StringType: "text", celtypes.IntType: "number", celtypes.DoubleType: "number",
            celtypes.MapType: "map", celtypes.ListType: "list"}.get(type(value), type(value).__name__)


def _refuse_macros(ast) -> None:
    for node in ast.iter_subtrees():
        if node.data == "member_dot_arg" and any(getattr(child, "value", None) in MACROS for child in node.children):
            raise FilterError("map, filter, all, exists and exists_one are not allowed in a filter "
                              '(a contact has no lists); use `in` for "one of", e.g. contact.country in ["GB", "IE"].')


def filter_compile(expression: Any, *, definitions: list[CustomFieldDefinition]) -> CompiledFilter | None:
    """Check and compile a filter (None when blank). FilterError says what is wrong."""
    if expression is None:
        return None
    if not isinstance(expression, str):
        raise FilterError("The filter is text.")
    expression = expression.strip()
    if not expression:
        return None
    if len(expression) > FILTER_MAX_LENGTH:
        raise FilterError(f"The filter is {len(expression)} characters long; at most {FILTER_MAX_LENGTH} are allowed.")
    if "\x00" in expression or any(0xD800 <= ord(ch) <= 0xDFFF for ch in expression):
        raise FilterError("The filter contains characters that are not text.")
    env = celpy.Environment()
    try:
        ast = env.compile(expression)
        _refuse_macros(ast)
        program = env.program(ast)
    except FilterError:
        raise
    except celpy.CELParseError as exc:
        detail = " ".join(str(exc).split())[:300]
        raise FilterError(f"Syntax error: {detail}") from None
    except RecursionError:
        raise FilterError("The filter is nested too deeply.") from None
    except Exception as exc:  # noqa: BLE001 - the parser's other errors are still the user's input
        raise FilterError(f"The filter cannot be read: {type(exc).__name__}") from None
    compiled = CompiledFilter(expression, program)
    try:
        compiled.evaluate(sample_activation(definitions))
    except FilterError as exc:
        raise FilterError(f"Type error: {exc.message}") from None
    return compiled
