"""Stripe's truth, read from stripe-python's generated code.

* `validate(params_type, raw)` checks a decoded request against the SDK's
  `stripe.params.<Resource><Verb>Params` TypedDict: unknown keys (at any depth) are
  `parameter_unknown`, missing required keys `parameter_missing`, and form strings are
  coerced to the declared int/bool/list/enum types. RequestOptions keys (api_key,
  stripe_account, idempotency_key, ...) that the SDK mixes into the top-level
  TypedDict are headers on the wire, never body params, so they are not accepted.
* `shape(object_name, **fields)` builds a response object holding exactly the fields
  the SDK's resource class declares (`stripe.Customer.__annotations__` ...), filling
  the ones not given with Stripe's empty values.

Introspection runs once per type and is cached; a validation pass is a walk over
small pre-built nodes.
"""

from __future__ import annotations

import decimal
import importlib
import sys
import threading
import types
import typing
from functools import lru_cache

import typing_extensions
from stripe._list_object import ListObject
from stripe._object_classes import OBJECT_CLASSES
from stripe._request_options import RequestOptions
from stripe._stripe_object import StripeObject, UntypedStripeObject

from .errors import StripeError, invalid_request, parameter_missing, parameter_unknown

_REQUEST_OPTION_KEYS = frozenset(RequestOptions.__annotations__)
_NONE = type(None)


def _child(path: str, key) -> str:
    return f"{path}[{key}]" if path else str(key)


def _describe(value) -> str:
    return "hash" if isinstance(value, dict) else "array" if isinstance(value, list) else repr(value)


# --------------------------------------------------------------------------- params


class _Node:
    """One type of the SDK's params, compiled: `coerce` checks and converts."""

    def coerce(self, value, path):
        return value


class _Any(_Node):
    """Anything goes (types the sandbox does not model)."""


class _Str(_Node):

    def coerce(self, value, path):
        if not isinstance(value, str):
            raise invalid_request(f"Invalid string: {_describe(value)}", param=path)
        return value


class _Int(_Node):

    def coerce(self, value, path):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise invalid_request(
                f"Invalid integer: {value}", param=path, code="parameter_invalid_integer"
            ) from None


class _Float(_Node):

    def coerce(self, value, path):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise invalid_request(f"Invalid float: {value}", param=path) from None


class _Decimal(_Node):

    def coerce(self, value, path):
        try:
            decimal.Decimal(value)
        except (TypeError, ValueError, decimal.InvalidOperation):
            raise invalid_request(f"Invalid decimal: {value}", param=path) from None
        return str(value)


class _Bool(_Node):

    def coerce(self, value, path):
        if value in ("true", True):
            return True
        if value in ("false", False):
            return False
        raise invalid_request(f"Invalid boolean: {value}", param=path)


class _Literal(_Node):

    def __init__(self, values):
        self.values = tuple(values)

    def coerce(self, value, path):
        for v in self.values:
            if value == v or (isinstance(v, bool) and value == str(v).lower()):
                return v
        choices = [str(v) for v in self.values]
        listed = ", ".join(choices[:-1]) + (", or " if len(choices) > 2 else " or ") + choices[-1] if len(choices) > 1 else choices[0]
        raise invalid_request(
            f"Invalid {path.rsplit('[', 1)[-1].rstrip(']')}: must be one of {listed}",
            param=path,
            code="parameter_invalid_string",
        )


class _List(_Node):

    def __init__(self, item):
        self.item = item

    def coerce(self, value, path):
        if isinstance(value, dict):
            # stripe-python sends lists as `key[0]`, `key[1]`: indexes must be integers.
            try:
                ordered = sorted(value.items(), key=lambda kv: int(kv[0]))
            except ValueError:
                raise invalid_request(f"Invalid array: {path}", param=path) from None
            items = [v for _, v in ordered]
        elif isinstance(value, list):
            items = value
        else:
            raise invalid_request(f"Invalid array: {path}", param=path)
        return [_coerce(self.item, v, _child(path, i)) for i, v in enumerate(items)]


class _Dict(_Node):

    def __init__(self, value):
        self.value = value

    def coerce(self, value, path):
        if not isinstance(value, dict):
            raise invalid_request(f"Invalid hash: {path}", param=path)
        # An empty value unsets that key (metadata[a]=).
        return {k: v if v == "" else _coerce(self.value, v, _child(path, k)) for k, v in value.items()}


class _TypedDict(_Node):

    def __init__(self, cls, top_level=False):
        self.cls = cls
        self.top_level = top_level
        self._fields = None
        self._lock = threading.Lock()

    def fields(self):
        # Built on first use: the SDK's params trees are large (AccountCreateParams
        # alone reaches hundreds of TypedDicts) and most branches are never sent.
        if self._fields is None:
            with self._lock:
                if self._fields is None:
                    module_globals = vars(sys.modules[self.cls.__module__])
                    fields = {}
                    for name, ann in self.cls.__annotations__.items():
                        if self.top_level and name in _REQUEST_OPTION_KEYS:
                            continue
                        if isinstance(ann, str):
                            ann = typing.ForwardRef(ann)
                        hint = typing._eval_type(ann, module_globals, None)  # noqa: SLF001
                        fields[name] = _compile(hint)
                    required = frozenset(self.cls.__required_keys__) - (
                        _REQUEST_OPTION_KEYS if self.top_level else frozenset()
                    )
                    self._required = required
                    self._fields = fields
        return self._fields

    def coerce(self, value, path):
        if not isinstance(value, dict):
            raise invalid_request(f"Invalid object: {path}", param=path)
        fields = self.fields()
        out = {}
        for key, v in value.items():
            node = fields.get(key)
            if node is None:
                raise parameter_unknown(_child(path, key))
            out[key] = _coerce(node, v, _child(path, key))
        for key in self._required:
            if key not in value:
                raise parameter_missing(_child(path, key))
        return out


class _Union(_Node):
    """Members of a union, tried in an order that suits form-encoded input."""

    def __init__(self, members, emptyable):
        self.members = members
        # `Literal['']` in the SDK's types marks a param that may be posted empty
        # to unset it.
        self.emptyable = emptyable


_EMPTY_NOT_ALLOWED = (
    "You passed an empty string for '{p}'. We assume empty values are an attempt to "
    "unset a parameter; however '{p}' cannot be unset. You should remove '{p}' from "
    "your request or supply a non-empty value."
)


def _coerce(node: _Union, value, path):
    if value == "":
        if node.emptyable:
            return ""
        if not any(isinstance(m, (_Any, _Literal)) for m in node.members):
            raise invalid_request(
                _EMPTY_NOT_ALLOWED.format(p=path), param=path, code="parameter_invalid_empty"
            )
    members = node.members
    if len(members) == 1:
        return members[0].coerce(value, path)
    if isinstance(value, (dict, list)):
        structured = [m for m in members if isinstance(m, (_TypedDict, _List, _Dict, _Any))]
        if isinstance(value, dict) and len(structured) > 1:
            # A hash may be an object or an indexed list: indexes decide.
            if all(k.isdigit() for k in value):
                structured.sort(key=lambda m: not isinstance(m, _List))
            else:
                structured = [m for m in structured if not isinstance(m, _List)]
        candidates = structured or members
    else:
        candidates = sorted(members, key=lambda m: _SCALAR_ORDER.get(type(m), 9))
    first_error = None
    for member in candidates:
        try:
            return member.coerce(value, path)
        except StripeError as exc:
            # Unknown/missing nested params are definitive for the branch chosen.
            if exc.code in ("parameter_unknown", "parameter_missing") and isinstance(member, _TypedDict):
                raise
            first_error = first_error or exc
    raise first_error


# For a scalar, an exact enum match first, then a free string, then numbers.
_SCALAR_ORDER = {_Literal: 0, _Str: 1, _Int: 2, _Float: 3, _Decimal: 4, _Bool: 5}

_typeddict_nodes: dict[tuple[type, bool], _TypedDict] = {}
_nodes_lock = threading.Lock()


def _typeddict_node(cls, top_level=False) -> _TypedDict:
    key = (cls, top_level)
    node = _typeddict_nodes.get(key)
    if node is None:
        with _nodes_lock:
            node = _typeddict_nodes.setdefault(key, _TypedDict(cls, top_level))
    return node


def _compile(hint) -> _Union:
    members: list[_Node] = []
    emptyable = False
    for t in _flatten(hint):
        if t is _NONE:
            continue
        origin = typing.get_origin(t)
        if origin is typing.Literal:
            values = [v for v in typing.get_args(t) if v != ""]
            emptyable = emptyable or len(values) < len(typing.get_args(t))
            if values:
                members.append(_Literal(values))
        elif typing_extensions.is_typeddict(t):
            members.append(_typeddict_node(t))
        elif origin in (list, typing.List, tuple):
            args = typing.get_args(t)
            members.append(_List(_compile(args[0]) if args else _Union([_Any()], False)))
        elif origin in (dict, typing.Dict) or origin is UntypedStripeObject or t is UntypedStripeObject:
            args = typing.get_args(t)
            members.append(_Dict(_compile(args[-1]) if args else _Union([_Any()], False)))
        elif t is str:
            members.append(_Str())
        elif t is bool:
            members.append(_Bool())
        elif t is int:
            members.append(_Int())
        elif t is float:
            members.append(_Float())
        elif t is decimal.Decimal:
            members.append(_Decimal())
        else:
            members.append(_Any())
    # The SDK types every enum as `Literal[...]|str` so that old clients accept
    # values added later; the server checks the closed set, and so do we.
    if any(isinstance(m, _Literal) for m in members):
        members = [m for m in members if not isinstance(m, _Str)]
    return _Union(members or [_Any()], emptyable)


def _flatten(hint):
    origin = typing.get_origin(hint)
    if origin in (typing_extensions.NotRequired, typing_extensions.Required):
        yield from _flatten(typing.get_args(hint)[0])
    elif origin is typing.Union or origin is types.UnionType:
        for arg in typing.get_args(hint):
            yield from _flatten(arg)
    else:
        yield hint


def validate(params_type, raw: dict) -> dict:
    """Check and coerce decoded form params against a `stripe.params` TypedDict."""
    return _typeddict_node(params_type, top_level=True).coerce(raw, "")


# --------------------------------------------------------------------------- objects


@lru_cache(maxsize=None)
def resource_class(object_name: str) -> type:
    module, name = OBJECT_CLASSES[object_name]
    return getattr(importlib.import_module(module), name)


class _Field:
    __slots__ = ("name", "optional", "nested", "elem", "kind", "const")

    def __init__(self, name, optional, nested, elem, kind, const):
        self.name, self.optional, self.nested, self.elem, self.kind, self.const = (
            name, optional, nested, elem, kind, const,
        )


def _is_nested(t) -> bool:
    # Nested value classes (Customer.Address ...) are StripeObject subclasses
    # defined in the SDK; top-level resources appear as ForwardRefs and arrive
    # from the store already shaped.
    return isinstance(t, type) and issubclass(t, StripeObject) and not hasattr(t, "OBJECT_NAME")


@lru_cache(maxsize=None)
def _fields(cls) -> tuple[_Field, ...]:
    out = []
    for name, ann in cls.__annotations__.items():
        if typing.get_origin(ann) is typing.ClassVar:
            continue
        members = [t for t in _flatten(ann) if t is not _NONE]
        optional = len(members) < len(list(_flatten(ann)))
        nested = elem = const = None
        kind = "scalar"
        for t in members:
            origin = typing.get_origin(t)
            if _is_nested(t):
                nested, kind = t, "nested"
            elif origin is ListObject or t is ListObject:
                kind = "list_object"
            elif origin in (list, typing.List):
                kind = "list"
                (arg,) = typing.get_args(t) or (None,)
                elem = arg if _is_nested(arg) else None
            elif origin is UntypedStripeObject or t is UntypedStripeObject:
                kind = "hash"
            elif origin is typing.Literal and const is None:
                const = typing.get_args(t)[0]
            elif t is bool and kind == "scalar":
                kind = "bool"
            elif t is int and kind == "scalar":
                kind = "int"
        out.append(_Field(name, optional, nested, elem, kind, const))
    return tuple(out)


def _default(field: _Field, owner_url: str | None):
    if field.kind == "list_object":
        url = f"{owner_url}/{field.name}" if owner_url else None
        return {"object": "list", "data": [], "has_more": False, "url": url}
    if field.name == "metadata" or (field.kind == "hash" and not field.optional):
        return {}
    if field.optional:
        return None
    if field.kind == "list":
        return []
    if field.kind == "nested":
        return _shape_nested(field.nested, {})
    if field.kind == "bool":
        return False
    if field.kind == "int":
        return 0
    return field.const


def _shape_value(field: _Field, value):
    if field.nested is not None and isinstance(value, dict):
        return _shape_nested(field.nested, value)
    if field.elem is not None and isinstance(value, list):
        return [_shape_nested(field.elem, v) if isinstance(v, dict) else v for v in value]
    return value


class _Layout:
    """A class's fields compiled for `shape`: immutable defaults in a template
    dict (in declaration order, `id` and `object` first), the fields whose
    defaults must be fresh per object, and those whose values are shaped."""

    def __init__(self, cls, object_name: str | None):
        fields = _fields(cls)
        self.cls = cls
        self.names = frozenset(f.name for f in fields) | ({"id", "object"} if object_name else frozenset())
        self.template: dict = {"id": None, "object": object_name} if object_name else {}
        self.fresh: list[_Field] = []
        self.shaped = {f.name: f for f in fields if f.nested is not None or f.elem is not None}
        for f in fields:
            if object_name and f.name in ("id", "object", "deleted"):
                continue
            default = _default(f, None)
            self.template[f.name] = None if isinstance(default, (dict, list)) else default
            if isinstance(default, (dict, list)):
                self.fresh.append(f)
        self.class_url = None
        if object_name:
            try:
                self.class_url = cls.class_url()
            except Exception:  # singletons and nested resources have no collection URL
                self.class_url = None

    def build(self, given: dict, owner_url: str | None) -> dict:
        if not self.names.issuperset(given):
            unknown = sorted(set(given) - self.names)
            raise TypeError(f"stripe.{self.cls.__qualname__} declares no field(s) {unknown}")
        out = dict(self.template)
        for f in self.fresh:
            if f.name not in given:
                out[f.name] = _default(f, owner_url)
        shaped = self.shaped
        for k, v in given.items():
            f = shaped.get(k)
            out[k] = _shape_value(f, v) if f is not None else v
        return out


@lru_cache(maxsize=None)
def _layout(cls, object_name: str | None) -> _Layout:
    return _Layout(cls, object_name)


def _shape_nested(cls, given: dict) -> dict:
    return _layout(cls, None).build(given, None)


def shape(object_name: str, **given) -> dict:
    """An object of type `object_name` ("customer", "invoice", ...) in its stored
    form, with every field stripe-python declares; what is answered is this object
    shaped by Stripe's OpenAPI spec (`spec_shapes.conform`, applied by the pipeline).

    Fields not given get Stripe's empty value: None for nullable fields, {} for
    metadata, [] for arrays, an empty list object for sub-lists, a filled-in
    nested object for non-nullable nested objects. Nested dicts given are filled
    in the same way. `deleted` appears only when given: Stripe's OpenAPI spec
    keeps deleted objects as separate `deleted_<name>` schemas that the SDK folds
    into one class. A field the SDK does not declare is a programming error.
    """
    layout = _layout(resource_class(object_name), object_name)
    oid = given.get("id")
    owner_url = f"{layout.class_url}/{oid}" if oid and layout.class_url else None
    out = layout.build(given, owner_url)
    out["object"] = object_name
    return out


def resource_url(object_name: str, oid: str | None) -> str | None:
    """`/v1/<collection>/<id>` for a top-level resource, else None."""
    try:
        layout = _layout(resource_class(object_name), object_name)
    except (KeyError, ImportError, AttributeError):
        return None
    return f"{layout.class_url}/{oid}" if oid and layout.class_url else None


def deleted_stub(object_name: str, object_id: str) -> dict:
    """What Stripe answers to DELETE (and, for customers, to later retrieves)."""
    return {"id": object_id, "object": object_name, "deleted": True}


@lru_cache(maxsize=None)
def expandable_fields(object_name: str) -> frozenset[str]:
    """Fields typed `str | <Resource>` in the SDK: ids that `expand[]` may replace."""
    try:
        cls = resource_class(object_name)
    except (KeyError, ImportError, AttributeError):
        return frozenset()
    out = set()
    for name, ann in cls.__annotations__.items():
        members = [t for t in _flatten(ann) if t is not _NONE]
        if str in members and any(isinstance(t, typing.ForwardRef) or hasattr(t, "OBJECT_NAME") for t in members):
            out.add(name)
    return frozenset(out)


def declared_fields(object_name: str) -> frozenset[str]:
    return frozenset(f.name for f in _fields(resource_class(object_name))) | {"id", "object"}
