"""The model and part registries (rrsis/registry.py)."""

import importlib
import inspect
import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

import rrsis
from rrsis import registry
from rrsis.registry import FUSION, GLOBAL_ENHANCEMENT, HEADS, LOCAL_ATTENTION, Registry


def test_list_models_fnmatch():
    names = rrsis.list_models()
    assert {"gl-msin", "gl-msin-s", "gl-msin-t", "gl-msin-tiny"} <= set(names)
    assert names == sorted(names)
    assert set(rrsis.list_models("gl-msin*")) >= {"gl-msin", "gl-msin-t"}
    assert rrsis.list_models("no-such-*") == []


def test_unknown_model_lists_close_matches():
    with pytest.raises(ValueError, match="unknown model 'gl-msn'.*'gl-msin'"):
        rrsis.create_model("gl-msn")


def test_path_like_name_is_rejected():
    with pytest.raises(ValueError, match="from_pretrained"):
        rrsis.create_model("org/gl-msin-rrsisd")


def test_none_overrides_are_dropped():
    m = rrsis.create_model("gl-msin-tiny", refine_steps=None, gem_pool=None)
    assert m.config["head"]["refine_steps"] == 2 and m.config["fusion"]["gem"]["pool"] == 2


def test_weight_tag_must_be_registered():
    assert rrsis.is_model("gl-msin.in22k")
    assert not rrsis.is_model("gl-msin.rrsisd")  # a tag that means nothing is not a model
    assert not rrsis.is_model("nope.in22k")
    with pytest.raises(ValueError, match="unknown pretrained tag 'gl-msin.in22'.*'gl-msin.in22k'"):
        rrsis.create_model("gl-msin.in22")


def test_part_registries_hold_the_parts():
    assert {"swin", "elsa"} <= set(LOCAL_ATTENTION.names())
    assert "pwam" in FUSION
    assert {"gem", "gem-linear"} <= set(GLOBAL_ENHANCEMENT.names())
    assert {"simple", "refine"} <= set(HEADS.names())


def test_unknown_part_names_the_kind_and_suggests():
    with pytest.raises(KeyError, match="unknown head 'refin'.*'refine'"):
        rrsis.create_model("gl-msin-tiny", head="refin")
    with pytest.raises(KeyError, match="local attention block 'elsaa'"):
        rrsis.create_model("gl-msin-tiny", local_attn="elsaa")


def test_registry_refuses_double_registration():
    reg = Registry("thing")
    reg.register("a")(dict)
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a")(list)


def test_a_builder_returning_none_is_refused_when_the_model_is_built():
    @HEADS.register("unfinished-test-head")
    def build_unfinished(*, in_channels, width: int = 8):
        ...  # the body a user has not written yet

    try:
        with pytest.raises(TypeError, match="head builder registered as 'unfinished-test-head' returned None"):
            rrsis.create_model("gl-msin-tiny", head={"name": "unfinished-test-head", "width": 4})
    finally:
        HEADS._entries.pop("unfinished-test-head", None)


def test_swap_parts_by_name():
    from rrsis.backbones import ELSABlock, SwinBlock
    from rrsis.heads import IterativeRefinementHead, SimpleDecoder

    default = rrsis.create_model("gl-msin-tiny")
    assert isinstance(default.backbone.layers[0].blocks[0], ELSABlock)
    assert isinstance(default.backbone.layers[3].blocks[0], SwinBlock)
    assert all(layer.gem is not None for layer in default.backbone.layers)
    assert isinstance(default.classifier, IterativeRefinementHead)

    swapped = rrsis.create_model("gl-msin-tiny", local_attn="swin", use_gem=False, head="simple")
    assert all(isinstance(b, SwinBlock) for layer in swapped.backbone.layers for b in layer.blocks)
    assert all(layer.gem is None for layer in swapped.backbone.layers)
    assert isinstance(swapped.classifier, SimpleDecoder)
    assert swapped.config["backbone"]["local_attn"] == "swin" and swapped.config["fusion"]["gem"] is None


def test_ablations_are_keywords_not_classes():
    a = rrsis.create_model("gl-msin-tiny", refine_steps=1)
    b = rrsis.create_model("gl-msin-tiny", gem="gem-linear")
    assert type(a) is type(b) is type(rrsis.create_model("gl-msin-tiny"))
    assert len(a.classifier.refine) == 1
    assert b.backbone.layers[0].gem.attn_type == "linear"


def test_private_registry_path_still_works_with_a_deprecation_warning():
    code = (
        "import warnings\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    from rrsis._registry import HEADS as old\n"
        "from rrsis.registry import HEADS\n"
        "assert old is HEADS\n"
        "msgs = [str(x.message) for x in w if issubclass(x.category, DeprecationWarning)]\n"
        "assert any('rrsis.registry' in m and '0.3.0' in m for m in msgs), msgs\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])


def _fresh(code: str) -> subprocess.CompletedProcess:
    root = Path(__file__).resolve().parents[1]
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root, timeout=300,
                          env={"PYTHONPATH": str(root), "OMP_NUM_THREADS": "1", "PATH": ""})


def test_part_tables_are_full_in_a_fresh_interpreter():
    run = _fresh("from rrsis.registry import HEADS, CHECKPOINT_FORMATS, LOCAL_ATTENTION\n"
                 "print(HEADS.names()); print('refine' in HEADS, HEADS.get('refine').__name__)\n"
                 "print(CHECKPOINT_FORMATS.names()); print(LOCAL_ATTENTION)")
    assert run.returncode == 0, run.stderr
    heads, refine, formats, local = run.stdout.splitlines()
    assert {"arc", "refine", "simple"} <= set(eval(heads))
    assert refine.startswith("True ")
    assert {"lavt", "rmsin"} <= set(eval(formats))
    assert "'elsa'" in local and "'swin'" in local


def test_a_builtin_name_is_refused_at_the_users_register_line():
    run = _fresh("from rrsis.registry import HEADS, register_model\n"
                 "for table, name in ((HEADS.register, 'simple'), (register_model, 'gl-msin-tiny')):\n"
                 "    try:\n"
                 "        table(name)(lambda **kw: None); print('accepted')\n"
                 "    except ValueError as e:\n"
                 "        print(e)\n")
    assert run.returncode == 0, run.stderr
    head, model = run.stdout.splitlines()
    assert head.startswith("head 'simple' is already registered by rrsis.heads.simple.")
    assert "choose another name" in head
    assert model == "model 'gl-msin-tiny' is already registered"


def test_a_builtin_part_module_imported_first_loads_without_a_cycle():
    run = _fresh("import rrsis.fusion.gem\nfrom rrsis.registry import FUSION\nprint(FUSION.names())")
    assert run.returncode == 0, run.stderr
    assert "pwam" in run.stdout


def test_a_builder_that_does_not_take_what_rrsis_passes_is_named():
    @FUSION.register("test-minimal-fusion")
    def build_minimal(*, dim, text_dim):
        raise AssertionError("not called")

    try:
        with pytest.raises(TypeError, match=r"pixel-word fusion builder registered as 'test-minimal-fusion' is called "
                                             r"with dim, text_dim, num_heads, dropout: .*'num_heads'"):
            rrsis.create_model("gl-msin-tiny", fusion="test-minimal-fusion")
    finally:
        FUSION._entries.pop("test-minimal-fusion", None)


def test_a_fusion_builders_own_keyword_is_refused_saying_the_node_is_fixed():
    from rrsis.fusion.pwam import PixelWordAttention

    @FUSION.register("test-hidden-fusion")
    def build_hidden(*, dim, text_dim, num_heads=1, dropout=0.0, hidden: int = 8):
        return PixelWordAttention(dim, text_dim, num_heads=num_heads, dropout=dropout)

    try:
        assert rrsis.create_model("gl-msin-tiny", fusion="test-hidden-fusion").config["fusion"]["name"] == "test-hidden-fusion"
        with pytest.raises(rrsis.ConfigError, match=r"fusion 'test-hidden-fusion' declares it, but the fusion node has "
                                                    r"fixed keys"):
            rrsis.create_model("gl-msin-tiny", fusion={"name": "test-hidden-fusion", "hidden": 4})
    finally:
        FUSION._entries.pop("test-hidden-fusion", None)


def test_a_model_built_through_a_registered_entrypoint_carries_its_name(tmp_path):
    from rrsis import registry

    calls = []

    @registry.register_model("test-center-model")
    def center(config=None, **overrides):
        calls.append(config is not None)
        if config is None:
            overrides = {"head": "simple", **overrides}
        return rrsis.create_model("gl-msin-tiny", config=config, **overrides)

    try:
        model = rrsis.create_model("test-center-model")
        assert model.arch == "test-center-model"
        model.save_pretrained(tmp_path / "m")
        saved = json.loads((tmp_path / "m" / "config.json").read_text())
        assert saved["architecture"] == "test-center-model"
        assert (tmp_path / "m" / "README.md").read_text().count("# test-center-model\n") == 1
        calls.clear()
        loaded = rrsis.from_pretrained(tmp_path / "m")
        assert calls and calls[-1] is True  # rebuilt through the entrypoint, from the saved tree
        assert loaded.arch == "test-center-model" and loaded.config == model.config
    finally:
        registry._model_entrypoints.pop("test-center-model", None)


def test_list_models_takes_a_list_of_patterns_and_pretrained_as_timm_does():
    assert rrsis.list_models(["lavt*", "rmsin*"]) == ["lavt", "lavt-tiny", "rmsin", "rmsin-tiny"]
    assert rrsis.list_models(["lavt*", "rmsin*"], exclude_filters="*-tiny") == ["lavt", "rmsin"]
    tags = rrsis.list_models("gl-msin", pretrained=True)
    assert tags == sorted(rrsis.list_pretrained("gl-msin.*")) and "gl-msin.in22k" in tags
    assert rrsis.list_models(pretrained=True) == sorted(rrsis.list_pretrained())


def test_an_unknown_tag_suggests_only_the_architectures_own_tags():
    with pytest.raises(rrsis.ConfigError, match=r"'gl-msin-tiny' has no pretrained tags; build it by its bare name"):
        rrsis.create_model("gl-msin-tiny.in22k")
    with pytest.raises(rrsis.ConfigError, match=r"'lavt\.oficial'; did you mean 'lavt\.official'\? Known for 'lavt': ") as info:
        rrsis.create_model("lavt.oficial")
    assert "gl-msin" not in str(info.value)


CELL = '''
from rrsis.registry import HEADS, PretrainedCfg, register_model, register_pretrained

@HEADS.register("test-cell-head")
def build_cell_head(*, in_channels, width: int = WIDTH):
    from rrsis.heads import SimpleDecoder
    return SimpleDecoder(in_channels)

@register_model("test-cell-model")
def cell_model(config=None, **overrides):
    return WIDTH

register_pretrained("test-cell-model.scratch", PretrainedCfg(notes=f"width {WIDTH}"))
'''


def _run_cell(width: int, module: str = "__main__") -> dict:
    """A notebook cell: the same source run in a namespace named ``module``, as IPython runs it."""
    namespace = {"__name__": module, "WIDTH": width}
    exec(compile(CELL, "<cell>", "exec"), namespace)
    return namespace


def _forget_cell():
    HEADS._entries.pop("test-cell-head", None)
    registry._model_entrypoints.pop("test-cell-model", None)
    registry._pretrained.pop("test-cell-model.scratch", None)
    registry._pretrained_owners.pop("test-cell-model.scratch", None)


def test_a_cell_run_again_replaces_its_own_registrations(caplog):
    try:
        _run_cell(8)
        with caplog.at_level("DEBUG", logger="rrsis.plugins"):
            again = _run_cell(4)  # the same cell after an edit: the same owners, new objects
        assert HEADS.get("test-cell-head") is again["build_cell_head"]
        assert inspect.signature(HEADS.get("test-cell-head")).parameters["width"].default == 4
        assert registry.model_entrypoint("test-cell-model")() == 4
        assert registry.pretrained_cfg("test-cell-model.scratch").notes == "width 4"
        logged = [r.getMessage() for r in caplog.records if r.name == "rrsis.plugins"]
        assert any("head 'test-cell-head' registered again by __main__.build_cell_head" in m for m in logged), logged
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    finally:
        _forget_cell()


def test_another_owner_of_the_name_is_still_refused_with_the_same_message():
    try:
        _run_cell(8)
        with pytest.raises(ValueError) as err:
            _run_cell(8, module="otherparts")
        assert str(err.value).startswith("head 'test-cell-head' is already registered by __main__.build_cell_head: "
                                         "choose another name (registered names: ")
        with pytest.raises(ValueError, match=r"^model 'test-cell-model' is already registered$"):
            registry.register_model("test-cell-model")(lambda config=None, **kw: None)
        namespace = {"__name__": "otherparts"}
        with pytest.raises(ValueError, match=r"^pretrained configuration 'test-cell-model.scratch' is already registered$"):
            exec("from rrsis.registry import PretrainedCfg, register_pretrained\n"
                 "register_pretrained('test-cell-model.scratch', PretrainedCfg(notes='other'))", namespace)
    finally:
        _forget_cell()


def test_a_builtin_is_never_replaced_even_by_a_builder_claiming_its_owner():
    simple = HEADS.get("simple")

    def impostor(**kwargs):
        return None

    impostor.__module__, impostor.__qualname__ = simple.__module__, simple.__qualname__
    with pytest.raises(ValueError, match=rf"head 'simple' is already registered by {simple.__module__}"):
        HEADS.register("simple")(impostor)
    assert HEADS.get("simple") is simple


def test_reloading_a_module_of_parts_replaces_its_registrations(tmp_path, monkeypatch):
    (tmp_path / "test_reload_parts.py").write_text(CELL.replace("WIDTH", "8"))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        module = importlib.import_module("test_reload_parts")
        importlib.reload(module)
        assert HEADS.get("test-cell-head") is module.build_cell_head
        assert registry.model_entrypoint("test-cell-model") is module.cell_model
    finally:
        _forget_cell()
        sys.modules.pop("test_reload_parts", None)
