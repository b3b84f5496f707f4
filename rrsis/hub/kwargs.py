"""Keywords of ``transformers`` / ``huggingface_hub`` loading functions that rrsis does not take.

``from_pretrained`` and ``create_model`` pass unknown keywords on as model-config overrides, where
``force_download=True`` would be reported as a key the saved ``config.json`` cannot take, blaming
the file. These names are refused first, saying what the function does take instead.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["HUB_ONLY_KWARGS", "refuse_hub_kwargs"]

# name → what to do instead ("" where rrsis has nothing like it)
HUB_ONLY_KWARGS = {
    "force_download": "remove the repo from the Hugging Face cache (`hf cache rm model/{repo}`) to download it again",
    "resume_download": "downloads resume by themselves",
    "proxies": "set HTTPS_PROXY / HTTP_PROXY in the environment",
    "use_auth_token": "pass token=",
    "local_dir": "download with `hf download REPO --local-dir DIR` and pass DIR",
    "subfolder": "pass the local folder that holds config.json",
    "device_map": "pass map_location= (one device)",
    "low_cpu_mem_usage": "",
    "trust_remote_code": "rrsis runs no code from a repo; import the module that registers a plugin's parts",
    "use_safetensors": "model.safetensors is read when the repo has it, pytorch_model.bin otherwise",
    "variant": "",
    "from_tf": "",
    "from_flax": "",
    "output_loading_info": "model.load_report says what was loaded",
    "ignore_mismatched_sizes": "strict=False loads the tensors that match; wrong shapes always fail",
    "attn_implementation": "",
    "quantization_config": "",
    "load_in_8bit": "",
    "load_in_4bit": "",
    "offload_folder": "",
    "mirror": "set HF_ENDPOINT in the environment",
}


def refuse_hub_kwargs(given: Iterable[str], what: str, supported: str, extra: dict[str, str] | None = None,
                      repo: str | None = None) -> None:
    """A ``TypeError`` naming the Hub keywords among ``given`` that ``what`` does not support, what
    to do instead, and the ones it takes (``supported``); ``repo``: the Hub repo id loaded, named in
    the advice (``None``: a local folder, where the Hub cache has nothing to do with it)."""
    table = {**HUB_ONLY_KWARGS, **(extra or {})}
    table["force_download"] = (table["force_download"].format(repo=repo) if repo else
                               "a local folder is read as it is on disk; nothing is downloaded")
    bad = [k for k in given if k in table]
    if not bad:
        return
    how = "; ".join(f"{k}: {table[k]}" for k in bad if table[k])
    raise TypeError(
        f"{', '.join(f'{k}=' for k in bad)} {'is' if len(bad) == 1 else 'are'} not supported by {what}"
        + (f" ({how})" if how else "") + f". It takes {supported}, and model config overrides."
    )
