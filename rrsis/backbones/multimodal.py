"""The language-aware hierarchical backbone: Swin/ELSA stages with fusion inside.

Each stage is an EN-Trans stage (GL-MSIN's name; LAVT's ``MMBasicLayer`` is the special
case without GEM and ELSA):

    [downsample] → local-attention blocks → pixel-word fusion → [GEM]
                 → gated injection ``x ← x + γ(f) ⊙ f`` [+ RMSIN's visual branch]

The stage *output* is the fused feature ``f`` (LAVT returns the fused map, not the
updated visual stream), normalised per stage; the updated stream ``x`` goes on to the
next stage.
"""

from __future__ import annotations

import dataclasses

import torch
from timm.layers import PatchEmbed
from timm.models.swin_transformer import PatchMerging
from torch import nn

from .._grad_checkpoint import run
from ..fusion.config import FusionConfig
from ..fusion.gate import LanguageGate
from ..fusion.position import full_scene
from ..registry import FUSION, GLOBAL_ENHANCEMENT, LOCAL_ATTENTION, POSITION_ENCODING, VISUAL_BRANCH
from .config import BackboneConfig

__all__ = ["ENTransStage", "MultiModalSwin"]


class ENTransStage(nn.Module):
    """One backbone stage: local blocks, then language fusion and gated injection.

    Args:
        blocks: local-attention blocks on ``[B, H, W, C]``.
        fusion: ``(x [B,C,H,W], words [B,L,D], mask [B,L]) → [B,C,H,W]``.
        res_gate: gate of the fused feature.
        downsample: patch merging at the start of the stage (timm layout), or ``None``.
        gem: global enhancement applied to the fused feature, or ``None``.
        visual_branch: RMSIN's language-free spatial branch ``[B,C,H,W] → [B,C,H,W]``.
        visual_gate: gate of the visual branch (required with ``visual_branch``).
        position: scene-position encoding ``(boxes [B, 4], h, w) → [B, C, h, w]`` added to the
            visual feature before fusion, or ``None``.
        update_stream: inject into the visual stream. The last stage's stream feeds
            nothing, so it skips the injection; gates kept there only for checkpoint
            compatibility are frozen, since no loss can reach them.

    With ``grad_checkpointing`` on (:meth:`rrsis.RRSISModel.set_grad_checkpointing`), training
    recomputes each local block, and the fusion, GEM and gated injection as one piece, in the
    backward pass instead of keeping their activations. RMSIN's visual branch stays outside:
    its BatchNorms would update their running statistics twice.
    """

    grad_checkpointing: bool = False

    def __init__(
        self,
        *,
        blocks: nn.ModuleList,
        fusion: nn.Module,
        res_gate: LanguageGate | None,
        downsample: nn.Module | None = None,
        gem: nn.Module | None = None,
        visual_branch: nn.Module | None = None,
        visual_gate: LanguageGate | None = None,
        position: nn.Module | None = None,
        update_stream: bool = True,
    ) -> None:
        super().__init__()
        self.downsample = downsample if downsample is not None else nn.Identity()
        self.blocks = blocks
        self.fusion = fusion
        self.gem = gem
        self.position = position
        self.res_gate = res_gate
        if (visual_branch is None) != (visual_gate is None):
            raise ValueError("visual_branch and visual_gate must be given together")
        # RMSIN's checkpoint names for the visual branch and its gate.
        self.visual_residual = visual_branch
        self.visual_gate = visual_gate
        self.update_stream = update_stream
        if update_stream and res_gate is None:
            raise ValueError("a stage that updates the visual stream needs a res_gate")
        if not update_stream:
            for m in (res_gate, visual_branch, visual_gate):
                if m is not None:
                    m.requires_grad_(False)

    def forward(
        self, x: torch.Tensor, words: torch.Tensor, mask: torch.Tensor, position: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``x [B, H, W, C]`` → (next-stage stream ``[B, H', W', C']``, fused ``[B, C', H', W']``);
        ``position [B, 4]``: the images' boxes in their scenes (``None``: each is its own scene)."""
        x = self.downsample(x)
        for blk in self.blocks:
            x = run(self, blk, x)
        xc = x.permute(0, 3, 1, 2)
        if self.position is not None:
            if position is None:
                position = full_scene(xc.shape[0], xc.device)
            xc = xc + self.position(position, xc.shape[2], xc.shape[3]).to(xc.dtype)
        out, f = run(self, self._fuse, x, xc, words, mask)
        if not self.update_stream:
            return x, f
        if self.visual_residual is not None:
            v = self.visual_residual(xc).permute(0, 2, 3, 1)
            out = self.visual_gate.inject(out, v)
        return out, f

    def _fuse(self, x: torch.Tensor, xc: torch.Tensor, words: torch.Tensor,
              mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixel-word fusion, GEM and the gated injection: ``(stream, fused)``; the stream is
        ``x`` itself in a stage that does not update it."""
        f = self.fusion(xc, words, mask)
        if self.gem is not None:
            f = self.gem(f)
        if not self.update_stream:
            return x, f
        return self.res_gate.inject(x, f.permute(0, 2, 3, 1)), f


def _per_stage(value, n: int) -> list:
    """A validated per-stage value (one for all, or a list of ``n``) as a list of ``n``."""
    return list(value) if isinstance(value, (list, tuple)) else [value] * n


class ConvStem(nn.Module):
    """Convolutional patch embedding: ``log2(patch_size)`` 3×3 stride-2 conv-BN-ReLU layers
    (widths doubling up to ``embed_dim``; one stride-1 layer when ``patch_size`` is 1), a 1×1
    projection to ``embed_dim`` and a LayerNorm; ``[B, C, H, W]`` → ``[B, H/p, W/p, embed_dim]``
    (the layout of timm's ``PatchEmbed(output_fmt="NHWC")``).

    Replacing a ViT's linear patchify by a few small convolutions makes it train faster and
    less sensitive to the optimiser's settings (Xiao et al., "Early Convolutions Help
    Transformers See Better", NeurIPS 2021); for models trained from scratch on small data.
    """

    def __init__(self, in_chans: int, embed_dim: int, patch_size: int) -> None:
        super().__init__()
        n = max(int(patch_size).bit_length() - 1, 0)
        widths = [max(embed_dim // 2 ** (n - 1 - i), 8) for i in range(n)] if n else [embed_dim]
        layers, cin = [], in_chans
        for w in widths:
            layers += [nn.Conv2d(cin, w, 3, stride=2 if n else 1, padding=1, bias=False),
                       nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            cin = w
        self.convs = nn.Sequential(*layers)
        self.proj = nn.Conv2d(cin, embed_dim, 1)
        self.norm = nn.LayerNorm(embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.proj(self.convs(x)).permute(0, 2, 3, 1))


class MultiModalSwin(nn.Module):
    """Hierarchical Swin/ELSA backbone with pixel-word fusion in every stage.

    Parameter names follow timm's Swin (``patch_embed``, ``layers.{i}.downsample``,
    ``layers.{i}.blocks.{j}``) so timm's ImageNet weights load; rrsis adds
    ``layers.{i}.fusion``, ``.gem``, ``.res_gate`` and ``out_norms.{i}``.

    Args:
        backbone: the validated ``backbone`` node (:class:`~rrsis.backbones.config.BackboneConfig`):
            sizes, stem, local attention per stage and its ``elsa`` knobs.
        fusion: the validated ``fusion`` node (:class:`~rrsis.fusion.config.FusionConfig`): the
            pixel-word fusion, its gate, RMSIN's visual branch and the ``gem`` node.
        text_dim: word feature width ``D``.
        in_chans: input channels.
    """

    def __init__(self, backbone: BackboneConfig, fusion: FusionConfig, *, text_dim: int, in_chans: int = 3) -> None:
        super().__init__()
        if not isinstance(backbone, BackboneConfig) or not isinstance(fusion, FusionConfig):
            raise TypeError(
                "MultiModalSwin takes validated config nodes: BackboneConfig and FusionConfig "
                f"(got {type(backbone).__name__}, {type(fusion).__name__})"
            )
        n = len(backbone.depths)
        fusion.check_stages(n)  # per-stage lists of the fusion node have one entry per stage
        gem = fusion.gem
        local_attn = backbone.stage_attn
        fusion_heads = _per_stage(fusion.heads, n)
        use_gem = _per_stage(False if gem is None else gem.stages, n)
        gem_heads = _per_stage(None if gem is None else gem.heads, n)
        self.num_stages = n
        embed_dim = backbone.embed_dim
        self.dims = [embed_dim * 2**i for i in range(n)]
        self.patch_size = backbone.patch_size
        if backbone.stem == "patch":
            self.patch_embed = PatchEmbed(
                img_size=None, patch_size=backbone.patch_size, in_chans=in_chans, embed_dim=embed_dim,
                norm_layer=nn.LayerNorm, output_fmt="NHWC", strict_img_size=False,
            )
        else:  # "conv": BackboneConfig admits no other stem
            self.patch_embed = ConvStem(in_chans, embed_dim, backbone.patch_size)
        total = sum(backbone.depths)
        dpr = [backbone.drop_path_rate * i / max(total - 1, 1) for i in range(total)]
        # Each local-attention kind gets the common block arguments plus its own node's knobs
        # (the registered block's keyword signature is that node's schema).
        options = {"elsa": {} if backbone.elsa is None else dataclasses.asdict(backbone.elsa)}
        layers = []
        start = 0
        for i, dim in enumerate(self.dims):
            last = i == n - 1
            gates = not last or fusion.keep_final_gate
            blocks = nn.ModuleList(
                LOCAL_ATTENTION.build(
                    local_attn[i], dim=dim, num_heads=backbone.num_heads[i], window_size=backbone.window_size,
                    index=j, mlp_ratio=backbone.mlp_ratio, qkv_bias=backbone.qkv_bias, drop_path=dpr[start + j],
                    **options.get(local_attn[i], {}),
                )
                for j in range(backbone.depths[i])
            )
            start += backbone.depths[i]
            branch = fusion.visual_branch
            layers.append(
                ENTransStage(
                    downsample=PatchMerging(self.dims[i - 1], dim) if i > 0 else None,
                    blocks=blocks,
                    fusion=FUSION.build(fusion.name, dim=dim, text_dim=text_dim, num_heads=fusion_heads[i],
                                        dropout=fusion.dropout),
                    gem=None if not use_gem[i] else GLOBAL_ENHANCEMENT.build(
                        gem.name, dim=dim, num_heads=gem_heads[i] or backbone.num_heads[i], pool_size=gem.pool
                    ),
                    res_gate=LanguageGate(dim, fusion.gate_act) if gates else None,
                    visual_branch=VISUAL_BRANCH.build(branch, dim=dim) if branch and gates else None,
                    visual_gate=LanguageGate(dim, fusion.gate_act) if branch and gates else None,
                    position=None if fusion.position is None else POSITION_ENCODING.build(fusion.position, dim=dim),
                    update_stream=not last,
                )
            )
        self.layers = nn.ModuleList(layers)
        self.out_norms = nn.ModuleList(nn.LayerNorm(d) for d in self.dims)
        self.apply(_init_weights)

    @property
    def reduction(self) -> int:
        """Input-size divisor the backbone needs (patch size × 2^(stages-1))."""
        return self.patch_size * 2 ** (self.num_stages - 1)

    @property
    def uses_position(self) -> bool:
        """Whether a scene-position encoding reads the images' boxes (``fusion.position``)."""
        return any(layer.position is not None for layer in self.layers)

    def forward(self, x: torch.Tensor, words: torch.Tensor, mask: torch.Tensor,
                position: torch.Tensor | None = None) -> list[torch.Tensor]:
        """``x [B, 3, H, W]``, ``words [B, L, D]``, ``mask [B, L]`` → stage features, NCHW,
        ``[B, C_i, H/(4·2^i), W/(4·2^i)]``; ``position [B, 4]``: each image's box in its scene
        (read only with a scene-position encoding)."""
        x = self.patch_embed(x)
        feats = []
        for layer, norm in zip(self.layers, self.out_norms):
            x, f = layer(x, words, mask, position)
            feats.append(norm(f.permute(0, 2, 3, 1)).permute(0, 3, 1, 2))
        return feats


def _init_weights(m: nn.Module) -> None:
    # Swin's initialisation: truncated-normal linears, unit LayerNorms.
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
