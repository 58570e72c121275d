"""One small registry class: components are chosen by name and built from typed parameters.

Each registered entry is a class or function whose keyword parameters carry type annotations
(pydantic constraints allowed, e.g. ``Annotated[float, Field(gt=0)]``). ``build`` validates the
user's parameters against that signature, so a config error names the exact config path and what
is allowed, and an unknown name lists the valid ones.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

import pydantic

from ganforge.errors import ConfigError, GanforgeError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to constructors of one kind of component (cost, generator, dataset, ...)."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Callable[..., T]] = {}
        self._models: dict[str, type[pydantic.BaseModel]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        def decorator(obj: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            obj.registered_name = name  # type: ignore[attr-defined]
            return obj

        return decorator

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def get(self, name: str, where: str = "") -> Callable[..., T]:
        if name not in self._entries:
            raise ConfigError(where, f"unknown {self.kind} {name!r}; valid names: {', '.join(self.names())}")
        return self._entries[name]

    def params_model(self, name: str, exclude: frozenset[str] = frozenset()) -> type[pydantic.BaseModel]:
        """A strict pydantic model of the entry's user-settable keyword parameters."""
        key = name + "|" + ",".join(sorted(exclude))
        if key not in self._models:
            obj = self._entries[name]
            target = obj.__init__ if inspect.isclass(obj) else obj
            sig = inspect.signature(target, eval_str=True)
            fields: dict[str, Any] = {}
            for pname, p in sig.parameters.items():
                if pname in ("self", "cls") or pname in exclude:
                    continue
                if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                    continue
                ann = Any if p.annotation is inspect.Parameter.empty else p.annotation
                default = ... if p.default is inspect.Parameter.empty else p.default
                fields[pname] = (ann, default)
            self._models[key] = pydantic.create_model(  # type: ignore[call-overload]
                f"{self.kind}_{name}_params",
                __config__=pydantic.ConfigDict(extra="forbid", arbitrary_types_allowed=True),
                **fields,
            )
        return self._models[key]

    def validate(self, name: str, params: Mapping[str, Any], where: str,
                 context: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Check ``params`` against the entry's signature; raise ConfigError naming the path."""
        self.get(name, f"{where}.name" if where else "name")
        context = dict(context or {})
        model = self.params_model(name, frozenset(context))
        try:
            validated = model.model_validate(dict(params))
        except pydantic.ValidationError as exc:
            err = exc.errors()[0]
            loc = ".".join(str(p) for p in err["loc"])
            path = f"{where}.{loc}" if where else loc
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                allowed = ", ".join(sorted(model.model_fields))
                msg = f"unknown key for {self.kind} {name!r}; allowed keys: {allowed or '(none)'}"
            elif err["type"] == "missing":
                msg = f"required by {self.kind} {name!r}"
            else:
                msg = f"{msg} (got {err.get('input')!r})"
            raise ConfigError(path, msg) from None
        return {k: getattr(validated, k) for k in model.model_fields}

    def build(self, name: str, params: Mapping[str, Any] | None = None, where: str = "",
              **context: Any) -> T:
        """Build entry ``name`` from user ``params`` plus fixed ``context`` kwargs (shapes, dims)."""
        kwargs = self.validate(name, params or {}, where, context)
        try:
            return self._entries[name](**kwargs, **context)
        except GanforgeError:
            raise  # already names its file or config path (DataError, ConfigError)
        except ValueError as exc:
            raise ConfigError(where, str(exc)) from None


# -- plugins: components registered in Python, made usable from the command line ----------------

PLUGIN_GROUP = "ganforge.plugins"  # importlib.metadata entry points of installed packages
PLUGIN_ENV = "GANFORGE_PLUGINS"  # comma-separated module names


class PluginError(GanforgeError):
    """A plugin module named by --plugin, GANFORGE_PLUGINS or an entry point cannot be imported."""


def _import_plugin(name: str, source: str) -> None:
    import importlib

    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise PluginError(f"plugin module {name!r} ({source}) not found; it must be importable: a "
                              "module in the current directory, on PYTHONPATH, or installed") from None
        raise PluginError(f"plugin module {name!r} ({source}) failed to import: {exc}") from None
    except GanforgeError:
        raise
    except Exception as exc:  # the plugin's own code failed: say which plugin, in one line
        raise PluginError(f"plugin module {name!r} ({source}) failed to import: "
                          f"{type(exc).__name__}: {exc}") from None


def load_plugins(modules: Iterable[str] = (), environ: Mapping[str, str] | None = None,
                 entry_points: bool = True) -> list[str]:
    """Import plugin modules so that their ``@REGISTRY.register(...)`` decorators run; return their names.

    Plugins come from the ``ganforge.plugins`` entry-point group of installed packages (each entry
    point names a module, or a function that is called once to register), from ``modules`` (the
    CLI's ``--plugin``) and from the ``GANFORGE_PLUGINS`` environment variable. Importing a plugin
    runs its code, as any import does: name only your own modules or packages you trust. Explicitly
    named modules are also looked up in the current directory. Importing twice is harmless (Python
    caches modules), so a plugin registers its components once.
    """
    import importlib.metadata
    import os
    import sys

    environ = os.environ if environ is None else environ
    named = [(m.strip(), "--plugin") for m in modules if m.strip()]
    named += [(m.strip(), PLUGIN_ENV) for m in environ.get(PLUGIN_ENV, "").split(",") if m.strip()]
    loaded: list[str] = []
    if entry_points:
        for ep in importlib.metadata.entry_points(group=PLUGIN_GROUP):
            try:
                obj = ep.load()
            except Exception as exc:
                raise PluginError(f"plugin entry point {ep.name!r} = {ep.value!r} (group {PLUGIN_GROUP}) failed "
                                  f"to load: {type(exc).__name__}: {exc}") from None
            if callable(obj) and not isinstance(obj, type):
                obj()
            loaded.append(ep.value)
    if named and "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())  # after everything else: a plugin cannot shadow an installed module
    for name, source in named:
        _import_plugin(name, source)
        loaded.append(name)
    return loaded

