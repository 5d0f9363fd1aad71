"""A small ONNX teacher with Perch v2's input/output signature, built for tests.

Perch v2 takes 5 s at 32 kHz (`[B, 160000]`) and returns a 1536-d `embedding` and 14,795 class
logits `label`. This file reproduces the names and shapes with parameter-free operations (mean
over sample blocks, tiling), so it is a few kilobytes and deterministic.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

PERCH_SAMPLES = 160000
PERCH_DIM = 1536
PERCH_CLASSES = 14795


def _int64(name: str, values: list[int]) -> onnx.TensorProto:
    return helper.make_tensor(name, TensorProto.INT64, [len(values)], values)


def make_perch_like_onnx(path: Path, dim: int = PERCH_DIM, classes: int = PERCH_CLASSES) -> Path:
    """Write the ONNX file: embedding = per-block mean of the waveform, logits = tiled embedding."""
    block = PERCH_SAMPLES // dim  # 104 samples per embedding dimension
    used = block * dim
    tiles = -(-classes // dim)
    nodes = [
        helper.make_node("Slice", ["inputs", "zero", "used", "axis1", "one"], ["trimmed"]),
        helper.make_node("Reshape", ["trimmed", "shape"], ["blocks"]),
        helper.make_node("ReduceMean", ["blocks", "last_axis"], ["embedding"], keepdims=0),
        helper.make_node("Tile", ["embedding", "repeats"], ["tiled"]),
        helper.make_node("Slice", ["tiled", "zero", "classes", "axis1", "one"], ["scaled"]),
        helper.make_node("Mul", ["scaled", "gain"], ["label"]),
    ]
    initializers = [
        _int64("zero", [0]), _int64("one", [1]), _int64("axis1", [1]), _int64("used", [used]),
        _int64("classes", [classes]), _int64("shape", [-1, dim, block]), _int64("last_axis", [2]),
        _int64("repeats", [1, tiles]), helper.make_tensor("gain", TensorProto.FLOAT, [], [100.0]),
    ]
    graph = helper.make_graph(
        nodes, "perch_like",
        [helper.make_tensor_value_info("inputs", TensorProto.FLOAT, ["batch", PERCH_SAMPLES])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", dim]),
         helper.make_tensor_value_info("label", TensorProto.FLOAT, ["batch", classes])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def make_perch_labels(path: Path, taxonomy_names: list[str], classes: int = PERCH_CLASSES) -> Path:
    """A labels CSV (column `inat2024_fsd50k`) with `taxonomy_names` at the first positions."""
    names = list(taxonomy_names) + [f"Placeholderus species{i}" for i in range(classes - len(taxonomy_names))]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["inat2024_fsd50k"])
        writer.writerows([n] for n in names)
    return path


def perch_like_config(folder: Path, taxonomy_names: list[str]) -> dict:
    """Teacher config values (as in conf/teacher/perch_v2.yaml) pointing at generated files."""
    model = make_perch_like_onnx(folder / "perch_like.onnx")
    labels = make_perch_labels(folder / "labels.csv", taxonomy_names)
    return {
        "name": "perch_v2", "model_path": str(model), "labels_path": str(labels),
        "labels_format": "csv:inat2024_fsd50k", "sample_rate": 32000, "window_samples": PERCH_SAMPLES,
        "logits_output": "label", "embedding_output": "embedding", "licence": "test file",
    }


def expected_embedding(windows: np.ndarray, dim: int = PERCH_DIM) -> np.ndarray:
    block = PERCH_SAMPLES // dim
    return windows[:, : block * dim].reshape(len(windows), dim, block).mean(axis=2)
