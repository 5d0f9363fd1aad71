"""Small hand-built ONNX models that honour the member and teacher contracts, for fast tests.

A fake CNN member maps the log-mel to logits with a fixed random linear layer over the mean of
each mel band, so its scores depend on the audio (TTA shifts change them) but no training runs.
A fake teacher maps raw audio windows to logits and an embedding the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from infer.frontend import FrontendSpec
from infer.member import META_PREFIX, SCHEMA_VERSION
from infer.taxonomy import Taxonomy

OPSET = 17


def _linear_graph(name: str, input_name: str, input_shape: list, reduce_axes: list[int], n_features: int,
                  outputs: dict[str, int], seed: int, scale: float) -> onnx.GraphProto:
    rng = np.random.default_rng(seed)
    nodes = [helper.make_node("ReduceMean", [input_name], ["pooled"], axes=reduce_axes, keepdims=0)]
    initializers = []
    graph_outputs = []
    for output, width in outputs.items():
        weight = numpy_helper.from_array((scale * rng.standard_normal((n_features, width))).astype(np.float32), f"{output}_w")
        bias = numpy_helper.from_array((0.1 * rng.standard_normal(width)).astype(np.float32), f"{output}_b")
        initializers += [weight, bias]
        nodes.append(helper.make_node("Gemm", ["pooled", f"{output}_w", f"{output}_b"], [output]))
        graph_outputs.append(helper.make_tensor_value_info(output, TensorProto.FLOAT, ["batch", width]))
    inputs = [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, input_shape)]
    return helper.make_graph(nodes, name, inputs, graph_outputs, initializers)


def write_fake_member(
    path: Path, taxonomy: Taxonomy, seed: int = 0, spec: FrontendSpec | None = None,
    classes: list[str] | None = None, run_id: str = "fake-run", experiment: str | None = None,
    licence: str = "test licence",
) -> Path:
    """Write an ONNX CNN member with the full `pantanal.*` metadata to `path` and return `path`."""
    spec = spec or FrontendSpec()
    classes = list(taxonomy.labels) if classes is None else classes
    graph = _linear_graph("fake_member", "logmel", ["batch", 1, spec.n_mels, spec.n_frames], [1, 3],
                          spec.n_mels, {"logits": len(classes)}, seed, scale=0.3)
    # frame_logits [batch, 1, C]: the clip logits as a single frame.
    graph.node.append(helper.make_node("Constant", [], ["frame_axis"], value=numpy_helper.from_array(np.array([1], np.int64))))
    graph.node.append(helper.make_node("Unsqueeze", ["logits", "frame_axis"], ["frame_logits"]))
    graph.output.append(helper.make_tensor_value_info("frame_logits", TensorProto.FLOAT, ["batch", 1, len(classes)]))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    props = {
        "schema_version": SCHEMA_VERSION,
        "classes": json.dumps(classes),
        "taxonomy_sha256": taxonomy.sha256,
        "taxonomy": json.dumps(taxonomy.to_records()),
        "frontend": spec.to_json(),
        "source_run_id": run_id,
        "stage": "ns2",
        "checkpoint_sha256": "0" * 64,
        "licence": licence,
    }
    if experiment is not None:
        props["experiment"] = experiment
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = META_PREFIX + key, value
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def write_fake_teacher(folder: Path, labels: list[str], sample_rate: int = 16000, window_samples: int = 16000,
                       seed: int = 1, embedding_dim: int = 8) -> dict[str, object]:
    """Write an ONNX teacher on raw audio and its label file; return the `spec_from_dict` values."""
    folder.mkdir(parents=True, exist_ok=True)
    # Features: the mean energy of each of 16 segments of the window, so loud and quiet windows differ.
    n_features = 16
    rng = np.random.default_rng(seed)
    nodes = [
        helper.make_node("Mul", ["audio", "audio"], ["energy"]),
        helper.make_node("Reshape", ["energy", "fold_shape"], ["folded"]),
        helper.make_node("ReduceMean", ["folded"], ["pooled"], axes=[2], keepdims=0),
    ]
    initializers = [numpy_helper.from_array(np.array([0, n_features, -1], np.int64), "fold_shape")]
    outputs = []
    for output, width in {"label": len(labels), "embedding": embedding_dim}.items():
        initializers += [
            numpy_helper.from_array((50 * rng.standard_normal((n_features, width))).astype(np.float32), f"{output}_w"),
            numpy_helper.from_array(np.zeros(width, np.float32), f"{output}_b"),
        ]
        nodes.append(helper.make_node("Gemm", ["pooled", f"{output}_w", f"{output}_b"], [output]))
        outputs.append(helper.make_tensor_value_info(output, TensorProto.FLOAT, ["batch", width]))
    graph = helper.make_graph(nodes, "fake_teacher",
                              [helper.make_tensor_value_info("audio", TensorProto.FLOAT, ["batch", window_samples])],
                              outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model)
    model_path, labels_path = folder / "fake_teacher.onnx", folder / "fake_teacher_labels.txt"
    onnx.save(model, str(model_path))
    labels_path.write_text("\n".join(labels) + "\n", encoding="utf-8")
    return {
        "name": "fake_teacher", "model_path": str(model_path), "labels_path": str(labels_path),
        "labels_format": "lines", "sample_rate": sample_rate, "window_samples": window_samples,
        "logits_output": "label", "embedding_output": "embedding", "licence": "CC BY-NC-SA 4.0 (test teacher)",
    }
