"""Saving changed fields on the hot paths: ``save(update_fields=...)`` without rebuilding its SQL.

``Model.save(update_fields=...)`` builds its ``UPDATE`` through the model's SQL compiler on
every call. :func:`save_fields` sends the same statement, made once per model, field list
and database, with what ``save`` would write: each field's ``pre_save`` value (``auto_now``
stamps included, set on the instance too) in the database's form.

Like a queryset's ``update()``, it sends no ``pre_save``/``post_save`` signals and runs no
``save()`` override: it is for models with neither. As ``save`` does, it raises
``DatabaseError`` when no row has the instance's key.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from django.db import DatabaseError, connections, models, router

from shared.inserts import write_together


@functools.lru_cache(maxsize=1024)  # models x field lists x databases: bounded anyway
def _plan(model: type[models.Model], names: tuple[str, ...], alias: str) -> tuple[str, tuple[models.Field, ...]]:
    meta = model._meta
    fields = tuple(meta.get_field(name) for name in names)
    for field in fields:
        if not field.concrete or field.primary_key or field.many_to_many:
            raise ValueError(f"save_fields() writes the row's own columns, not {field.name}")
    quote = connections[alias].ops.quote_name
    assignments = ", ".join(f"{quote(f.column)} = %s" for f in fields)
    return f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s", fields


def save_fields(
    obj: models.Model, fields: Sequence[str], *, inserting: Sequence[Sequence[models.Model]] = ()
) -> list[list[models.Model]]:
    """Write ``fields`` of a saved instance, as ``obj.save(update_fields=fields)`` would.

    ``inserting``: groups of new rows (as :func:`shared.inserts.insert_together` takes them)
    written in the same statement, inside the caller's transaction: a change of a row and
    the rows that record it (a transition, an event) in one round trip. Returns those groups,
    saved.
    """
    if obj.pk is None:
        raise ValueError("save_fields() takes an instance that is saved already")
    model = type(obj)
    alias = router.db_for_write(model, instance=obj)
    connection = connections[alias]
    sql, planned = _plan(model, tuple(dict.fromkeys(fields)), alias)
    params = [f.get_db_prep_save(f.pre_save(obj, False), connection=connection) for f in planned]
    params.append(model._meta.pk.get_db_prep_value(obj.pk, connection))
    if any(inserting):
        if not connection.in_atomic_block:
            # The inserts run even when the update finds no row: only a rollback undoes them.
            raise RuntimeError("save_fields(inserting=...) must run inside transaction.atomic()")
        written = [group for group in inserting if group]
        saved = iter(write_together(written, then=(sql, params, alias)))
        obj._state.db = alias
        return [next(saved) if group else [] for group in inserting]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if cursor.rowcount != 1:
            raise DatabaseError("Save with update_fields did not affect any rows.")
    obj._state.db = alias
    return [[] for _ in inserting]
