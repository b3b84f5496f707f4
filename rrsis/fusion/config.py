"""Config nodes of the vision-language fusion: ``fusion`` and its ``fusion.gem`` sub-node."""

from __future__ import annotations

from dataclasses import dataclass, field

from .._config import ConfigError, check_bool, check_float, check_size, check_str, per_stage
from ..registry import FUSION, GLOBAL_ENHANCEMENT, POSITION_ENCODING, VISUAL_BRANCH
from .gate import GATE_ACTIVATIONS

__all__ = ["FusionConfig", "GemConfig"]


@dataclass
class GemConfig:
    """Global enhancement after fusion (GL-MSIN's GEM, a reconstruction); ``fusion.gem`` is
    ``None`` when it is off.

    Attributes:
        name: registered global enhancement (``"gem"``, ``"gem-linear"``).
        stages: apply it in every stage (``True``) or per stage (list of booleans).
        pool: pooled key/value grid side ``P``. heads: attention heads (``None``: the
            stage's Swin heads; one value or one per stage).
    """

    name: str = "gem"
    stages: bool | list[bool] = True
    pool: int = 8
    heads: int | list[int | None] | None = None

    def __post_init__(self) -> None:
        check_str("name", self.name, GLOBAL_ENHANCEMENT.names())
        check_size("pool", self.pool, "gem.pool")

    def check_stages(self, n: int) -> None:
        self.stages = per_stage("stages", self.stages, n, check_bool)
        self.heads = per_stage("heads", self.heads, n, lambda k, v: v if v is None else check_size(k, v, "gem.heads"))


@dataclass
class FusionConfig:
    """How words enter the visual stream in every stage.

    Attributes:
        name: registered pixel-word fusion (``"pwam"``). heads: its attention heads (one
            value or one per stage). dropout: its dropout.
        gate_act: activation of the language gate (``"tanh"``, ``"sigmoid"``, or ``"none"``: no gate).
        keep_final_gate: build the last stage's gates although their output is unused
            (official LAVT/RMSIN checkpoints hold them; they are frozen).
        visual_branch: registered language-free branch with its own gate (RMSIN ``"iim"``),
            or ``None``.
        gem: global enhancement (:class:`GemConfig`) or ``None``.
        position: registered scene-position encoding added to the visual feature before fusion
            in every stage (``"fourier"``: :class:`~rrsis.fusion.position.ScenePositionEncoding`,
            so tiles of a large scene know where they lie in it), or ``None``.
    """

    name: str = "pwam"
    heads: int | list[int] = 1
    dropout: float = 0.0
    gate_act: str = "tanh"
    keep_final_gate: bool = False
    visual_branch: str | None = None
    gem: GemConfig | None = field(default=None, metadata={"node": GemConfig})
    position: str | None = None

    def __post_init__(self) -> None:
        check_str("name", self.name, FUSION.names())
        self.dropout = check_float("dropout", self.dropout, low=0.0, high=1.0, high_open=True)
        check_str("gate_act", self.gate_act, GATE_ACTIVATIONS)
        check_bool("keep_final_gate", self.keep_final_gate)
        if self.visual_branch is not None:
            check_str("visual_branch", self.visual_branch, VISUAL_BRANCH.names())
        if self.position is not None:
            check_str("position", self.position, POSITION_ENCODING.names())

    def check_stages(self, n: int) -> None:
        """Per-stage values must have one entry per backbone stage."""
        self.heads = per_stage("heads", self.heads, n, lambda k, v: check_size(k, v, "fusion.heads"))
        if self.gem is not None:
            try:
                self.gem.check_stages(n)
            except ConfigError as exc:
                raise ConfigError(f"gem: {exc}") from None
