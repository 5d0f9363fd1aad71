"""SED models: a timm backbone, GEM frequency pooling and an attention head."""

from train.models.registry import MODEL_PRESETS, create_model

__all__ = ["MODEL_PRESETS", "create_model"]
