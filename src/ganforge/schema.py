"""A reference of everything a config may say: ``ganforge config --schema`` and docs/config-reference.md.

Read from the code, so it cannot drift from it: the sections and fields of the pydantic schema in
``config.py`` (type, constraints, default, and the comment written beside each field), and every
registered component with the parameters of its constructor (as ``Registry.params_model`` sees them,
without the shapes and dimensions the build layer passes itself). Components registered by plugins
appear once the plugins are loaded.
"""

from __future__ import annotations

import inspect
import io
import json
import re
import tokenize
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from ganforge.components import _D_CONTEXT, _G_CONTEXT
from ganforge.config import Component, Config
from ganforge.data import DATASETS
from ganforge.data.images import ImageOptions
from ganforge.game import AUXILIARY, COSTS, PRIORS, REGULARIZERS
from ganforge.models import DISCRIMINATORS, GENERATORS
from ganforge.registry import Registry
from ganforge.train.updates import UPDATE_RULES

# Where a config names components from, and what the build layer passes to them itself.
REGISTRIES: dict[str, tuple[Registry[Any], frozenset[str]]] = {
    "data": (DATASETS, frozenset()),
    "model.generator": (GENERATORS, frozenset(_G_CONTEXT)),
    "model.discriminator": (DISCRIMINATORS, frozenset(_D_CONTEXT)),
    "game.prior": (PRIORS, frozenset()),
    "game.cost": (COSTS, frozenset()),
    "game.regularizers": (REGULARIZERS, frozenset()),
    "game.auxiliary": (AUXILIARY, frozenset()),
    "train.update": (UPDATE_RULES, frozenset()),
}

_OPS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}


def _constraints(metadata: list[Any]) -> str:
    """``> 0``, ``>= 2``, or an interval ``in [0, 1)`` when bounded on both sides."""
    bounds: dict[str, Any] = {}
    for m in metadata:
        for attr in _OPS:
            if getattr(m, attr, None) is not None:
                bounds[attr] = getattr(m, attr)
        for inner in getattr(m, "metadata", []) or []:  # a FieldInfo inside Annotated
            for attr in _OPS:
                if getattr(inner, attr, None) is not None:
                    bounds[attr] = getattr(inner, attr)
    lo = [(k, bounds[k]) for k in ("gt", "ge") if k in bounds]
    hi = [(k, bounds[k]) for k in ("lt", "le") if k in bounds]
    if lo and hi:
        (lk, lv), (hk, hv) = lo[0], hi[0]
        return f"in {'(' if lk == 'gt' else '['}{_show(lv)}, {_show(hv)}{')' if hk == 'lt' else ']'}"
    return ", ".join(f"{_OPS[k]} {_show(v)}" for k, v in lo + hi)


def type_name(ann: Any, metadata: list[Any] | None = None) -> str:
    """A short, stable description of a type annotation with its constraints: ``int > 0``."""
    origin, args = get_origin(ann), get_args(ann)
    if origin is typing.Annotated:
        base, *meta = args
        return type_name(base, list(metadata or []) + meta)
    if origin is Literal:
        text = " | ".join(_show(a) for a in args)
    elif origin in (Union, types.UnionType):
        text = " or ".join(type_name(a) for a in args)
    elif origin in (list, tuple, dict):
        inner = ", ".join("..." if a is Ellipsis else type_name(a) for a in args)
        text = {list: f"list[{inner}]", tuple: f"tuple[{inner}]", dict: f"dict[{inner}]"}[origin]
    elif ann is type(None):
        text = "null"
    elif ann is Any:
        text = "any"
    elif isinstance(ann, type) and issubclass(ann, Component):
        text = "component"
    elif isinstance(ann, type):
        text = ann.__name__
    else:
        text = str(ann).replace("typing.", "")
    cons = _constraints(list(metadata or []))
    return f"{text} {cons}" if cons else text


def _show(value: Any) -> str:
    """A default as it would be written in YAML (flow style)."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    if isinstance(value, tuple):
        value = list(value)
    try:
        return json.dumps(value)
    except TypeError:
        return repr(value)


_LINTER_NOTE = re.compile(r"^(noqa(:\s*[A-Z]+[0-9]+(,\s*[A-Z]+[0-9]+)*)?|type:\s*ignore(\[[^\]]*\])?)\s*")


def clean_comment(comment: str) -> str:
    """A comment's meaning, without linter notes (``noqa: B006``, ``type: ignore[...]``) and the
    parenthesized justification that follows them."""
    text = comment.lstrip("#").strip()
    noted = False
    while (m := _LINTER_NOTE.match(text)) and m.group(0):
        text, noted = text[m.end():].lstrip("#").strip(), True
    if noted and text.startswith("(") and text.endswith(")"):
        text = ""
    return text


def field_comments(cls: type) -> dict[str, str]:
    """The comment beside each field of a class body (``name: type = default  # comment``), or the
    comment lines directly above it."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            text = clean_comment(tok.string)
            if text:
                comments[tok.start[0]] = text
    lines = source.splitlines()
    out: dict[str, str] = {}
    for i, line in enumerate(lines, start=1):
        stripped = line.strip()
        name = stripped.split(":", 1)[0].strip()
        if not name.isidentifier() or ":" not in stripped or stripped.startswith(("def ", "class ", "#")):
            continue
        if line[: len(line) - len(line.lstrip())] != " " * 4:
            continue  # only the class body's own fields
        if i in comments and not stripped.startswith("#"):
            out[name] = comments[i]
            continue
        above, j = [], i - 1
        while j in comments and lines[j - 1].strip().startswith("#"):
            above.insert(0, comments[j])
            j -= 1
        if above:
            out[name] = " ".join(above)
    return out


def param_comments(obj: Any) -> dict[str, str]:
    """The comment beside each parameter in a constructor's signature (``ngf: Width = 64,  # ...``);
    for image datasets also those of the options every image source shares."""
    target = obj.__init__ if inspect.isclass(obj) else obj
    out: dict[str, str] = {}
    for source_obj in (target,):
        try:
            source = inspect.getsource(source_obj)
        except (OSError, TypeError):
            continue
        lines = source.splitlines()
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type != tokenize.COMMENT:
                continue
            line = lines[tok.start[0] - 1][: tok.start[1]]
            names = [part.split(":", 1)[0].strip().lstrip("*(") for part in line.split(",") if ":" in part]
            names = [n.removeprefix("def ").split("(")[-1] for n in names]
            if len(names) == 1 and names[0].isidentifier() and clean_comment(tok.string):
                out.setdefault(names[0], clean_comment(tok.string))
    return out


def _first_line(doc: str | None) -> str:
    return (inspect.cleandoc(doc).split("\n\n")[0].replace("\n", " ").strip()) if doc else ""


def _section(model: type[BaseModel], path: str) -> list[dict[str, Any]]:
    """Rows ``{path, type, default, meaning}`` for every field, nested sections flattened."""
    rows: list[dict[str, Any]] = []
    comments = field_comments(model)
    for name, field in model.model_fields.items():
        sub = field.annotation
        where = f"{path}.{name}" if path else name
        if isinstance(sub, type) and issubclass(sub, BaseModel) and not issubclass(sub, Component):
            rows += _section(sub, where)
            continue
        optional = _optional_section(sub)
        if optional is not None:  # an optional section (train.privacy): the row, then its fields
            rows.append({"path": where, "type": f"{optional.__name__} or null", "default": _show(None),
                         "meaning": field.description or comments.get(name, "")})
            rows += _section(optional, where)
            continue
        default = field.get_default(call_default_factory=True)
        rows.append({"path": where, "type": type_name(sub, list(field.metadata)),
                     "default": "required" if field.is_required() else _show(default), "meaning": field.description or comments.get(name, "")})
    return rows


def _optional_section(ann: Any) -> type[BaseModel] | None:
    """``S`` for an annotation ``S | None`` whose ``S`` is a section, else None."""
    import types  # noqa: PLC0415
    import typing  # noqa: PLC0415

    if typing.get_origin(ann) not in (typing.Union, types.UnionType):
        return None
    args = [a for a in typing.get_args(ann) if a is not type(None)]
    if len(args) == 1 and isinstance(args[0], type) and issubclass(args[0], BaseModel) \
            and not issubclass(args[0], Component):
        return args[0]
    return None


def sections() -> dict[str, dict[str, Any]]:
    """Each top-level section (and the top-level scalars as ``""``) with its doc and field rows."""
    out: dict[str, dict[str, Any]] = {}
    for name, field in Config.model_fields.items():
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel) and not issubclass(sub, Component):
            out[name] = {"doc": _first_line(sub.__doc__), "fields": _section(sub, name)}
        else:
            top = out.setdefault("", {"doc": _first_line(Config.__doc__), "fields": []})
            default = field.get_default(call_default_factory=True)
            top["fields"].append({"path": name, "type": type_name(sub, list(field.metadata)),
                                  "default": _show(default),
                                  "meaning": field.description or field_comments(Config).get(name, "")})
    return out


def components() -> dict[str, dict[str, Any]]:
    """Every registry a config names components from, with each entry's doc and parameters."""
    out: dict[str, dict[str, Any]] = {}
    for where, (registry, context) in REGISTRIES.items():
        entries = {}
        for name in registry.names():
            model = registry.params_model(name, context)
            comments = param_comments(registry.get(name))
            if where == "data":
                comments = {**field_comments(ImageOptions), **comments}
            params = []
            for pname, field in model.model_fields.items():
                required = field.is_required()
                params.append({"name": pname, "type": type_name(field.annotation, list(field.metadata)),
                               "default": None if required else _show(field.get_default(call_default_factory=True)),
                               "required": required, "meaning": comments.get(pname, "")})
            entries[name] = {"doc": _first_line(registry.get(name).__doc__), "params": params}
        out[where] = {"kind": registry.kind, "entries": entries}
    return out


def schema() -> dict[str, Any]:
    return {"sections": sections(), "components": components()}


def to_json(data: dict[str, Any] | None = None) -> str:
    return json.dumps(data or schema(), indent=2)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(data: dict[str, Any] | None = None) -> str:
    data = data or schema()
    w = ["# Config reference", "",
         "Generated by `ganforge config --schema --format markdown` from the code (the schema in",
         "`src/ganforge/config.py` and the registered components' constructors); do not edit by hand.",
         "A test fails when it is stale: regenerate it with",
         "`ganforge config --schema --format markdown > docs/config-reference.md`.", "",
         "A config is YAML with the sections below; every value can be overridden on the command line",
         "with `--set path=value` (e.g. `--set train.steps=2000`). Components are written",
         "`{name: <registered name>, <parameter>: <value>, ...}`. Paths in a config (`data.path`, a",
         "config file given to `ganforge train`) may start with `~`; relative paths are resolved against",
         "the current directory. See `configs/my-images.yaml` for a commented config for your own images.", ""]
    for name, sec in data["sections"].items():
        w += [f"## {name or 'Top level'}", "", _cell(sec["doc"]), "",
              "| field | type | default | meaning |", "|---|---|---|---|"]
        w += [f"| `{r['path']}` | {_cell(r['type'])} | `{_cell(r['default'])}` | {_cell(r['meaning'])} |"
              for r in sec["fields"]]
        w.append("")
    w += ["## Components", "",
          "The parameters each registered component accepts (shapes and dimensions that come from the data",
          "and the prior are passed by ganforge itself and are not listed).", ""]
    for where, reg in data["components"].items():
        w += [f"### `{where}`: {reg['kind']}", ""]
        for name, entry in reg["entries"].items():
            w += [f"#### `{name}`", "", _cell(entry["doc"]) or "(no description)", ""]
            if entry["params"]:
                w += ["| parameter | type | default | meaning |", "|---|---|---|---|"]
                w += [f"| `{p['name']}` | {_cell(p['type'])} | "
                      f"{'required' if p['required'] else '`' + _cell(p['default']) + '`'} | {_cell(p['meaning'])} |"
                      for p in entry["params"]]
            else:
                w.append("No parameters.")
            w.append("")
    return "\n".join(w)


def to_text(data: dict[str, Any] | None = None) -> str:
    data = data or schema()
    w: list[str] = []
    for name, sec in data["sections"].items():
        w.append(f"{name or '(top level)'}: {sec['doc']}")
        for r in sec["fields"]:
            meaning = f"  # {r['meaning']}" if r["meaning"] else ""
            w.append(f"  {r['path']}: {r['type']} = {r['default']}{meaning}")
        w.append("")
    for where, reg in data["components"].items():
        w.append(f"{where}: {reg['kind']} (one of: {', '.join(reg['entries'])})")
        for name, entry in reg["entries"].items():
            w.append(f"  {name}: {entry['doc']}")
            for p in entry["params"]:
                default = "required" if p["required"] else f"= {p['default']}"
                meaning = f"  # {p['meaning']}" if p["meaning"] else ""
                w.append(f"    {p['name']}: {p['type']} {default}{meaning}")
        w.append("")
    return "\n".join(w)
