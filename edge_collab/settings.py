"""Settings, each declared once: its type, default, allowed values and help.

`GenerationSettings` governs one answer (the loop of docs/method.md);
`ModelSettings` governs how one GGUF model is loaded. Every field carries an
`Option` in its metadata, and everything that offers a setting is derived from
it: the command line's flags (`cli/options.py`), the server's request fields
(`server/schema.py`) and the Python API's keyword arguments (these classes).
So a range is written down here and nowhere else. Both classes are frozen and
validated on construction: an out-of-range value fails before any model is
touched, with the same one-line message on every surface.

The method's name is checked against the method registry
(`engine/methods.py`) where a generation starts: the registry sits above
this module, which every layer imports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any

from edge_collab.errors import SettingsError

PROBE_POLICIES = ("random", "uncertainty", "audit")
TRIGGERS = ("mentor-prefers", "cosd", "average", "learned")
AUDIT_EARLY_ENDS = ("word", "token")
DEFAULT_METHOD = "collab"


@dataclass(frozen=True)
class Option:
    """How a setting is offered and checked.

    low / high: the allowed range (inclusive; `high_open` excludes `high`).
    also: single values allowed outside the range (0 for "the model's own").
    choices: the allowed strings, for a string setting.
    flag: its name on the command line (None: not offered there).
    request: its field in server requests (None: not offered there).
    """

    help: str
    low: float | None = None
    high: float | None = None
    high_open: bool = False
    also: tuple[float, ...] = ()
    choices: tuple[str, ...] | None = None
    max_items: int | None = None
    flag: str | None = None
    request: str | None = None

    def describe(self) -> str:
        """The allowed values in words ("from 0 to 1", "at least -1", "one of ...")."""
        if self.choices is not None:
            return "one of " + ", ".join(self.choices)
        if self.max_items is not None:
            return f"up to {self.max_items} non-empty strings"
        if self.low is None:
            return ""
        if self.high is None:
            words = f"at least {_number(self.low)}"
        else:
            words = f"from {_number(self.low)} to {'below ' if self.high_open else ''}{_number(self.high)}"
        return words + "".join(f" or {_number(value)}" for value in self.also)

    def allows(self, value: float) -> bool:
        if value in self.also:
            return True
        if not math.isfinite(value) or (self.low is not None and value < self.low):
            return False
        if self.high is None:
            return True
        return value < self.high if self.high_open else value <= self.high


def _number(value: float) -> str:
    if value == 2**63 - 1:
        return "2**63 - 1"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def option(default: Any, help: str, *, flag: str | None = "", request: str | None = "", **limits: Any) -> Any:
    """A dataclass field with its Option. `flag` and `request` default to the
    field's own name (--probe-rate, probe_rate); None keeps it off that surface."""
    return field(default=default, metadata={"option": (help, flag, request, limits)})


def options_of(cls: type) -> dict[str, Option]:
    """Every field's Option, by field name, with its CLI and request names filled in."""
    found: dict[str, Option] = {}
    for spec in fields(cls):
        help_text, flag, request, limits = spec.metadata["option"]
        found[spec.name] = Option(
            help_text,
            flag=("--" + spec.name.replace("_", "-")) if flag == "" else flag,
            request=spec.name if request == "" else request,
            **limits,
        )
    return found


def check_value(name: str, option_: Option, value: Any, kind: str) -> Any:
    """`value` if `option_` allows it (lists of strings become tuples), else a SettingsError."""
    words = name.replace("_", " ")
    if kind == "bool":
        _require(isinstance(value, bool), f"{words} must be true or false, not {value!r}")
        return value
    if kind == "strings":
        items = (value,) if isinstance(value, str) else value
        _require(
            isinstance(items, tuple | list) and all(isinstance(item, str) and item for item in items),
            f"{words} must be non-empty strings",
        )
        _require(all(_is_text(item) for item in items), f"{words} must be valid text (no lone surrogates)")
        limit = option_.max_items
        _require(limit is None or len(items) <= limit, f"{words} takes at most {limit} strings, not {len(items)}")
        return tuple(items)
    if kind == "str":
        allowed = option_.choices or ()
        _require(
            isinstance(value, str) and (not allowed or value in allowed),
            f"{words} must be {option_.describe()}, not {value!r}",
        )
        return value
    number_ok = isinstance(value, int) if kind == "int" else isinstance(value, int | float)
    _require(
        number_ok and not isinstance(value, bool) and option_.allows(float(value)),
        f"{words} must be {'an integer' if kind == 'int' else 'a number'} {option_.describe()}, not {value!r}",
    )
    return value


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise SettingsError(message)


def _kinds(cls: type) -> dict[str, str]:
    """Each field's kind for checking, read from its default's type and annotation."""
    kinds = {}
    for spec in fields(cls):
        annotation = str(spec.type)
        if "tuple" in annotation:
            kinds[spec.name] = "strings"
        elif annotation.startswith("bool"):
            kinds[spec.name] = "bool"
        elif annotation.startswith("str"):
            kinds[spec.name] = "str"
        elif annotation.startswith("int"):
            kinds[spec.name] = "int"
        else:
            kinds[spec.name] = "float"
    return kinds


def _validate(settings: object, optional: frozenset[str] = frozenset()) -> None:
    cls = type(settings)
    for name, option_ in options_of(cls).items():
        value = getattr(settings, name)
        if value is None and name in optional:
            continue
        object.__setattr__(settings, name, check_value(name, option_, value, _kinds(cls)[name]))


@dataclass(frozen=True)
class GenerationSettings:
    """How one answer is generated. Each field's help says what it does; see
    docs/method.md for the loop and docs/budget-and-probing.md for the budget."""

    method: str = option(
        DEFAULT_METHOD,
        "collab; student or mentor alone; or a baseline from the literature (cosd, nudging, rstitch, "
        "average, takeover: docs/baselines.md).",
    )
    probe_rate: float = option(0.25, "Probability that a word step probes the mentor.", low=0.0, high=1.0)
    segment_tokens: int = option(16, "Lookahead tokens each model writes at a divergence.", low=1, high=256)
    max_new_tokens: int = option(
        512, "Cap on answer tokens.", low=1, high=1_048_576, flag="--max-tokens", request="max_tokens"
    )
    seed: int = option(0, "Seeds probes and sampling: same seed, same answer.", low=0, high=2**63 - 1)
    temperature: float = option(0.0, "0 is greedy (as in the paper); above 0 samples.", low=0.0, high=2.0)
    stop: tuple[str, ...] = option((), "A string that ends the answer, not included in it (up to 4).", max_items=4)
    word_extra_tokens: int = option(
        10, "Cap on the tokens after the first in one word step.", low=0, high=64, flag=None, request=None
    )
    repeat_guard: bool = option(True, "Stop when the last units of the answer repeat.", flag=None, request=None)
    think: bool | None = option(
        None,
        "Thinking models: let the student think before it answers (--think) or not (--no-think); unset, its "
        "template's default. A mentor guiding the student never thinks: it continues the student's answer.",
        flag="--think/--no-think",
    )
    probe_policy: str = option(
        "random",
        "random: probe a word with the probe rate; uncertainty: probe where the student's next-token entropy "
        "reaches the uncertainty threshold; audit: the mentor reads every token in batches and a trigger "
        "decides where to fetch its segment (docs/method.md).",
        choices=PROBE_POLICIES,
    )
    uncertainty_threshold: float = option(
        1.0, "Entropy (nats) at which the uncertainty policy probes.", low=0.0, high=20.0
    )
    audit_tokens: int = option(8, "audit: the mentor reads the answer in batches of this many tokens.", low=1, high=256)
    audit_unsure_below: float = option(
        0.0,
        "audit: the mentor reads before its batch is full as soon as the student writes a token it gave less "
        "than this probability, where a trigger fires most (0: full batches only).",
        low=0.0,
        high=1.0,
    )
    audit_early_end: str = option(
        "word",
        "audit: where a batch ended early by the audit's unsure bar stops: at the end of the unsure token's word, "
        "or at that token (token: fewer tokens read past a firing; the student's and mentor's token ids must be "
        "the same, else word).",
        choices=AUDIT_EARLY_ENDS,
    )
    trigger: str = option(
        "mentor-prefers",
        "audit: where to fetch a mentor segment. mentor-prefers: where the mentor prefers its own token to the "
        "student's by more than the trigger threshold (nats); cosd: CoSD's rule (cosd alpha, cosd beta); "
        "average: where the two distributions mixed 50/50 prefer another token to the student's, which the "
        "segment starts with; "
        "learned: a small model trained on where the mentor's segment helped (the file shipped for the default "
        "pair, or EDGE_COLLAB_TRIGGER_FILE).",
        choices=TRIGGERS,
    )
    trigger_threshold: float = option(
        0.0,
        "audit: the mentor-prefers trigger fires above this many nats (the budget moves it with a fixed verifier).",
        low=0.0,
        high=20.0,
    )
    mentor_budget: float | None = option(
        0.18,
        "Target mentor share: a controller moves the verifier's adoption bar (the probe rate or threshold "
        "with a fixed verifier) over the run or session to reach it. 0 turns it off (the paper's fixed loop).",
        low=0.0,
        high=1.0,
        high_open=True,
    )
    cosd_alpha: float = option(
        0.5, "cosd: the student's top probability below which the mentor may write.", low=0.0, high=1.0
    )
    cosd_beta: float = option(
        0.5, "cosd: the mentor writes when its top probability exceeds beta times the student's.", low=0.0, high=1.0
    )
    nudging_gamma: float = option(
        0.4, "nudging: the mentor writes while the student's top probability is below gamma.", low=0.0, high=1.0
    )
    rstitch_tau: float = option(
        0.15, "rstitch: the normalised entropy at which the models hand over.", low=0.0, high=1.0
    )

    def __post_init__(self) -> None:
        _validate(self, optional=frozenset({"mentor_budget", "think"}))
        if self.mentor_budget == 0:
            object.__setattr__(self, "mentor_budget", None)  # 0 on any surface: no controller

    def with_changes(self, **changes: object) -> GenerationSettings:
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        _require(not unknown, f"unknown setting(s): {', '.join(unknown)}")
        return replace(self, **changes)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ModelSettings:
    """How one GGUF model is loaded into llama.cpp. Not offered per server
    request: a server loads its models once, at start."""

    n_ctx: int = option(
        4096,
        "Context size of each model, in tokens (0: the model's trained length, at most 32768).",
        low=64,
        high=1_048_576,
        also=(0,),
        request=None,
    )
    gpu_layers: int = option(0, "Layers on the GPU (-1: all; needs a CUDA or Metal build).", low=-1, request=None)
    threads: int | None = option(
        None,
        "CPU threads per model (default: all cores). Where both models' threads fit the cores, the mentor "
        "reads on its own while the student writes.",
        low=1,
        high=512,
        request=None,
    )

    def __post_init__(self) -> None:
        _validate(self, optional=frozenset({"threads"}))


GENERATION_OPTIONS = options_of(GenerationSettings)
MODEL_OPTIONS = options_of(ModelSettings)
GENERATION_KINDS = _kinds(GenerationSettings)
MODEL_KINDS = _kinds(ModelSettings)
DEFAULTS = GenerationSettings()
