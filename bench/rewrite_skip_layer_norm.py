"""Copy a three-output export with each post-layer norm as one SkipLayerNormalization.

Each encoder layer ends its attention and FFN blocks with MatMul, bias Add, residual
Add and LayerNormalization. ONNX Runtime's own SkipLayerNormFusion does not apply to
the export, because it needs fixed sizes on every axis but the batch
(`onnxruntime/core/optimizer/skip_layer_norm_fusion.cc`, 1.32), and the sequence axis
is dynamic. This script writes the fused `com.microsoft.SkipLayerNormalization`
(input, skip, gamma, beta, bias) in their place, so that the two graphs can be timed
against each other with bench/probe_session.py. The weights file is hard-linked, not
copied, so both folders must be on one file system.

    bench/.venv/bin/python bench/rewrite_skip_layer_norm.py models/bench-bge-m3 models/skip-ln
"""

import argparse
import os
import pathlib

import onnx
from onnx import helper

MS_DOMAIN = "com.microsoft"
DEFAULT_EPSILON = 1e-5


def constant_names(graph: onnx.GraphProto) -> set:
    """Return initializer names and the outputs of Identity nodes that read one."""
    names = {initializer.name for initializer in graph.initializer}
    names |= {node.output[0] for node in graph.node
              if node.op_type == "Identity" and node.input[0] in names}
    return names


def fused_node(layer_norm, residual_add, bias_add, constants):
    """Return the SkipLayerNormalization that replaces the three nodes, or None."""
    bias = [name for name in bias_add.input if name in constants]
    product = [name for name in bias_add.input if name not in constants]
    if len(bias) != 1 or len(product) != 1:
        return None
    skip = next(name for name in residual_add.input if name != bias_add.output[0])
    epsilon = next((attribute.f for attribute in layer_norm.attribute
                    if attribute.name == "epsilon"), DEFAULT_EPSILON)
    return helper.make_node(
        "SkipLayerNormalization",
        [product[0], skip, layer_norm.input[1], layer_norm.input[2], bias[0]],
        [layer_norm.output[0]], name=f"{layer_norm.name}/skip", domain=MS_DOMAIN,
        epsilon=epsilon)


def rewrite(graph: onnx.GraphProto) -> int:
    """Replace each bias Add, residual Add and LayerNormalization chain, and return the count."""
    constants = constant_names(graph)
    producer = {output: node for node in graph.node for output in node.output}
    readers: dict = {}
    for node in graph.node:
        for name in node.input:
            readers[name] = readers.get(name, 0) + 1
    removed, replaced = set(), {}
    for layer_norm in graph.node:
        if layer_norm.op_type != "LayerNormalization":
            continue
        residual_add = producer.get(layer_norm.input[0])
        if residual_add is None or residual_add.op_type != "Add":
            continue
        for name in residual_add.input:
            bias_add = producer.get(name)
            if bias_add is None or bias_add.op_type != "Add":
                continue
            if readers[bias_add.output[0]] != 1 or readers[residual_add.output[0]] != 1:
                continue
            node = fused_node(layer_norm, residual_add, bias_add, constants)
            if node is not None:
                removed |= {id(residual_add), id(bias_add)}
                replaced[id(layer_norm)] = node
                break
    nodes = [replaced.get(id(node), node) for node in graph.node if id(node) not in removed]
    del graph.node[:]
    graph.node.extend(nodes)
    return len(replaced)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=pathlib.Path, help="folder with model.onnx and model.onnx_data")
    parser.add_argument("output", type=pathlib.Path, help="new folder for the rewritten graph")
    args = parser.parse_args()
    model = onnx.load(str(args.source / "model.onnx"), load_external_data=False)
    count = rewrite(model.graph)
    if count == 0:
        raise SystemExit(f"error: no bias Add, residual Add, LayerNormalization chain "
                         f"found in {args.source / 'model.onnx'}")
    args.output.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(args.output / "model.onnx"))
    weights = args.output / "model.onnx_data"
    weights.unlink(missing_ok=True)
    os.link(args.source / "model.onnx_data", weights)
    print(f"wrote {args.output / 'model.onnx'} with {count} SkipLayerNormalization nodes")


if __name__ == "__main__":
    main()
