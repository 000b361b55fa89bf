"""Writing new rows on the hot paths: ``bulk_create`` without rebuilding its SQL each time.

``Model.objects.create`` and ``bulk_create`` build their ``INSERT`` through the model's SQL
compiler on every call. :func:`insert` sends the same statement, made once per model, row
count and database, and fills in what those would: each field's default, ``auto_now``
stamps, the database's form of each value, and the primary key from ``RETURNING``.

:func:`insert_together` writes several such groups, of different models, in one statement.

Like ``bulk_create``, they send no ``pre_save``/``post_save`` signals and run no ``save()``
override: they are for models with neither. In the order service's shell an order's row cost
211-216 µs of CPU through ``objects.create`` and 125-128 µs through :func:`insert`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from django.db import DatabaseError, connections, models, router


@functools.cache
def _columns(model: type[models.Model], with_pk: bool) -> tuple[tuple[models.Field, ...], models.Field | None]:
    """The fields an insert writes, and the auto primary key it reads back (None: no key to read).

    An auto primary key is written when the rows carry theirs (``with_pk``), else read back.
    """
    meta = model._meta
    auto_pk = meta.pk if isinstance(meta.pk, models.AutoField) and not with_pk else None
    return tuple(f for f in meta.concrete_fields if f is not auto_pk), auto_pk


@functools.lru_cache(maxsize=1024)  # models x row counts x databases: bounded anyway
def _sql(model: type[models.Model], with_pk: bool, rows: int, alias: str) -> str:
    fields, auto_pk = _columns(model, with_pk)
    quote = connections[alias].ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    one = "(" + ", ".join(["%s"] * len(fields)) + ")"
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) VALUES {', '.join([one] * rows)}"
    return sql + (f" RETURNING {quote(auto_pk.column)}" if auto_pk is not None else "")


def insert(objs: Sequence[models.Model]) -> list[models.Model]:
    """Insert unsaved instances of one model in one statement; returns them, saved, with their keys."""
    if not objs:
        return []
    model, with_pk, alias = _group(objs)
    connection = connections[alias]
    with connection.cursor() as cursor:
        cursor.execute(_sql(model, with_pk, len(objs), alias), _params(objs, with_pk, connection))
        keys = [key for (key,) in cursor.fetchall()] if _columns(model, with_pk)[1] is not None else []
    return _saved(objs, with_pk, alias, keys)


def insert_together(*groups: Sequence[models.Model]) -> list[list[models.Model]]:
    """Insert several groups of unsaved instances (each of one model, all in one database) in
    one statement; returns each group, saved, with its keys (an empty group: an empty list).

    The statement is one ``INSERT`` per group, each in a ``WITH`` clause, and a ``SELECT`` of
    the keys they generated: rows that go together cost one round trip, and commit together
    even outside a transaction. Django's foreign keys are checked at the commit (outside a
    transaction, at the statement's end), so a group may refer to rows of another (an
    order's lines to the order, whose key is set already); no group can read the keys
    another generates.
    """
    written = [group for group in groups if group]
    if not written:
        return [[] for _ in groups]
    saved = iter(write_together(written))
    return [next(saved) if group else [] for group in groups]


def write_together(
    groups: list[Sequence[models.Model]], then: tuple[str, list[object], str] | None = None
) -> list[list[models.Model]]:
    """The statement of :func:`insert_together`, for non-empty ``groups``; with ``then`` (an
    ``UPDATE``'s SQL, its values and its database, ``shared.updates.save_fields``) it ends
    with that update instead of a ``SELECT``, which must change one row, else
    ``DatabaseError`` (the inserts ran: the caller's transaction must roll back)."""
    plans = [_group(group) for group in groups]
    alias = then[2] if then else plans[0][2]
    if any(plan[2] != alias for plan in plans):
        raise ValueError("insert_together() and save_fields(inserting=...) write to one database")
    connection = connections[alias]
    params: list[object] = []
    for group, (_, with_pk, _) in zip(groups, plans, strict=True):
        params += _params(group, with_pk, connection)
    shape = tuple((model, with_pk, len(group)) for group, (model, with_pk, _) in zip(groups, plans, strict=True))
    with connection.cursor() as cursor:
        cursor.execute(_together_sql(shape, alias, then[0] if then else ""), params + (then[1] if then else []))
        rows = cursor.fetchall()
    if then and len(rows) != 1:  # the UPDATE returns a row per row it changed; the SELECT, always one
        raise DatabaseError("Save with update_fields did not affect any rows.")
    return [
        _saved(group, with_pk, alias, keys or [])
        for group, (_, with_pk, _), keys in zip(groups, plans, rows[0], strict=True)
    ]


def insert_select(
    rows: Sequence[tuple[models.Model, dict[str, tuple[str, list[object]]]]], source: str, *, returning: bool = False
) -> tuple[str, list[object]]:
    """The ``INSERT`` of ``rows`` (unsaved instances of one model, with their overrides) as
    ``INSERT ... SELECT ... FROM source``, for a ``WITH`` clause of the caller's statement.

    Each row is written once per row of ``source`` (another clause's name): none when that
    clause found nothing. An override (a column's attname: its SQL and that SQL's values)
    replaces the instance's value, for a key or a count another clause of the statement
    makes. With ``returning``, the clause returns the keys the database generated. Returns
    the SQL and its values; the caller sets what the rows become (:func:`mark_saved`).
    """
    model, with_pk, alias = _group([obj for obj, _ in rows])
    connection = connections[alias]
    fields, auto_pk = _columns(model, with_pk)
    quote = connection.ops.quote_name
    selects: list[str] = []
    params: list[object] = []
    for obj, overrides in rows:
        values = _params([obj], with_pk, connection)
        exprs: list[str] = []
        for field, value in zip(fields, values, strict=True):
            if field.attname in overrides:
                sql, more = overrides[field.attname]
                exprs.append(sql)
                params += more
            elif value is None:
                # a bare NULL in a SELECT list is text; the column's type, as VALUES would infer it
                exprs.append(f"NULL::{field.db_type(connection)}")
            else:
                exprs.append("%s")
                params.append(value)
        selects.append(f"SELECT {', '.join(exprs)} FROM {source}")
    columns = ", ".join(quote(f.column) for f in fields)
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) {' UNION ALL '.join(selects)}"
    if returning and auto_pk is not None:
        sql += f" RETURNING {quote(auto_pk.column)}"
    return sql, params


def mark_saved(objs: Sequence[models.Model], keys: Sequence) -> None:
    """What :func:`insert` does to the rows it wrote (the keys the database generated, and
    their state), for rows of :func:`insert_select` that the caller's statement wrote."""
    _, with_pk, alias = _group(objs)
    _saved(objs, with_pk, alias, list(keys))


@functools.lru_cache(maxsize=256)  # a handful of shapes per service
def _together_sql(shape: tuple[tuple[type[models.Model], bool, int], ...], alias: str, then: str) -> str:
    quote = connections[alias].ops.quote_name
    ctes, keys = [], []
    for i, (model, with_pk, rows) in enumerate(shape):
        ctes.append(f"i{i} AS ({_sql(model, with_pk, rows, alias)})")
        auto_pk = _columns(model, with_pk)[1]
        keys.append(f"ARRAY(SELECT {quote(auto_pk.column)} FROM i{i})" if auto_pk is not None else "NULL")
    if then:
        return f"WITH {', '.join(ctes)} {then} RETURNING {', '.join(keys)}"
    return f"WITH {', '.join(ctes)} SELECT {', '.join(keys)}"


def _group(objs: Sequence[models.Model]) -> tuple[type[models.Model], bool, str]:
    """The model, whether the rows carry their keys, and the database of one group of rows."""
    model = type(objs[0])
    if any(type(obj) is not model for obj in objs):
        raise TypeError("insert() takes instances of one model")
    with_pk = objs[0].pk is not None
    if any((obj.pk is not None) != with_pk for obj in objs):
        raise ValueError("insert() takes rows that all carry their primary key, or none that does")
    return model, with_pk, router.db_for_write(model)


def _params(objs: Sequence[models.Model], with_pk: bool, connection) -> list[object]:
    fields, _ = _columns(type(objs[0]), with_pk)
    params: list[object] = []
    for obj in objs:
        params += [f.get_db_prep_save(f.pre_save(obj, True), connection=connection) for f in fields]
    return params


def _saved(objs: Sequence[models.Model], with_pk: bool, alias: str, keys: list) -> list[models.Model]:
    auto_pk = _columns(type(objs[0]), with_pk)[1]
    for i, obj in enumerate(objs):
        if auto_pk is not None:
            setattr(obj, auto_pk.attname, keys[i])
        obj._state.adding, obj._state.db = False, alias
    return list(objs)
