"""Write the tiny test model in the layout of the BAAI/bge-m3 repository.

`BAAI/bge-m3` publishes no three-output graph. Its `onnx/` folder contains a
backbone-only export (inputs `input_ids`, `attention_mask`; outputs
`token_embeddings` [batch, sequence, hidden] and `sentence_embedding`
[batch, hidden]) with its weights in `model.onnx_data` and one Constant node's
tensor in its own external data file (`Constant_7_attr__value`). FlagEmbedding's two
heads are in the repository root as `colbert_linear.pt` and `sparse_linear.pt`,
state dicts stored in float16. This script writes the tiny model that way:

    tiny-bge-m3-official/
        config.json, tokenizer.json, tokenizer_config.json, special_tokens_map.json
        colbert_linear.pt, sparse_linear.pt      float16 state dicts (`weight`, `bias`)
        onnx/model.onnx                          backbone-only graph
        onnx/model.onnx_data                     its weights
        onnx/Constant_<n>_attr__value            the int64 [1, 8194] Constant tensor
        onnx/three_outputs.onnx                  not in the BAAI layout, see below

`sentence_embedding` is the L2-normalised `<s>` state: the sentence-transformers
pipeline of the BAAI repository pools the `<s>` token and normalises it. The engine
does not read it; it computes the dense vector from `token_embeddings`.

The float16 heads differ from the float32 heads of `tiny-bge-m3/` by their rounding,
so FlagEmbedding's goldens do not apply to this layout at 1e-5. The comparison that
matters uses the same head weights in both layouts: `onnx/three_outputs.onnx` is
FlagEmbedding's own three-output forward (`export_onnx.py`) with the float16 heads
loaded into its float32 linear layers, exactly as `BGEM3FlagModel` loads the real
`.pt` files. Its backbone weights point into `model.onnx_data` (the same bytes), so
the comparison graph adds only its heads and graph structure to the fixture.

Reads `tiny-bge-m3/` made by `make_test_model.py` and changes nothing there.

Usage: python python/make_official_layout.py [--output tests/fixtures]
"""

import argparse
import pathlib
import shutil
import sys
import tempfile

import numpy as np
import onnx
import torch
from onnx import TensorProto, numpy_helper

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import export_onnx  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
SOURCE_NAME = "tiny-bge-m3"
OUTPUT_NAME = "tiny-bge-m3-official"
ROOT_FILES = ["config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]
HEAD_FILES = ["colbert_linear.pt", "sparse_linear.pt"]
# Files FlagEmbedding needs to load the checkpoint, besides the heads. The export of
# the three-output graph also writes tokenizer.onnx, which needs the SentencePiece model.
CHECKPOINT_FILES = ROOT_FILES + ["model.safetensors", "sentencepiece.bpe.model"]
DATA_FILE = "model.onnx_data"
OUTPUT_NAMES = ["token_embeddings", "sentence_embedding"]
# Constant tensors at least this large get their own external data file, as in the
# BAAI export; the tiny model has one, the int64 [1, 8194] token type ids.
SEPARATE_CONSTANT_BYTES = 4096
# Smaller tensors of the comparison graph stay inline: a short byte string can match
# anywhere, and inlining it costs little.
MIN_SHARED_BYTES = 64


class Backbone(torch.nn.Module):
    """The XLM-RoBERTa model that FlagEmbedding runs, with the backbone outputs."""

    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids, attention_mask):
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask, return_dict=True)
        tokens = hidden.last_hidden_state
        return tokens, torch.nn.functional.normalize(tokens[:, 0], dim=-1)


def write_root_files(source: pathlib.Path, output: pathlib.Path) -> None:
    """Copy the config and tokenizer files and write the float16 heads into `output`."""
    output.mkdir(parents=True, exist_ok=True)
    for name in ROOT_FILES:
        shutil.copyfile(source / name, output / name)
    write_half_heads(source, output)


def write_half_heads(source: pathlib.Path, output: pathlib.Path) -> None:
    """Save each head's state dict in float16, as the BAAI repository stores them."""
    for name in HEAD_FILES:
        state = torch.load(source / name, map_location="cpu", weights_only=True)
        out_features, in_features = state["weight"].shape
        linear = torch.nn.Linear(in_features, out_features)
        linear.load_state_dict(state)
        torch.save(linear.half().state_dict(), output / name)


def make_checkpoint(source: pathlib.Path, heads: pathlib.Path, folder: pathlib.Path) -> None:
    """Assemble a FlagEmbedding checkpoint: the tiny model with the float16 heads."""
    for name in CHECKPOINT_FILES:
        shutil.copyfile(source / name, folder / name)
    for name in HEAD_FILES:
        shutil.copyfile(heads / name, folder / name)


def export_backbone(flag_model, onnx_dir: pathlib.Path) -> pathlib.Path:
    """Write the backbone-only graph with its weights in external data files."""
    module = Backbone(flag_model.model.model).eval()
    sample = flag_model.tokenizer(["A sample text for tracing.", "Two"], padding=True, return_tensors="pt")
    with tempfile.TemporaryDirectory() as tmp:
        traced = pathlib.Path(tmp) / "model.onnx"
        torch.onnx.export(
            module,
            (sample["input_ids"], sample["attention_mask"]),
            str(traced),
            input_names=export_onnx.INPUT_NAMES,
            output_names=OUTPUT_NAMES,
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "attention_mask": {0: "batch", 1: "sequence"},
                "token_embeddings": {0: "batch", 1: "sequence"},
                "sentence_embedding": {0: "batch"},
            },
            opset_version=export_onnx.OPSET,
            dynamo=False,
        )
        model = onnx.load(str(traced), load_external_data=True)

    onnx_dir.mkdir(parents=True, exist_ok=True)
    for stale in onnx_dir.iterdir():
        stale.unlink()
    for tensor in model.graph.initializer:
        set_external(tensor, DATA_FILE)
    for node, tensor in constant_tensors(model):
        if len(tensor.raw_data) >= SEPARATE_CONSTANT_BYTES:
            set_external(tensor, f"{node.name}_attr__value")
    path = onnx_dir / "model.onnx"
    onnx.save_model(model, str(path))
    return path


def constant_tensors(model: onnx.ModelProto):
    """Yield (node, tensor) for the `value` tensor of each Constant node."""
    for node in model.graph.node:
        if node.op_type != "Constant":
            continue
        for attribute in node.attribute:
            if attribute.name == "value" and attribute.type == onnx.AttributeProto.TENSOR:
                yield node, attribute.t


def set_external(tensor: onnx.TensorProto, location: str) -> None:
    """Mark a tensor for `onnx.save_model` to append to `location`."""
    if not tensor.HasField("raw_data"):
        tensor.raw_data = numpy_helper.to_array(tensor).tobytes()
        for field in ("float_data", "int32_data", "int64_data", "double_data"):
            tensor.ClearField(field)
    onnx.external_data_helper.set_external_data(tensor, location)


def export_three_outputs(checkpoint: pathlib.Path, onnx_dir: pathlib.Path) -> pathlib.Path:
    """Export FlagEmbedding's three-output forward, its weights bound to the backbone's files."""
    with tempfile.TemporaryDirectory() as tmp:
        exported = export_onnx.export(checkpoint, pathlib.Path(tmp))
        model = onnx.load(str(exported), load_external_data=True)
    files = {path.name: path.read_bytes() for path in onnx_dir.iterdir() if path.name != "model.onnx"}
    inline_bytes = 0
    tensors = list(model.graph.initializer) + [tensor for _, tensor in constant_tensors(model)]
    for tensor in tensors:
        raw = numpy_helper.to_array(tensor).tobytes()
        location = find_bytes(files, raw)
        for field in ("raw_data", "float_data", "int32_data", "int64_data", "double_data"):
            tensor.ClearField(field)
        del tensor.external_data[:]
        if location is None:
            tensor.data_location = TensorProto.DEFAULT
            tensor.raw_data = raw
            inline_bytes += len(raw)
        else:
            name, offset = location
            tensor.data_location = TensorProto.EXTERNAL
            for key, value in (("location", name), ("offset", str(offset)), ("length", str(len(raw)))):
                entry = tensor.external_data.add()
                entry.key, entry.value = key, value
    print(f"three-output graph: {inline_bytes} bytes of tensors inline", file=sys.stderr)
    path = onnx_dir / "three_outputs.onnx"
    onnx.save_model(model, str(path))
    return path


def find_bytes(files: dict, raw: bytes):
    """Return (file name, offset) of a copy of `raw` in the external data files."""
    if len(raw) < MIN_SHARED_BYTES:
        return None
    for name, data in files.items():
        offset = data.find(raw)
        if offset >= 0:
            return name, offset
    return None


def check_backbone(flag_model, path: pathlib.Path) -> None:
    """Run the backbone with onnxruntime and compare it with FlagEmbedding's model."""
    import onnxruntime

    texts = ["A test text! Texto de prueba!", "", "short", "Текст для теста! 測試文字!" * 3]
    encoded = flag_model.tokenizer(texts, padding=True, return_tensors="np")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {name: encoded[name].astype(np.int64) for name in export_onnx.INPUT_NAMES}
    tokens, sentence = session.run(OUTPUT_NAMES, feeds)
    with torch.no_grad():
        torch_feeds = {name: torch.from_numpy(encoded[name]) for name in export_onnx.INPUT_NAMES}
        hidden = flag_model.model.model(**torch_feeds, return_dict=True).last_hidden_state
        dense = flag_model.model(torch_feeds, return_dense=True)["dense_vecs"]
    diffs = {
        "token_embeddings": np.abs(tokens - hidden.numpy()).max(),
        "sentence_embedding vs dense": np.abs(sentence - dense.numpy()).max(),
    }
    print("max abs difference, backbone vs FlagEmbedding:", diffs, file=sys.stderr)
    worst = max(diffs.values())
    if not worst <= 1e-4:
        raise SystemExit(f"backbone check failed: max abs difference {worst} > 1e-4")


def write_official_layout(fixtures: pathlib.Path) -> pathlib.Path:
    """Write `tiny-bge-m3-official/` from `tiny-bge-m3/` inside `fixtures`."""
    source = fixtures / SOURCE_NAME
    output = fixtures / OUTPUT_NAME
    write_root_files(source, output)

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = pathlib.Path(tmp)
        make_checkpoint(source, output, checkpoint)
        flag_model = export_onnx.load_flag_model(checkpoint)
        backbone = export_backbone(flag_model, output / "onnx")
        check_backbone(flag_model, backbone)
        comparison = export_three_outputs(checkpoint, output / "onnx")
        export_onnx.check_against_flag_model(flag_model, comparison)
    return output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=pathlib.Path, default=REPO_ROOT / "tests" / "fixtures",
                        help="fixtures folder, whose tiny-bge-m3-official is replaced (default: tests/fixtures)")
    args = parser.parse_args()
    output = write_official_layout(args.output)
    print(f"wrote {output}", file=sys.stderr)


if __name__ == "__main__":
    main()
