"""The type stubs match the compiled module, and every public item has a docstring."""

from __future__ import annotations

import ast
from pathlib import Path

import optout

STUB = Path(optout.__file__).with_name("_optout.pyi")


def stub_members() -> dict[str, set[str]]:
    tree = ast.parse(STUB.read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name in ("Ledger", "Manifest"):
            out[node.name] = {
                n.name for n in node.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")
            }
    return out


def test_stubs_cover_the_runtime_api():
    assert (Path(optout.__file__).parent / "py.typed").exists()
    for cls_name, names in stub_members().items():
        cls = getattr(optout, cls_name)
        runtime = {n for n in dir(cls) if not n.startswith("_")}
        assert runtime == names, cls_name


def test_every_public_item_has_a_docstring():
    for cls in (optout.Ledger, optout.Manifest):
        assert cls.__doc__
        for n in dir(cls):
            if not n.startswith("_"):
                assert getattr(cls, n).__doc__, f"{cls.__name__}.{n}"
    for n in optout.__all__:
        obj = getattr(optout, n)
        if callable(obj):
            assert obj.__doc__, n
    assert optout.__doc__
