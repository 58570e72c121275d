"""Typed, validated experiment config: YAML in, ``key=value`` overrides, errors that name the path.

A config has five sections, mirroring the nouns of the game:

- ``data``   where real examples come from (a registered dataset and its parameters)
- ``model``  the two players, ``generator`` and ``discriminator`` (registered architectures)
- ``game``   the prior p(z), the cost (minimax, non-saturating, Wasserstein, ...) and regularizers
- ``optim``  one optimizer per player, each with its own learning rate and schedule (TTUR)
- ``train``  steps, batch size, seed, n_critic, update order, EMA, logging and checkpoints

Components are written as ``{name: <registered name>, <param>: <value>, ...}``; their parameters are
checked against the registered constructor when the config is loaded, so a typo fails before training.
"""

from __future__ import annotations

import copy
import hashlib
import json
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
    generator: Component = Component(name="mlp")
    discriminator: Component = Component(name="mlp")


class GameConfig(Section):
    prior: Component = Component(name="gaussian", latent_dim=2)  # type: ignore[call-arg]
    cost: Component = Component(name="non_saturating")
    regularizers: list[Component] = []  # applied to the discriminator's cost, in order
    auxiliary: list[Component] = []  # AC-GAN / InfoGAN terms from D's auxiliary heads


class OptimizerConfig(Section):
    name: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    lr: PositiveFloat = 2e-4
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = (0.5, 0.999)
    momentum: NonNegFloat = 0.0  # sgd / rmsprop only
    weight_decay: NonNegFloat = 0.0
    schedule: Literal["constant", "linear", "cosine"] = "constant"  # decay to 0 over train.steps
    warmup_steps: NonNegInt = 0


class OptimConfig(Section):
    generator: OptimizerConfig = OptimizerConfig()
    discriminator: OptimizerConfig = OptimizerConfig()


class GuardConfig(Section):
    """The divergence guard: NaN/Inf or an exploding cost rolls back to the last good checkpoint."""

    enabled: bool = True
    max_retries: NonNegInt = 3  # rollbacks before giving up
    lr_factor: Annotated[float, Field(gt=0, lt=1)] = 0.5  # both learning rates are multiplied by this
    cost_limit: PositiveFloat = 1.0e6  # |J(D)| or |J(G)| above this counts as divergence


class TrainConfig(Section):
    steps: PositiveInt = 5000  # generator steps
    batch_size: PositiveInt = 256
    seed: int = 0
    n_critic: PositiveInt = 1  # discriminator steps per generator step
    # alternating: D steps, then a G step against the updated D (Goodfellow et al. 2014, Alg. 1);
    # simultaneous: both players step on gradients taken at the same point.
    update: Literal["alternating", "simultaneous"] = "alternating"
    ema_decay: Annotated[float, Field(ge=0, lt=1)] = 0.999  # EMA of G's weights; 0 disables
    ema_start: NonNegInt = 0  # step before which the EMA copy just tracks G
    # EMA ramp-up (StyleGAN2-ADA): the average's half-life is at most this fraction of the steps done; 0: off
    ema_rampup: Annotated[float, Field(ge=0)] = 0.05
    log_every: PositiveInt = 100
    checkpoint_every: PositiveInt = 1000
    keep_checkpoints: PositiveInt = 2
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: PositiveInt | None = None  # torch intra-op threads; None keeps torch's default
    progress: bool = True
    precision: Literal["fp32", "bf16"] = "fp32"  # bf16 = autocast with fp32 master weights
    channels_last: bool = False  # convolutional players in channels-last memory format
    guard: GuardConfig = GuardConfig()
    sync_batch_norm: bool = False  # distributed runs: batch norm statistics over all processes
    eval_every: NonNegInt = 0  # evaluate the EMA generator every N steps into metrics.jsonl (0: never)
    eval_metrics: list[str] = ["fid"]  # for image runs: fid, kid, is, prdc, modes (features: the data's)


# Fields of ``train`` that do not change the trajectory: a run may be resumed with other values.
RESUME_FREE_FIELDS = ("steps", "progress", "checkpoint_every", "keep_checkpoints", "log_every", "eval_every",
                      "eval_metrics")
# Where a run executes: these change its numbers only at the level of floating-point rounding, so a
# run may move to another device or thread count, as it may to another number of processes (a run
# continued elsewhere is then not bit-identical to one that stayed). Hashed at their defaults, so
# that runs written before they were freed keep their hash when they used the defaults.
EXECUTION_FIELDS = {"device": "auto", "threads": None}


class Config(Section):
    name: str = "experiment"
    data: Component = Component(name="ring")
    model: ModelConfig = ModelConfig()
    game: GameConfig = GameConfig()
    optim: OptimConfig = OptimConfig()
    train: TrainConfig = TrainConfig()
    diagnostics: DiagnosticsSettings = DiagnosticsSettings()  # thresholds of the game's health checks

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def trajectory_hash(self, execution_free: bool = True) -> str:
        """Hash of everything that determines the run's trajectory (for safe resume).

        ``execution_free=False`` gives the rule of checkpoints written before ``EXECUTION_FIELDS``
        were freed, which hashed the device and thread count as they were."""
        d = self.to_dict()
        for key in RESUME_FREE_FIELDS:
            d["train"].pop(key, None)
        if execution_free:
            d["train"].update(EXECUTION_FIELDS)
        d.pop("diagnostics", None)  # they read the run, they do not change it
        if d["train"].get("ema_rampup") == TrainConfig().ema_rampup:  # new in issue 11: hashed when not default
            d["train"].pop("ema_rampup")
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]

    def accepted_hashes(self) -> tuple[str, str]:
        """The hashes a checkpoint of this config may carry: today's, then the earlier rule's (so a run
        written before device and threads were freed still loads and resumes with its own settings)."""
        return self.trajectory_hash(), self.trajectory_hash(execution_free=False)


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
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def config_from_dict(raw: Any, overrides: list[str] | tuple[str, ...] = (), source: str = "") -> Config:
    """Validate a raw mapping (plus overrides) into a Config; raises ConfigError naming the path."""
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
    validate_components(cfg)
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


def validate_components(cfg: Config) -> None:
    """Check every named component against its registry (names and parameter types)."""
    from ganforge import components  # registries, imported late to keep config import-light

    components.validate(cfg)


def load_config(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a YAML recipe (a file path or the name of a packaged recipe) and apply overrides."""
    p = resolve_recipe(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise ConfigError("", f"cannot read config file {p}: {exc.strerror}") from None
    try:
        raw = yaml.safe_load(text)
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
    """A path to a YAML file, or the bare name of a packaged recipe (``ring8``)."""
    p = Path(path)
    if p.exists():
        return p
    candidate = RECIPES_DIR / f"{path}.yaml"
    if not p.suffix and candidate.exists():
        return candidate
    raise ConfigError("", f"config file {path} not found (packaged recipes: {', '.join(recipe_names())})")
