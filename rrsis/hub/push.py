"""Uploading a model to a Hub model repo: the :func:`save_pretrained` files, in one commit."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from torch import nn

from .save import save_pretrained

__all__ = ["push_to_hub"]


def push_to_hub(
    model: nn.Module,
    repo_id: str,
    *,
    commit_message: str = "Upload rrsis model",
    private: bool | None = None,
    token: str | None = None,
    revision: str | None = None,
    create_pr: bool = False,
    metrics: Mapping[str, Any] | None = None,
    dataset: str | None = None,
    evaluation: Mapping[str, Any] | None = None,
    training: Mapping[str, str] | None = None,
):
    """Upload ``model`` (the :func:`save_pretrained` files) to a Hub model repo in one commit.

    Args:
        model: the model to upload.
        repo_id: ``org/name``; created when it does not exist.
        commit_message: the commit's message.
        private: visibility of a newly created repo (``None``: the account's default).
        token: Hub token (default: the logged-in one).
        revision: branch to commit to (created when missing); default ``main``.
        create_pr: open a pull request instead of committing directly.
        metrics, dataset, evaluation, training: model-card content, as in :func:`save_pretrained`.

    Returns:
        The ``huggingface_hub`` commit info (its ``commit_url`` names the commit).
    """
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    repo_id = getattr(url, "repo_id", None) or repo_id
    if revision is not None and not create_pr:
        api.create_branch(repo_id, branch=revision, exist_ok=True, repo_type="model")
    with tempfile.TemporaryDirectory(prefix="rrsis-push-") as tmp:
        folder = save_pretrained(model, Path(tmp) / "model", metrics=metrics, dataset=dataset, repo_id=repo_id,
                                 evaluation=evaluation, training=training)
        return api.upload_folder(
            repo_id=repo_id, folder_path=folder, repo_type="model", commit_message=commit_message,
            revision=revision, create_pr=create_pr,
        )
