"""docs/events.md is the one place every outbox event type is documented (issue 3, item 7): it must
cover every EventType, list every payload key the code emits, and match what the generator renders."""

from __future__ import annotations

import ast
from pathlib import Path

from api.outbox import doc
from api.outbox.catalog import CATALOG
from api.outbox.types import EventType

API_DIR = Path(__file__).resolve().parents[1] / "api"


def test_every_event_type_is_described():
    missing = sorted(et.value for et in EventType if et not in CATALOG)
    assert not missing, f"describe these in api/outbox/catalog.py: {missing}"
    for et, entry in CATALOG.items():
        assert entry.group and entry.entity and entry.when and entry.actor, et
        assert set(entry.refs) <= {"shop_id", "product_id", "order_id"}, et


def test_docs_events_md_is_up_to_date():
    assert doc.DOC_PATH.read_text(encoding="utf-8") == doc.render(), (
        "docs/events.md is out of date: run `python -m api.outbox.doc`"
    )
    assert doc.main(["--check"]) == 0


def test_generator_writes_and_checks(tmp_path):
    out = tmp_path / "events.md"
    assert doc.main(["--check", "--output", str(out)]) == 1  # missing counts as out of date
    assert doc.main(["--output", str(out)]) == 0
    assert doc.main(["--check", "--output", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    for et in EventType:
        assert f"### `{et.value}`" in text
    out.write_text(text.replace("message.sent", "message.posted"), encoding="utf-8")
    assert doc.main(["--check", "--output", str(out)]) == 1


def _event_types(node: ast.expr) -> list[str]:
    """The EventType members an emit() call's first argument names (a member, or `a if c else b`)."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "EventType":
        return [node.attr]
    if isinstance(node, ast.IfExp):
        return _event_types(node.body) + _event_types(node.orelse)
    return []


def _literal_keys(node: ast.expr) -> set[str]:
    """String keys of the dict literals making up a payload expression (`{...}`, `x | {...}`)."""
    if isinstance(node, ast.Dict):
        return {k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)}
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _literal_keys(node.left) | _literal_keys(node.right)
    return set()


def _members_in(node: ast.AST) -> set[str]:
    return {m for sub in ast.walk(node) if isinstance(sub, ast.expr) for m in _event_types(sub)}


def _emit_calls(node: ast.AST) -> list[ast.Call]:
    return [
        c
        for c in ast.walk(node)
        if isinstance(c, ast.Call)
        and isinstance(c.func, ast.Attribute)
        and c.func.attr == "emit"
        and len(c.args) >= 4
    ]


def emitted_payload_keys() -> dict[str, set[str]]:
    """EventType member name -> payload keys written as literals in `.emit(type, entity, id, {...})`.

    The type is a member (`EventType.x`, `a if c else b`) or a variable; a variable stands for the
    members its function names, or else those passed to the function by its callers in the module
    (`_end(..., EventType.session_expired)`, `_announce(..., EventType.call_ended, ...)`)."""
    found: dict[str, set[str]] = {}
    for path in API_DIR.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        passed: dict[str, set[str]] = {}
        for call in ast.walk(tree):
            if isinstance(call, ast.Call) and isinstance(call.func, ast.Name):
                for arg in [*call.args, *(k.value for k in call.keywords)]:
                    passed.setdefault(call.func.id, set()).update(_event_types(arg))
        for func in ast.walk(tree):
            if not isinstance(func, ast.FunctionDef):
                continue
            for call in _emit_calls(func):
                names = _event_types(call.args[0])
                if not names and isinstance(call.args[0], ast.Name):
                    names = sorted(_members_in(func) or passed.get(func.name, set()))
                for name in names:
                    found.setdefault(name, set()).update(_literal_keys(call.args[3]))
    return found


def test_emitted_payload_keys_are_documented():
    emitted = emitted_payload_keys()
    # The scan works: literal types, a variable set in its function, a parameter passed by callers.
    assert {"message_sent", "attachment_uploaded", "shop_followed", "session_expired", "call_missed"} <= set(
        emitted
    )
    assert {"callerId", "duration"} <= emitted["call_missed"]
    undocumented = {
        name: sorted(keys - CATALOG[EventType[name]].payload.keys())
        for name, keys in emitted.items()
        if keys - CATALOG[EventType[name]].payload.keys()
    }
    assert not undocumented, f"payload keys missing from api/outbox/catalog.py: {undocumented}"
