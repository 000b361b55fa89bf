"""``docs/events/<service>.md``, generated from the contracts and the services' handlers.

Per producer: its module's docstring, a table of its events (version, key, when, payload,
who consumes it), the shapes and names inside the payloads, then what the service itself
consumes and its module's ``NOTES``. The consumers are read from the services' own
``<app>/events.py`` (every ``@handles(Contract)`` and the handler's docstring, its effect),
with ``ast``: no service is imported, so the pages are built without Django.

``python3 manage_all.py events-docs`` writes the pages; ``--check`` only says which differ
(the test suite fails the same way when a page drifts from the code).
"""

from __future__ import annotations

import ast
import datetime as dt
import enum
import inspect
import types
import typing
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import msgspec

from shared.contracts import CONTRACTS, PRODUCERS
from shared.contracts.base import Contract, Shape

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "events"
COMMAND = "python3 manage_all.py events-docs"


@dataclass(frozen=True)
class Handler:
    service: str
    function: str
    event_type: str
    topic: str
    effect: str


def handlers(root: Path = ROOT) -> list[Handler]:
    """Every ``@handles(Contract)`` in ``<service>_svc/<app>/events.py``, in file order."""
    found = []
    for path in sorted(root.glob("*_svc/*/events.py")):
        service = path.parts[-3].removesuffix("_svc")
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef):
                continue
            effect = " ".join((ast.get_docstring(node) or "").split())
            for deco in node.decorator_list:
                if (
                    isinstance(deco, ast.Call)
                    and isinstance(deco.func, ast.Name)
                    and deco.func.id == "handles"
                    and deco.args
                    and isinstance(deco.args[0], ast.Name)
                ):
                    name = deco.args[0].id
                    if name not in CONTRACTS:
                        raise LookupError(f"{path}: @handles({name}) names no contract in shared.contracts")
                    found.append(Handler(service, node.name, name, CONTRACTS[name].topic, effect))
    return found


def pages(root: Path = ROOT) -> dict[str, str]:
    """File name -> the page's text, one per producing service."""
    every = handlers(root)
    return {f"{service}.md": _page(service, module, every) for service, module in PRODUCERS.items()}


def _page(service: str, module: types.ModuleType, every: list[Handler]) -> str:
    events = module.EVENTS
    out = [
        f"# Events of the {service} service",
        "",
        f"<!-- Generated from shared/contracts/{service}.py and the services' events.py by `{COMMAND}`:"
        " edit those, not this page. -->",
        "",
        _text(module.__doc__),
        "",
        "Envelope as in `shared/messaging/events.py`; `event_version` is the contract's version. A consumer",
        "dead-letters an event of a version it does not know, or whose payload does not fit the contract,",
        "with the reason.",
        "",
        "| event | version | key | when | payload | consumed by |",
        "|---|---|---|---|---|---|",
    ]
    for contract in events:
        consumers = sorted({h.service for h in every if h.event_type == contract.event_type()})
        out.append(
            f"| `{contract.event_type()}` | {contract.version} | `{contract.key}` ({contract.aggregate_type})"
            f" | {_one_line(contract.__doc__)} | {_fields(contract)} | {', '.join(consumers) or 'none'} |"
        )
    parts = _parts(events)
    if parts:
        out += ["", "Inside the payloads:", "", "| name | what | values |", "|---|---|---|"]
        for part in parts:
            if issubclass(part, Shape):
                out.append(f"| `{part.__name__}` | {_one_line(part.__doc__)} | {_fields(part)} |")
            else:
                values = "; ".join(
                    f"`{m.value}`" + (f": {note}" if (note := _comments(part).get(m.name)) else "") for m in part
                )
                out.append(f"| `{part.__name__}` | {_one_line(part.__doc__)} | {values} |")
    mine = [h for h in every if h.service == service]
    out.append("")
    if mine:
        out += [
            f"## Consumed (consumer group `{service}`, `manage.py consume`)",
            "",
            "| event | topic | effect |",
            "|---|---|---|",
        ]
        by_function: dict[str, list[Handler]] = {}
        for h in mine:
            by_function.setdefault(h.function, []).append(h)
        for same in by_function.values():
            names = ", ".join(f"`{h.event_type}`" for h in same)
            topics = ", ".join(sorted({f"`{h.topic}`" for h in same}))
            out.append(f"| {names} | {topics} | {same[0].effect} |")
    else:
        out.append(
            f"## Consumed\n\nNone: the {service} service keeps no consumer (`manage.py consume` is not run for it)."
        )
    notes = getattr(module, "NOTES", "")
    if notes:
        out += ["", notes.rstrip()]
    return "\n".join(out) + "\n"


def _parts(events: tuple[type[Contract], ...]) -> list[type]:
    """The shapes and enums the events' fields use, in the order they first appear."""
    seen: list[type] = []

    def visit(tp: object) -> None:
        for arg in typing.get_args(tp):
            visit(arg)
        if isinstance(tp, type) and (issubclass(tp, Shape) or issubclass(tp, enum.Enum)) and tp not in seen:
            seen.append(tp)
            if issubclass(tp, Shape):
                for field in msgspec.structs.fields(tp):
                    visit(field.type)

    for contract in events:
        for field in msgspec.structs.fields(contract):
            visit(field.type)
    return seen


def _fields(struct: type[msgspec.Struct]) -> str:
    notes = _comments(struct)
    shown = []
    for field in msgspec.structs.fields(struct):
        extra = []
        if field.default is not msgspec.NODEFAULT and field.default not in ([], None, ""):
            extra.append(f"default `{_value(field.default)}`")
        if field.name in notes:
            extra.append(notes[field.name])
        shown.append(f"`{field.name}` {_type(field.type)}" + (f" ({'; '.join(extra)})" if extra else ""))
    return ", ".join(shown)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, enum.Enum):
        return str(value.value)
    return str(value)


def _type(tp: object) -> str:
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        named = [_type(a) for a in args if a is not type(None)]
        return " or ".join(named) + (" or null" if type(None) in args else "")
    if typing.get_origin(tp) is list:
        return f"[{_type(args[0])}]"
    names = {int: "int", str: "string", bool: "bool", Decimal: "decimal string", dt.datetime: "ISO 8601 time"}
    if tp in names:
        return names[tp]
    if isinstance(tp, type):
        return tp.__name__
    return str(tp)


def _comments(cls: type) -> dict[str, str]:
    """``#: ...`` comments written above a class's fields (or members), by name; the base classes' too."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass.__module__.startswith("shared.contracts") and klass not in (Contract, Shape):
            lines, _ = inspect.getsourcelines(klass)
            for i, line in enumerate(lines):
                name = line.strip().split(":")[0].split("=")[0].strip()
                if i and lines[i - 1].strip().startswith("#:") and name.isidentifier():
                    found[name] = lines[i - 1].strip().removeprefix("#:").strip()
    return found


def _text(doc: str | None) -> str:
    return inspect.cleandoc(doc or "")


def _one_line(doc: str | None) -> str:
    return " ".join(_text(doc).split())


def drifted(root: Path = ROOT) -> list[str]:
    """The pages under ``docs/events`` that are not what the contracts make (missing ones too)."""
    folder = root / "docs" / "events"
    return [
        name
        for name, text in pages(root).items()
        if not (folder / name).exists() or (folder / name).read_text() != text
    ]


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="events-docs", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say which pages differ (exit 1 if any)")
    args = parser.parse_args(argv)
    if args.check:
        stale = drifted()
        for name in stale:
            print(f"docs/events/{name} differs from the contracts; run: {COMMAND}")
        return 1 if stale else 0
    DOCS.mkdir(parents=True, exist_ok=True)
    for name, text in pages().items():
        path = DOCS / name
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote docs/events/{name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
