"""Write model folders that the engine must reject, for its error tests.

`tests/fixtures/wrong-outputs/` holds a valid ONNX graph with the inputs of a
BGE-M3 export but the outputs of a backbone-only export (`token_embeddings`,
`sentence_embedding`), beside the tiny model's tokenizer. Needs only `onnx`.

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=pathlib.Path, default=REPO_ROOT / "tests" / "fixtures")
    args = parser.parse_args()
    folder = args.output / "wrong-outputs"
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save_model(wrong_outputs_graph(), str(folder / "model.onnx"))
    tiny = args.output / "tiny-bge-m3"
    for name in ("tokenizer.json", "special_tokens_map.json"):
        shutil.copyfile(tiny / name, folder / name)


if __name__ == "__main__":
    main()
