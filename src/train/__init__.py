"""Training: Lightning + Hydra, teacher embeddings, Noisy Student, selection, BN recalibration,
ONNX export. Heavy imports (torch, timm, Lightning, MLflow) happen inside the modules that need
them, so `pantanal --help` stays fast.
"""
