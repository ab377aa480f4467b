"""Write model folders that the engine must reject, for its error tests.

- `wrong-outputs/` contains a valid ONNX graph with the inputs of a BGE-M3 export but
  the outputs of a backbone-only export (`token_embeddings`, `sentence_embedding`).
- `nan-outputs/` contains a graph with the three BGE-M3 outputs (hidden size 1) that
  are NaN for every text containing the token id `NAN_TOKEN_ID` and finite otherwise.

Both use the tiny model's tokenizer. Needs only `onnx`.

Usage: python python/make_error_fixtures.py [--output tests/fixtures]
"""

import argparse
import pathlib
import shutil

import onnx
from onnx import TensorProto, helper

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


def wrong_outputs_graph() -> onnx.ModelProto:
    inputs = [
        helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])
        for name in ("input_ids", "attention_mask")
    ]
    outputs = [
        helper.make_tensor_value_info("token_embeddings", TensorProto.FLOAT, ["batch", "sequence", 1]),
        helper.make_tensor_value_info("sentence_embedding", TensorProto.FLOAT, ["batch", "sequence"]),
    ]
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [2])
    nodes = [
        helper.make_node("Cast", ["input_ids"], ["sentence_embedding"], to=TensorProto.FLOAT),
        helper.make_node("Unsqueeze", ["sentence_embedding", "axes"], ["token_embeddings"]),
    ]
    graph = helper.make_graph(nodes, "wrong_outputs", inputs, outputs, initializer=[axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    return model


# Token id 85 is "▁a" in the tiny model's vocabulary.
NAN_TOKEN_ID = 85


def nan_outputs_graph() -> onnx.ModelProto:
    """Return a graph whose outputs are sqrt(|id - 85| - 0.5): NaN only at id 85."""
    inputs = [
        helper.make_tensor_value_info(name, TensorProto.INT64, ["batch", "sequence"])
        for name in ("input_ids", "attention_mask")
    ]
    outputs = [
        helper.make_tensor_value_info("dense_embeddings", TensorProto.FLOAT, ["batch", 1]),
        helper.make_tensor_value_info("sparse_weights", TensorProto.FLOAT, ["batch", "sequence", 1]),
        helper.make_tensor_value_info("colbert_vectors", TensorProto.FLOAT, ["batch", "rows", 1]),
    ]
    constants = [
        helper.make_tensor("target", TensorProto.FLOAT, [], [float(NAN_TOKEN_ID)]),
        helper.make_tensor("half", TensorProto.FLOAT, [], [0.5]),
        helper.make_tensor("axis_1", TensorProto.INT64, [1], [1]),
        helper.make_tensor("axis_2", TensorProto.INT64, [1], [2]),
        helper.make_tensor("start_1", TensorProto.INT64, [1], [1]),
        helper.make_tensor("end_max", TensorProto.INT64, [1], [2**62]),
    ]
    nodes = [
        helper.make_node("Cast", ["input_ids"], ["ids"], to=TensorProto.FLOAT),
        helper.make_node("Sub", ["ids", "target"], ["shifted"]),
        helper.make_node("Abs", ["shifted"], ["distance"]),
        helper.make_node("Sub", ["distance", "half"], ["radicand"]),
        helper.make_node("Sqrt", ["radicand"], ["values"]),
        helper.make_node("Unsqueeze", ["values", "axis_2"], ["sparse_weights"]),
        helper.make_node("ReduceSum", ["values", "axis_1"], ["dense_embeddings"], keepdims=1),
        helper.make_node("Slice", ["values", "start_1", "end_max", "axis_1"], ["tail"]),
        helper.make_node("Unsqueeze", ["tail", "axis_2"], ["colbert_vectors"]),
    ]
    graph = helper.make_graph(nodes, "nan_outputs", inputs, outputs, initializer=constants)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 10
    onnx.checker.check_model(model)
    return model


def write_folder(folder: pathlib.Path, model: onnx.ModelProto, tiny: pathlib.Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(folder / "model.onnx"))
    for name in ("tokenizer.json", "special_tokens_map.json"):
        shutil.copyfile(tiny / name, folder / name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=pathlib.Path, default=REPO_ROOT / "tests" / "fixtures",
                        help="fixtures folder, whose error fixtures are replaced (default: tests/fixtures)")
    args = parser.parse_args()
    tiny = args.output / "tiny-bge-m3"
    write_folder(args.output / "wrong-outputs", wrong_outputs_graph(), tiny)
    write_folder(args.output / "nan-outputs", nan_outputs_graph(), tiny)


if __name__ == "__main__":
    main()
