"""Reading rows on the hot paths: a queryset's SQL compiled once, new values bound each call.

Django's SQL compiler builds a query anew every time it runs. For a read of one or a few
rows by key that is most of the read's CPU: in the payment service's shell, the payments
of an order cost 444-504 µs through the ORM and 89-94 µs as the same SQL sent straight
with its rows made into instances by ``Model.from_db``. :func:`prepare` does the latter
for a queryset written once as a function of the values that change::

    order_payments = prepare(lambda order_id: Payment.objects.filter(order_id=order_id).order_by("-pk")[:20])
    payments = order_payments(order_id=7)  # a list of Payment, as list(queryset) gives

The queryset is built once per database with stand-in values, and the compiled SQL is
kept with where each value goes. Values reach the SQL as they were given, so each must be
an ``int``, a ``str`` or an aware ``datetime`` that the field takes as it is (keys, states,
moments); a read whose values Django would change on the way (``__startswith``, a date
part) is refused when it is first used, as are ``select_related``, ``prefetch_related``,
annotations and deferred fields. Model rows and ``.values()`` rows are supported;
``select_for_update()`` reads too and, as in Django, only inside a transaction.
"""

from __future__ import annotations

import datetime as dt
import inspect
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db import connections, router
from django.db.models import Model, QuerySet
from django.db.models.query import ModelIterable, ValuesIterable
from django.db.transaction import TransactionManagementError

#: Stand-in values: far outside any key, state or moment a shop stores, one per argument.
_INT_MARK = -(2**62)
_STR_MARK = "\x00prepared-read-argument-{}\x00"
_DATETIME_MARK = dt.datetime(2, 1, 1, tzinfo=dt.UTC)


def _mark(i: int, value: Any) -> Any:
    if isinstance(value, str):
        return _STR_MARK.format(i)
    if isinstance(value, dt.datetime):
        return _DATETIME_MARK + dt.timedelta(microseconds=i)
    return _INT_MARK + i


@dataclass(frozen=True)
class _Compiled:
    sql: str
    #: per SQL parameter: the index of the argument it takes, or None for a constant
    slots: tuple[int | None, ...]
    constants: tuple[Any, ...]
    model: type[Model]
    #: model rows: the attribute names of the selected columns; values rows: the dict keys
    names: tuple[str, ...]
    as_dicts: bool
    converters: tuple[tuple[int, tuple[Callable, ...], Any], ...]
    for_update: bool


class PreparedRead:
    """A read compiled once per database; call it with the values, by name."""

    def __init__(self, build: Callable[..., QuerySet]):
        self._build = build
        self._names = tuple(inspect.signature(build).parameters)
        self._compiled: dict[str, _Compiled] = {}
        self._model: type[Model] | None = None
        self._for_write = False
        self._lock = threading.Lock()

    def __call__(self, **values: Any) -> list[Any]:
        if values.keys() != set(self._names):
            raise TypeError(f"this read takes {', '.join(self._names) or 'no values'}; got {', '.join(values)}")
        ordered = [values[name] for name in self._names]
        for name, value in zip(self._names, ordered, strict=True):
            if type(value) not in (int, str, dt.datetime):
                raise TypeError(
                    f"{name}: a prepared read takes int, str or datetime values, not {type(value).__name__}"
                )
            if type(value) is dt.datetime and value.utcoffset() is None:
                raise TypeError(f"{name}: a prepared read takes aware datetimes only")
        alias, compiled = self._compiled_for(ordered)
        connection = connections[alias]
        if compiled.for_update and connection.get_autocommit():
            raise TransactionManagementError("select_for_update cannot be used outside of a transaction.")
        params = [
            c if slot is None else ordered[slot] for slot, c in zip(compiled.slots, compiled.constants, strict=True)
        ]
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, params)
            rows = cursor.fetchall()
        if compiled.converters:
            rows = [_convert(row, compiled.converters, connection) for row in rows]
        if compiled.as_dicts:
            return [dict(zip(compiled.names, row, strict=True)) for row in rows]
        return [compiled.model.from_db(alias, compiled.names, row) for row in rows]

    def first(self, **values: Any) -> Any | None:
        """The first row, or None (for a read that ends in ``[:1]``)."""
        rows = self(**values)
        return rows[0] if rows else None

    def _compiled_for(self, ordered: list[Any]) -> tuple[str, _Compiled]:
        if self._model is not None:
            route = router.db_for_write if self._for_write else router.db_for_read
            alias = route(self._model)
            compiled = self._compiled.get(alias)
            if compiled is not None:
                return alias, compiled
        with self._lock:
            marks = [_mark(i, v) for i, v in enumerate(ordered)]
            queryset = self._build(**dict(zip(self._names, marks, strict=True)))
            alias = queryset.db  # the router's answer, for reading or (select_for_update) writing
            compiled = self._compiled[alias] = _compile(queryset, marks)
            self._model, self._for_write = queryset.model, queryset._for_write
            return alias, compiled


def prepare(build: Callable[..., QuerySet]) -> PreparedRead:
    """A hot read: ``build`` makes the queryset from the values that change (by keyword)."""
    return PreparedRead(build)


def _convert(row: tuple, converters: tuple, connection) -> tuple:
    values = list(row)
    for pos, functions, expression in converters:
        value = values[pos]
        for function in functions:
            value = function(value, expression, connection)
        values[pos] = value
    return tuple(values)


def _compile(queryset: QuerySet, marks: list[Any]) -> _Compiled:
    query = queryset.query
    if queryset._prefetch_related_lookups or query.select_related or query.annotation_select or query.extra_select:
        raise ValueError("prepare() takes plain reads: no select_related, prefetch_related, annotations or extra")
    if query.deferred_loading != (frozenset(), True):
        raise ValueError("prepare() takes reads of whole rows: no only() or defer()")
    as_dicts = queryset._iterable_class is ValuesIterable
    if not as_dicts and queryset._iterable_class is not ModelIterable:
        raise ValueError("prepare() takes model rows or .values() rows")
    compiler = query.get_compiler(queryset.db)
    try:
        sql, params = compiler.as_sql()
    except (EmptyResultSet, FullResultSet):
        raise ValueError("prepare() needs a query whose SQL takes its values as given") from None
    slots: list[int | None] = []
    constants: list[Any] = []
    for param in params:
        slot = next((i for i, mark in enumerate(marks) if param == mark), None)
        slots.append(slot)
        constants.append(None if slot is not None else param)
    missing = [i for i in range(len(marks)) if i not in slots]
    if missing:
        raise ValueError("every value of a prepared read must reach its SQL unchanged (used as a filter's value)")
    select = compiler.select
    if as_dicts:
        names = tuple(query.values_select)
    else:
        names = tuple(select[i][0].target.attname for i in compiler.klass_info["select_fields"])
    if len(names) != len(select):
        raise ValueError("prepare() could not match the selected columns to fields")
    converters = tuple(
        (pos, tuple(functions), expression)
        for pos, (functions, expression) in compiler.get_converters([s[0] for s in select]).items()
    )
    return _Compiled(
        sql=sql,
        slots=tuple(slots),
        constants=tuple(constants),
        model=query.model,
        names=names,
        as_dicts=as_dicts,
        converters=converters,
        for_update=query.select_for_update,
    )
