"""Many new rows of one model in one `executemany`, for the writes whose size grows with
their input (the Stripe import writes each page this way).

Django's `bulk_create` builds one multi-row statement, field by field and row by row in
its SQL compiler; that building costs more than the insert. `insert_many` writes the
values `bulk_create` writes (each field's `pre_save(add=True)` then `get_db_prep_save`:
defaults, auto_now(_add), JSON, decimals) with one parameterised statement run once per
row. Like `bulk_create` it sends no pre/post_save signals; it refuses a model that has
receivers for them rather than skip them silently.

Per field it first builds a preparer (`_preparer`); that, not the SQL, was most of the
cost. For Django's own field classes (recognised by their methods not being overridden)
whose `get_db_prep_save` is a chain of layers that return a value of one exact type
unchanged, then at most one backend call, such a value (a str for a CharField, an int
for an IntegerField or a foreign key to an auto pk, a bool, an aware datetime, a date,
a finite Decimal, None) goes straight to that backend call (`connection.ops.adapt_*`;
for SQLite's datetimes under USE_TZ, its own steps: to the connection's zone, naive,
str). Any other field class or value goes through the field's own `get_db_prep_save`.
The values written are the same either way (crm/tests/test_bulk.py compares them with
`get_db_prep_save`'s for every field of every model and with `bulk_create`'s rows, on
SQLite and on PostgreSQL); only the calls per value are fewer.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal

from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import (
    BooleanField, CharField, DateField, DateTimeField, DecimalField, Field, ForeignKey, IntegerField, TextField,
    signals,
)
from django.db.models.fields import AutoFieldMixin
from django.utils.functional import Promise


def _has(cls: type, base: type, *names: str) -> bool:
    """Whether `cls` uses `base`'s own definitions of the methods `names` (not overridden)."""
    return all(getattr(cls, name) is getattr(base, name) for name in names)


def _str_like(value) -> bool:
    """A str (or a str subclass such as a TextChoices member) that is not a lazy string:
    CharField.to_python returns it as it is."""
    return isinstance(value, str) and not isinstance(value, Promise)


def _sqlite_operations() -> type:
    from django.db.backends.sqlite3.operations import DatabaseOperations  # loaded with its connection
    return DatabaseOperations


def _preparer(field: Field, connection) -> Callable:
    """value -> what `field.get_db_prep_save(value, connection)` returns, by a shorter way
    for the values whose result is known (see the module's docstring), else that call."""
    cls, ops = type(field), connection.ops

    def slow(value):
        return field.get_db_prep_save(value, connection)

    if not _has(cls, Field, "get_db_prep_save"):
        if isinstance(field, ForeignKey) and _has(cls, ForeignKey, "get_db_prep_save"):
            # ForeignKey.get_db_prep_save: None stays None, an int goes to the target field's.
            target = _preparer(field.target_field, connection)
            return lambda value: None if value is None else target(value) if type(value) is int else slow(value)
        return slow
    int_prep = _int_preparer(field, connection)
    if int_prep is not None:
        return lambda value: int_prep(value) if type(value) is int or value is None else slow(value)
    if _has(cls, Field, "get_db_prep_value"):
        for base in (CharField, TextField):
            if _has(cls, base, "get_prep_value"):  # Field.get_prep_value (lazy strings) then to_python
                if _has(cls, base, "to_python"):  # a str or None as it is
                    return lambda value: (value if value is None or type(value) is str or _str_like(value)
                                          else slow(value))
                to_python = field.to_python  # e.g. a CurrencyField's upper case
                return lambda value: to_python(value) if value is None or _str_like(value) else slow(value)
        if _has(cls, BooleanField, "get_prep_value", "to_python"):
            return lambda value: value if value is None or type(value) is bool else slow(value)
        return slow
    if _has(cls, DateTimeField, "get_db_prep_value", "get_prep_value", "to_python"):
        # An aware datetime is not touched before the backend's adapt (a naive one is
        # made aware, with a warning, under USE_TZ: the field's own call does that).
        adapt = aware = ops.adapt_datetimefield_value
        if connection.vendor == "sqlite" and _has(type(ops), _sqlite_operations(), "adapt_datetimefield_value") \
                and settings.USE_TZ:
            zone = connection.timezone  # SQLite's adapt: make_naive in the connection's zone, then str

            def aware(value):
                return str(value.astimezone(zone).replace(tzinfo=None))
        return lambda value: (aware(value) if type(value) is datetime and value.utcoffset() is not None
                              else adapt(value) if value is None else slow(value))
    if _has(cls, DateField, "get_db_prep_value", "get_prep_value", "to_python"):
        adapt = ops.adapt_datefield_value
        return lambda value: adapt(value) if value is None or type(value) is date else slow(value)
    if _has(cls, DecimalField, "get_db_prep_value", "get_prep_value", "to_python"):
        adapt, digits, places = ops.adapt_decimalfield_value, field.max_digits, field.decimal_places
        # to_python gives a finite Decimal back equal digit for digit (a copy of it).
        return lambda value: (adapt(value, digits, places)
                              if value is None or (type(value) is Decimal and value.is_finite()) else slow(value))
    return slow


def _int_preparer(field: Field, connection) -> Callable | None:
    """int-or-None -> the field's db value, for Django's integer and auto fields (None
    for other fields). IntegerField: int(value) (itself for an int) then the backend's
    adapt_integerfield_value (psycopg's typed ints on PostgreSQL); an auto field:
    the backend's validate_autopk_value."""
    cls, ops = type(field), connection.ops
    if not _has(cls, Field, "get_db_prep_save") or not _has(cls, IntegerField, "get_prep_value"):
        return None
    if _has(cls, IntegerField, "get_db_prep_value"):
        adapt, internal_type = ops.adapt_integerfield_value, field.get_internal_type()
        return lambda value: adapt(value, internal_type)
    if _has(cls, AutoFieldMixin, "get_db_prep_value"):
        return ops.validate_autopk_value
    return None


def _reads_attribute(field: Field) -> bool:
    """Whether `field.pre_save(obj, add=True)` is the attribute itself (no auto_now(_add))."""
    cls = type(field)
    if cls.pre_save is Field.pre_save:
        return True
    return (cls.pre_save in (DateField.pre_save, DateTimeField.pre_save)
            and not field.auto_now and not field.auto_now_add)


def insert_many(objs: list, *, key: str | None = None) -> None:
    """Insert the unsaved instances `objs` (all of one concrete model): one INSERT, executemany.

    The model's own table only: a multi-table child is accepted when its parent rows are
    written (its parent link set), so only its own columns are inserted. An auto primary
    key is left to the database and not read back, unless `key` names a unique field: the
    new pks are then read by it in one query and set on the instances (saved from then on).
    """
    if not objs:
        return
    model = type(objs[0])
    meta = model._meta
    if meta.abstract or meta.proxy or any(type(obj) is not model for obj in objs):
        raise TypeError("insert_many takes instances of one concrete model.")
    if signals.pre_save.has_listeners(model) or signals.post_save.has_listeners(model):
        raise ValueError(f"{meta.label} has save signal receivers, which insert_many would skip.")
    if any(getattr(obj, link.attname) is None for link in meta.parents.values() for obj in objs):
        raise ValueError(f"{meta.label} is a multi-table child: write its parent rows first.")
    if key is not None and not meta.get_field(key).unique:
        raise ValueError(f"insert_many reads new pks back by a unique field; {key} is not one.")
    auto_pk = isinstance(meta.pk, AutoFieldMixin) and not meta.parents
    if auto_pk and any(obj.pk is not None for obj in objs):
        raise ValueError("insert_many takes new instances (their pk is left to the database).")
    fields = [f for f in meta.local_concrete_fields if not (auto_pk and f.primary_key) and not f.generated]
    alias = router.db_for_write(model)
    connection = connections[alias]
    # Each field's value: the attribute, or its pre_save where that is more (auto_now...).
    steps = [(_preparer(f, connection), f.attname, None if _reads_attribute(f) else f.pre_save) for f in fields]
    rows = []
    for obj in objs:
        obj._prepare_related_fields_for_save(operation_name="insert_many")  # as bulk_create: fk ids of saved parents
        rows.append([prep(getattr(obj, attname) if pre_save is None else pre_save(obj, True))
                     for prep, attname, pre_save in steps])
    qn = connection.ops.quote_name
    sql = (f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "
           f"VALUES ({', '.join(['%s'] * len(fields))})")
    with transaction.atomic(using=alias, savepoint=False), connection.cursor() as cursor:
        cursor.executemany(sql, rows)
    if key is not None:
        attname = meta.get_field(key).attname
        pks = dict(model._base_manager.using(alias).filter(**{f"{key}__in": [getattr(o, attname) for o in objs]})
                   .order_by().values_list(key, "pk"))
        for obj in objs:
            obj.pk = pks[getattr(obj, attname)]
    if key is not None or not auto_pk:
        for obj in objs:
            obj._state.adding, obj._state.db = False, alias
