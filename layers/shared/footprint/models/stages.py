"""Stage models a journey's nodes can be tagged with (``stage_model`` and each node's ``stage``), so
reports can show where visitors are in the customer's journey and where they drop off between
stages. The built-in models, in order; any other ``stage_model`` names the journey's own ``stages``.
"""

from __future__ import annotations

STAGE_MODELS: dict[str, tuple[str, ...]] = {
    "AIDA": ("awareness", "interest", "desire", "action"),
    "ACC": ("awareness", "consideration", "conversion"),
    "ACCSR": ("awareness", "consideration", "conversion", "service", "retention"),
    "ACPRA": ("awareness", "consideration", "purchase", "retention", "advocacy"),
    "ACCRA": ("awareness", "consideration", "conversion", "retention", "advocacy"),
    # The 8-stage customer value journey.
    "value-journey": ("aware", "engage", "subscribe", "convert", "excite", "ascend", "advocate", "promote"),
}


def model_stages(stage_model: str | None, own: list[str] | tuple[str, ...] = ()) -> tuple[str, ...]:
    """The stages of ``stage_model`` in order: a built-in model's, else the journey's ``stages``."""
    if stage_model is None:
        return tuple(own)
    return STAGE_MODELS.get(stage_model, tuple(own))


def stage_problems(stage_model: str | None, own: list[str], tagged: dict[str, str]) -> list[str]:
    """What is wrong with a journey's stages: an unknown model without stages of its own, or a node
    (node id -> its ``stage``) tagged with a stage its model does not have."""
    if stage_model is None:
        return ["stages are listed but no stage_model names them"] if own else []
    if stage_model in STAGE_MODELS and own:
        return [f"stage_model {stage_model} has its own stages; list `stages` only for a model of your own"]
    stages = model_stages(stage_model, own)
    if not stages:
        known = ", ".join(STAGE_MODELS)
        return [f"stage_model {stage_model!r} is not one of {known}; for a model of your own, list its `stages`"]
    return [
        f"node {node_id!r}: stage {stage!r} is not a stage of {stage_model} ({', '.join(stages)})"
        for node_id, stage in tagged.items()
        if stage not in stages
    ]
