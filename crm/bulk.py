"""Many new rows of one model in one `executemany`, for the writes whose size grows with
their input (the Stripe import writes each page this way).

Django's `bulk_create` builds one multi-row statement, field by field and row by row in
its SQL compiler; that building costs more than the insert. `insert_many` writes the
values `bulk_create` writes (each field's `pre_save(add=True)` then `get_db_prep_save`:
defaults, auto_now(_add), JSON, decimals) with one parameterised statement run once per
row. Like `bulk_create` it sends no pre/post_save signals; it refuses a model that has
receivers for them rather than skip them silently.
"""
from __future__ import annotations

from django.db import connections, router, transaction
from django.db.models import Field, signals
from django.db.models.fields import AutoFieldMixin


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
    # Field.pre_save is the attribute itself; only the fields that override it are asked.
    steps = [(f.get_db_prep_save, f.attname, None if type(f).pre_save is Field.pre_save else f.pre_save)
             for f in fields]
    rows = []
    for obj in objs:
        obj._prepare_related_fields_for_save(operation_name="insert_many")  # as bulk_create: fk ids of saved parents
        rows.append([prep(getattr(obj, attname) if pre_save is None else pre_save(obj, True), connection)
                     for prep, attname, pre_save in steps])
    qn = connection.ops.quote_name
    sql = (f"INSERT INTO {qn(meta.db_table)} ({', '.join(qn(f.column) for f in fields)}) "
           f"VALUES ({', '.join(['%s'] * len(fields))})")
    with transaction.atomic(using=alias, savepoint=False), connection.cursor() as cursor:
        cursor.executemany(sql, rows)
    if key is not None:
        attname = meta.get_field(key).attname
        pks = dict(model._base_manager.using(alias).filter(**{f"{key}__in": [getattr(o, attname) for o in objs]})
                   .values_list(key, "pk"))
        for obj in objs:
            obj.pk = pks[getattr(obj, attname)]
    if key is not None or not auto_pk:
        for obj in objs:
            obj._state.adding, obj._state.db = False, alias
