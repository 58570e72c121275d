"""Typed, validated experiment config: YAML in, ``key=value`` overrides, errors that name the path.

A config has six sections, mirroring the nouns of the game:

- ``data``   where real examples come from (a registered dataset and its parameters)
- ``model``  the two players, ``generator`` and ``discriminator`` (registered architectures)
- ``game``   the prior p(z), the cost (minimax, non-saturating, Wasserstein, ...) and regularizers
- ``optim``  one optimizer per player, each with its own learning rate and schedule (TTUR)
- ``train``  steps, batch size, seed, n_critic, update order, EMA, logging and checkpoints
- ``diagnostics``  thresholds of the game's health checks (they read the run, never change it)

Components are written as ``{name: <registered name>, <param>: <value>, ...}``. This module is the
schema only: it knows the sections and their fields, not the registries. Names and parameters of the
components are checked against the registries by the build layer (``ganforge.components.validate``,
called by ``ganforge.load_config``, ``ganforge.config_from_dict``, the CLI and ``build_experiment``), so
a typo still fails before training.

Reading is defensive: a config file must be UTF-8 (or UTF-16/32 with a byte-order mark), at most
``MAX_CONFIG_BYTES``, nested at most ``MAX_DEPTH`` levels, and its YAML aliases may add at most
``MAX_ALIAS_VALUES`` values (a "billion laughs" file is refused at once, not expanded).
"""

from __future__ import annotations

import codecs
import copy
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import yaml
from pydantic import BaseModel, ConfigDict, Field

from ganforge.diagnostics.settings import DiagnosticsSettings
from ganforge.errors import ConfigError

PositiveInt = Annotated[int, Field(gt=0)]
NonNegInt = Annotated[int, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Component(BaseModel):
    """A registered component: its ``name`` and the parameters of its constructor."""

    model_config = ConfigDict(extra="allow")
    name: str

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ModelConfig(Section):
    """The players, each a registered architecture with its parameters: the GAN's two, and any other
    player a game names (``model.<player>``; which players exist is the game's, ``game.name``)."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)
    generator: Component = Component(name="mlp")  # G(z): maps a latent z to an example
    discriminator: Component = Component(name="mlp")  # D(x): returns a logit (real vs fake)

    @pydantic.model_validator(mode="after")
    def _players_are_components(self) -> ModelConfig:
        for key, value in (self.model_extra or {}).items():
            if not isinstance(value, Component):
                self.model_extra[key] = Component.model_validate(  # type: ignore[index]
                    {"name": value} if isinstance(value, str) else value)
        return self

    def player(self, name: str) -> Component:
        """The architecture of player ``name``."""
        return getattr(self, name) if name in type(self).model_fields else (self.model_extra or {})[name]

    def players_set(self) -> set[str]:
        """The players this config names explicitly (not left at their defaults)."""
        return set(self.model_fields_set) | set(self.model_extra or {})


class GameConfig(Section):
    """The game (its players and their costs), the prior p(z), the cost, regularizers of D and
    auxiliary (AC-GAN / InfoGAN) terms."""

    name: str = "gan"  # the game: which players exist and each one's cost (a registered game)
    prior: Component = Component(name="gaussian", latent_dim=2)  # type: ignore[call-arg]  # p(z) and latent_dim
    cost: Component = Component(name="non_saturating")  # J(D) and J(G) from D's logits
    regularizers: list[Component] = []  # applied to the discriminator's cost, in order
    auxiliary: list[Component] = []  # AC-GAN / InfoGAN terms from D's auxiliary heads


class OptimizerConfig(Section):
    name: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"  # the optimizer
    lr: PositiveFloat = 2e-4  # learning rate (DCGAN's 2e-4)
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = (0.5, 0.999)  # adam(w)
    momentum: NonNegFloat = 0.0  # sgd / rmsprop only
    weight_decay: NonNegFloat = 0.0  # L2 penalty (decoupled for adamw)
    schedule: Literal["constant", "linear", "cosine"] = "constant"  # decay to 0 over train.steps
    warmup_steps: NonNegInt = 0  # linear warm-up of the learning rate from 0 over these steps


class OptimConfig(Section):
    """One optimizer per player, each with its own learning rate and schedule (TTUR): ``optim.<player>``
    for every player of the game (a player without a section gets the defaults)."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)
    generator: OptimizerConfig = OptimizerConfig()
    discriminator: OptimizerConfig = OptimizerConfig()

    @pydantic.model_validator(mode="after")
    def _sections_are_optimizers(self) -> OptimConfig:
        for key, value in (self.model_extra or {}).items():
            if not isinstance(value, OptimizerConfig):
                self.model_extra[key] = OptimizerConfig.model_validate(value)  # type: ignore[index]
        return self

    def player(self, name: str) -> OptimizerConfig:
        """The optimizer of player ``name`` (the defaults when the config has no section for it)."""
        if name in type(self).model_fields:
            return getattr(self, name)
        return (self.model_extra or {}).get(name) or OptimizerConfig()

    def players_set(self) -> set[str]:
        return set(self.model_fields_set) | set(self.model_extra or {})


class GuardConfig(Section):
    """The divergence guard: NaN/Inf or an exploding cost rolls back to the last good checkpoint."""

    enabled: bool = True  # watch for divergence and roll back
    max_retries: NonNegInt = 3  # rollbacks before giving up
    lr_factor: Annotated[float, Field(gt=0, lt=1)] = 0.5  # both learning rates are multiplied by this
    cost_limit: PositiveFloat = 1.0e6  # |J(D)| or |J(G)| above this counts as divergence


class PrivacyConfig(Section):
    """Differentially private training of the discriminator, the only player that sees real examples
    (DP-SGD: Abadi et al. 2016; the DP-GAN of Beaulieu-Jones et al. 2019): per-example clipping and
    Gaussian noise (Opacus), real examples drawn by Poisson sampling, (epsilon, delta) accounted over
    every discriminator step taken and cross-checked with a second accountant (dp-accounting)."""

    epsilon: PositiveFloat  # the target: training stops before the spent epsilon would pass it
    delta: Annotated[float, Field(gt=0, lt=1)] = 1.0e-5  # usually below 1 / (number of examples)
    max_grad_norm: PositiveFloat = 1.0  # each example's gradient is clipped to this L2 norm
    # the noise's standard deviation over max_grad_norm; None: the smallest that spends epsilon over
    # train.steps x train.n_critic discriminator steps
    noise_multiplier: PositiveFloat | None = None


class TrainConfig(Section):
    """The training loop: steps, batch, seed, update order, EMA, logging, checkpoints, execution."""

    steps: PositiveInt = 5000  # generator steps
    batch_size: PositiveInt = 256  # examples per step (the global batch over all processes)
    seed: Annotated[int, Field(ge=0, lt=2**32)] = 0  # every random stream derives from it (fits torch's seeds)
    n_critic: PositiveInt = 1  # discriminator steps per generator step
    # the update rule (a registered rule, with its parameters): alternating (D steps, then a G step
    # against the updated D; Goodfellow et al. 2014, Alg. 1), simultaneous (every player steps on
    # gradients taken at the same point), unrolled, extragradient, optimistic, consensus
    update: Component = Component(name="alternating")

    @pydantic.field_validator("update", mode="before")
    @classmethod
    def _update_by_name(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value
    ema_decay: Annotated[float, Field(ge=0, lt=1)] = 0.999  # EMA of G's weights; 0 disables
    ema_start: NonNegInt = 0  # step before which the EMA copy just tracks G
    # EMA ramp-up (StyleGAN2-ADA): the average's half-life is at most this fraction of the steps done; 0: off
    ema_rampup: Annotated[float, Field(ge=0)] = 0.05
    log_every: PositiveInt = 100  # steps between lines of metrics.jsonl
    checkpoint_every: PositiveInt = 1000  # steps between checkpoints
    keep_checkpoints: PositiveInt = 2  # newest checkpoints kept on disk
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: PositiveInt | None = None  # torch intra-op threads; None keeps torch's default
    progress: bool = True  # a progress bar on stderr
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16 = autocast with fp32 master weights
    channels_last: bool = False  # convolutional players in channels-last memory format
    guard: GuardConfig = GuardConfig()
    sync_batch_norm: bool = False  # distributed runs: batch norm statistics over all processes
    eval_every: NonNegInt = 0  # evaluate the EMA generator every N steps into metrics.jsonl (0: never)
    eval_metrics: list[str] = ["fid"]  # for image runs: fid, kid, is, prdc, modes (features: the data's)
    # the equilibrium analysis of the players (as `ganforge analyze`: gradients, Hessians, game Jacobian)
    # every N steps into analysis.jsonl, shown over training by the report (0: never)
    analyze_every: NonNegInt = 0
    # differential privacy of the discriminator's training (DP-SGD); None: off
    privacy: PrivacyConfig | None = None


# Fields of ``train`` that do not change the trajectory: a run may be resumed with other values.
RESUME_FREE_FIELDS = ("steps", "progress", "checkpoint_every", "keep_checkpoints", "log_every", "eval_every",
                      "eval_metrics", "analyze_every")
# Where a run executes: these change its numbers only at the level of floating-point rounding, so a
# run may move to another device or thread count, as it may to another number of processes (a run
# continued elsewhere is then not bit-identical to one that stayed). Hashed at their defaults, so
# that runs written before they were freed keep their hash when they used the defaults.
EXECUTION_FIELDS = {"device": "auto", "threads": None}
# Data parameters that say where the data lives, not what it is: not part of the trajectory (a run
# whose data moved resumes with the corrected path; whether the data itself is the same is for the
# run directory to check, by a fingerprint). Any dataset's parameter of one of these names counts.
DATA_LOCATION_PARAMS = ("path", "images", "labels", "labels_path")
# The schema's fields when the hash was first written down (before issue 11). A field added since is
# hashed only when it differs from its default, so adding a field with a default keeps the hash of
# every existing run; nothing needs to be listed when a field is added. Components are single values.
HASHED_FIELDS_V1 = frozenset({
    "name", "data", "model.generator", "model.discriminator", "game.prior", "game.cost", "game.regularizers",
    "game.auxiliary",
    *(f"optim.{player}.{k}" for player in ("generator", "discriminator")
      for k in ("name", "lr", "betas", "momentum", "weight_decay", "schedule", "warmup_steps")),
    *(f"train.{k}" for k in ("steps", "batch_size", "seed", "n_critic", "update", "ema_decay", "ema_start",
                             "log_every", "checkpoint_every", "keep_checkpoints", "device", "threads", "progress",
                             "precision", "channels_last", "sync_batch_norm", "eval_every", "eval_metrics")),
    *(f"train.guard.{k}" for k in ("enabled", "max_retries", "lr_factor", "cost_limit")),
})


def _drop_new_defaults(model: type[BaseModel], tree: dict[str, Any], defaults: dict[str, Any],
                       prefix: str = "") -> None:
    """Remove from ``tree`` every field not in HASHED_FIELDS_V1 whose value is its default."""
    for key, field in model.model_fields.items():
        if key not in tree:
            continue
        path = f"{prefix}{key}"
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, Section) and isinstance(tree[key], dict):
            _drop_new_defaults(sub, tree[key], defaults.get(key, {}), f"{path}.")
            is_new = not any(f.startswith(f"{path}.") for f in HASHED_FIELDS_V1)
            if is_new and not tree[key]:
                del tree[key]  # a section added since, every field at its default
        elif path not in HASHED_FIELDS_V1 and key in defaults and tree[key] == defaults[key]:
            del tree[key]


class Config(Section):
    """An experiment: where the data comes from, the players, the game, the optimizers, the loop."""

    name: str = "experiment"  # the run's name (shown in reports; not part of the trajectory)
    data: Component = Component(name="ring")  # a registered dataset and its parameters
    model: ModelConfig = ModelConfig()
    game: GameConfig = GameConfig()
    optim: OptimConfig = OptimConfig()
    train: TrainConfig = TrainConfig()
    diagnostics: DiagnosticsSettings = DiagnosticsSettings()  # thresholds of the game's health checks

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def _hashed_tree(self, legacy: bool, execution_free: bool) -> dict[str, Any]:
        d = self.to_dict()
        _drop_new_defaults(type(self), d, type(self)().to_dict())
        for key in RESUME_FREE_FIELDS:
            d["train"].pop(key, None)
        if execution_free:
            d["train"].update(EXECUTION_FIELDS)
        d.pop("diagnostics", None)  # they read the run, they do not change it
        update = d["train"].get("update")
        if isinstance(update, dict) and set(update) == {"name"}:
            d["train"]["update"] = update["name"]  # spelled as a plain name before issue 12
        if not legacy:
            d.pop("name", None)  # a renamed run is the same run
            for key in DATA_LOCATION_PARAMS:
                d["data"].pop(key, None)
        return d

    def trajectory_hash(self, execution_free: bool = True, legacy: bool = False) -> str:
        """Hash of everything that determines the run's trajectory (for safe resume).

        Not hashed: ``name``, where the data lives (``DATA_LOCATION_PARAMS``), the ``RESUME_FREE_FIELDS``,
        the diagnostics thresholds, where the run executes (``EXECUTION_FIELDS``, at their defaults),
        and fields added since the hash was first written down while they hold their defaults.

        ``legacy=True`` gives the rule of checkpoints written before issue 11, which hashed the name and
        the data's location; ``execution_free=False`` the rule of those written before ``EXECUTION_FIELDS``
        were freed, which hashed the device and thread count as they were."""
        d = self._hashed_tree(legacy, execution_free)
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def accepted_hashes(self) -> tuple[str, ...]:
        """The hashes a checkpoint of this config may carry: today's first, then the earlier rules' (so a
        run written before this rule still loads and resumes with its own name, data path, device and
        threads; the device and threads hashed as they are set is accepted under either rule)."""
        earlier = self.earlier_spellings()
        hashes = [self.trajectory_hash(execution_free=free) for free in (True, False)]
        if not earlier:  # when an earlier schema spelled this game otherwise, this spelling meant another game then
            hashes += [self.trajectory_hash(execution_free=free, legacy=True) for free in (True, False)]
        hashes += [cfg.trajectory_hash(execution_free=free, legacy=legacy)
                   for cfg in earlier for legacy in (False, True) for free in (True, False)]
        return tuple(dict.fromkeys(hashes))

    def earlier_spellings(self) -> list[Config]:
        """Configs that spelled this same trajectory differently under an earlier schema (a component
        parameter that moved, say); their hashes, under every rule, are accepted too: so far, the
        wasserstein cost's own weight clipping before issue 11 (``_before_issue_11``)."""
        return [Config.model_validate(raw) for raw in _before_issue_11(self.to_dict())]


def _before_issue_11(d: dict[str, Any]) -> list[dict[str, Any]]:
    """How a config written before issue 11 spelled the same game as ``d``: the wasserstein cost then
    clipped D's weights itself (``weight_clip``, default 0.01, null for none), which is now the
    ``weight_clip`` regularizer, first in the list (the cost's clipping ran before the regularizers')."""
    game = d["game"]
    if game["cost"].get("name") != "wasserstein" or set(game["cost"]) != {"name"}:
        return []
    regs = game["regularizers"]
    clips = [i for i, r in enumerate(regs) if r.get("name") == "weight_clip"]

    def spelled(cost: dict[str, Any], regularizers: list[Any]) -> dict[str, Any]:
        old = copy.deepcopy(d)
        old["game"]["cost"], old["game"]["regularizers"] = cost, copy.deepcopy(regularizers)
        return old

    if not clips:
        return [spelled({"name": "wasserstein", "weight_clip": None}, regs)]
    if clips != [0]:
        return []
    clip = regs[0].get("clip", 0.01)
    forms = [spelled({"name": "wasserstein", "weight_clip": clip}, regs[1:])]
    if clip == 0.01:
        forms.append(spelled({"name": "wasserstein"}, regs[1:]))  # the default, not written out
    return forms


def _format_loc(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


def _set_path(tree: dict[str, Any], dotted: str, value: Any, defaults: dict[str, Any]) -> None:
    """Set ``dotted`` in ``tree``; a missing section is first filled with its default contents."""
    keys = dotted.split(".")
    node: Any = tree
    default: Any = defaults
    for i, key in enumerate(keys[:-1]):
        if isinstance(node, list):
            if not key.isdigit() or int(key) >= len(node):
                raise ConfigError(".".join(keys[: i + 1]), f"no list item {key!r} to set")
            node = node[int(key)]
            default = None
            continue
        default = default.get(key) if isinstance(default, dict) else None
        nxt = node.get(key)
        if isinstance(nxt, str) and isinstance(default, dict) and "name" in default:
            nxt = node[key] = {"name": nxt}  # a component given by its name alone, now with a parameter
        if nxt is None:
            nxt = node[key] = copy.deepcopy(default) if isinstance(default, dict) else {}
        if not isinstance(nxt, (dict, list)):
            raise ConfigError(".".join(keys[: i + 1]), f"is a value ({nxt!r}), not a section")
        node = nxt
    last = keys[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise ConfigError(dotted, f"no list item {last!r} to set")
        node[int(last)] = value
    else:
        node[last] = value


def parse_override(text: str) -> tuple[str, Any]:
    """``'train.steps=100'`` -> ``('train.steps', 100)``; values are parsed as YAML scalars/lists."""
    if "=" not in text:
        raise ConfigError("", f"override {text!r} must look like key=value (e.g. train.steps=100)")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key:
        raise ConfigError("", f"override {text!r} has an empty key")
    try:
        value = load_yaml(raw, f"override {key}") if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def config_from_dict(raw: Any, overrides: list[str] | tuple[str, ...] = (), source: str = "") -> Config:
    """Validate a raw mapping (plus overrides) against the schema; raises ConfigError naming the path.

    Schema only: component names and parameters are checked by ``ganforge.components.validate`` (the
    public ``ganforge.config_from_dict`` does both)."""
    where = f" in {source}" if source else ""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError("", f"the top level{where} must be a mapping of sections, got {type(raw).__name__}")
    tree = copy.deepcopy(raw)
    defaults = Config().to_dict()
    for text in overrides:
        key, value = parse_override(text)
        _set_path(tree, key, value, defaults)
    try:
        cfg = Config.model_validate(tree)
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        path = _format_loc(err["loc"])
        if err["type"] == "extra_forbidden":
            parent = path.rsplit(".", 1)[0] if "." in path else ""
            allowed = _allowed_keys(parent)
            msg = f"unknown key{where}; allowed: {', '.join(allowed)}"
        elif err["type"] == "literal_error":
            msg = f"{err['msg']} (got {err.get('input')!r}){where}"
        else:
            msg = f"{err['msg']} (got {err.get('input')!r}){where}"
        raise ConfigError(path, msg) from None
    return cfg


def _allowed_keys(parent: str) -> list[str]:
    model: Any = Config
    for part in [p for p in parent.split(".") if p]:
        field = model.model_fields.get(part)
        if field is None:
            return []
        model = field.annotation
    fields = getattr(model, "model_fields", {})
    return sorted(fields)


# Limits of what a config file may be: generous for any real config, refused at once beyond.
MAX_CONFIG_BYTES = 4 << 20
MAX_DEPTH = 64  # nesting of mappings and lists
MAX_ALIAS_VALUES = 100_000  # values that YAML aliases may add to the document once followed


class _GuardedLoader(yaml.SafeLoader):
    """SafeLoader that refuses deep nesting and alias expansions beyond the limits while composing,
    before anything is built (so a 50,000-level file or a "billion laughs" file costs milliseconds)."""

    def __init__(self, stream: str, source: str):
        super().__init__(stream)
        self.source, self.depth = source, 0
        self.sizes: dict[int, int] = {}  # id(node) -> values in it once its aliases are followed
        self.composed = 0  # nodes read from the text (aliases not followed)

    def _refuse(self, what: str, node: yaml.Node | None = None) -> None:
        mark = node.start_mark if node is not None else self.peek_event().start_mark if self.check_event() else None
        at = f" line {mark.line + 1}" if mark else ""
        raise ConfigError("", f"{self.source}:{at}: {what}")

    def fetch_flow_collection_start(self, TokenClass):  # type: ignore[no-untyped-def]
        if self.flow_level >= MAX_DEPTH:  # before the scanner piles up one pending key per level
            raise ConfigError("", f"{self.source}: line {self.get_mark().line + 1}: nested deeper than "
                                  f"{MAX_DEPTH} levels; a config is a few sections deep")
        super().fetch_flow_collection_start(TokenClass)

    def compose_node(self, parent, index):  # type: ignore[no-untyped-def]
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self._refuse(f"nested deeper than {MAX_DEPTH} levels; a config is a few sections deep")
        alias = self.check_event(yaml.AliasEvent)
        try:
            node = super().compose_node(parent, index)
        finally:
            self.depth -= 1
        if not alias:
            self.composed += 1
        if isinstance(node, yaml.ScalarNode):
            self.sizes.setdefault(id(node), 1)
        return node

    def _size(self, node: yaml.Node) -> int:
        size = self.sizes.get(id(node))
        if size is None:  # an alias of a node that is still being composed
            self._refuse("a recursive alias (a value that contains itself)", node)
        return size  # type: ignore[return-value]

    def _count(self, node: yaml.Node, children: list[yaml.Node]) -> yaml.Node:
        size = 1 + sum(self._size(c) for c in children)
        if size > self.composed + 1 + MAX_ALIAS_VALUES:  # + 1: this node, counted once it returns
            self._refuse(f"its YAML aliases (&anchor / *alias) add more than {MAX_ALIAS_VALUES:,} values; "
                         "refused without expanding them", node)
        self.sizes[id(node)] = size
        return node

    def compose_sequence_node(self, anchor):  # type: ignore[no-untyped-def]
        node = super().compose_sequence_node(anchor)
        return self._count(node, list(node.value))

    def compose_mapping_node(self, anchor):  # type: ignore[no-untyped-def]
        node = super().compose_mapping_node(anchor)
        return self._count(node, [c for pair in node.value for c in pair])


def load_yaml(text: str, source: str = "config") -> Any:
    """``yaml.safe_load`` with the limits above; YAML syntax errors stay ``yaml.YAMLError``."""
    loader = _GuardedLoader(text, source)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def decode_config_bytes(data: bytes, source: str) -> str:
    """UTF-8 text (UTF-8/16/32 with a byte-order mark are decoded too); anything else is refused."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding)
            except UnicodeDecodeError as exc:
                raise ConfigError("", f"{source}: starts with a {encoding.upper()} byte-order mark but is not "
                                      f"valid {encoding.upper()} (offset {exc.start})") from None
    if b"\x00" in data:
        raise ConfigError("", f"{source}: holds NUL bytes, so it is not a text config (UTF-16 or UTF-32 "
                              "without a byte-order mark? save it as UTF-8)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError("", f"{source}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                              "a config is a UTF-8 YAML file") from None


def read_config_text(p: Path) -> str:
    """The text of config file ``p``: a regular file of at most MAX_CONFIG_BYTES, decoded."""
    try:
        st = os.stat(p)
        if not stat.S_ISREG(st.st_mode):
            kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise ConfigError("", f"config file {p} is {kind}")
        if st.st_size > MAX_CONFIG_BYTES:
            raise ConfigError("", f"config file {p} is {st.st_size:,} bytes; a config is at most "
                                  f"{MAX_CONFIG_BYTES:,} bytes")
        data = p.read_bytes()
    except OSError as exc:
        raise ConfigError("", f"cannot read config file {p}: {exc.strerror}") from None
    return decode_config_bytes(data, str(p))


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML recipe (a file path or the name of a packaged recipe) and apply overrides.

    Schema only (see ``config_from_dict``); ``ganforge.load_config`` also checks the components."""
    p = resolve_recipe(path)
    text = read_config_text(p)
    try:
        raw = load_yaml(text, str(p))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError("", f"{p}:{at}: {problem}") from None
    return config_from_dict(raw, overrides, source=str(p))


RECIPES_DIR = Path(__file__).parent / "configs"


def recipe_names() -> list[str]:
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def resolve_recipe(path: str | Path) -> Path:
    """A path to a YAML file (``~`` expanded; relative to the current directory), or the bare name of a
    packaged recipe (``ring8``)."""
    p = Path(path).expanduser()
    if p.exists():
        return p
    candidate = RECIPES_DIR / f"{path}.yaml"
    if not p.suffix and candidate.exists():
        return candidate
    raise ConfigError("", f"config file {path} not found (packaged recipes: {', '.join(recipe_names())})")
