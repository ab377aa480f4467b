"""Export a FlagEmbedding-format BGE-M3 checkpoint to a three-output ONNX model.

The checkpoint folder contains Hugging Face XLM-RoBERTa weights, the tokenizer files,
`colbert_linear.pt` and `sparse_linear.pt`, as `BAAI/bge-m3` publishes them. The
ONNX graph runs FlagEmbedding 1.4.2's own model forward with dense, sparse and
ColBERT enabled, so the engine computes exactly what `BGEM3FlagModel.encode` does:

    inputs   input_ids       int64 [batch, sequence]
             attention_mask  int64 [batch, sequence]
    outputs  dense_embeddings  float32 [batch, hidden]         L2-normalised <s> state
             sparse_weights    float32 [batch, sequence, 1]   ReLU weights, padding NOT masked
             colbert_vectors   float32 [batch, sequence-1, hidden]  normalised, padding rows zero

Weights go to `model.onnx_data` (external data), because the fp32 BGE-M3 graph is
over the 2 GB protobuf limit. `tokenizer.json` and the configs are copied beside it,
and `tokenizer.onnx` (onnxruntime-extensions) is written for ONNX Runtime users
without a Hugging Face tokenizer.

Usage: python python/export_onnx.py CHECKPOINT_DIR OUTPUT_DIR [--attention fused|standard]
"""

import argparse
import copy
import os
import pathlib
import shutil
import sys
import tempfile

import numpy as np
import onnx
import torch

OUTPUT_NAMES = ["dense_embeddings", "sparse_weights", "colbert_vectors"]
INPUT_NAMES = ["input_ids", "attention_mask"]
# Files copied from the checkpoint beside the ONNX model when present.
SIDE_FILES = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "sentencepiece.bpe.model",
    "config.json",
]
OPSET = 20
# FlagEmbedding's heads. Without them, FlagEmbedding 1.4.2 makes random ones and logs
# it only at INFO level (`finetune/embedder/encoder_only/m3/runner.py`), so a
# checkpoint without them is rejected.
HEAD_FILES = ["colbert_linear.pt", "sparse_linear.pt"]


class ThreeOutputs(torch.nn.Module):
    """FlagEmbedding's inference model with all three outputs, as a tuple."""

    def __init__(self, m3_model, mask_holder=None):
        super().__init__()
        self.m3_model = m3_model
        self.mask_holder = mask_holder

    def forward(self, input_ids, attention_mask):
        if self.mask_holder is not None:
            self.mask_holder.key_padding_mask = attention_mask.to(torch.int32)
        text_input = {"input_ids": input_ids, "attention_mask": attention_mask}
        output = self.m3_model(
            text_input,
            return_dense=True,
            return_sparse=True,
            return_colbert_vecs=True,
            return_sparse_embedding=False,
        )
        return output["dense_vecs"], output["sparse_vecs"], output["colbert_vecs"]


def load_flag_model(checkpoint: pathlib.Path):
    """Load the checkpoint folder with FlagEmbedding on CPU in fp32."""
    from FlagEmbedding import BGEM3FlagModel

    check_checkpoint(checkpoint)
    return BGEM3FlagModel(str(checkpoint), use_fp16=False, devices="cpu")


def check_checkpoint(checkpoint: pathlib.Path) -> None:
    """Exit with a message when `checkpoint` is not a folder with both heads.

    FlagEmbedding would read a missing folder as a Hub repository id, and a folder
    without the heads as a model whose heads are to be made at random.
    """
    if not checkpoint.is_dir():
        raise SystemExit(f"error: checkpoint folder {checkpoint} not found; give a local folder "
                         f"with the model weights, the tokenizer and {' and '.join(HEAD_FILES)}")
    missing = [name for name in HEAD_FILES if not (checkpoint / name).is_file()]
    if missing:
        raise SystemExit(f"error: {checkpoint} has no {' or '.join(missing)}; copy the heads "
                         "from the model's repository (FlagEmbedding would make random ones)")


def export(checkpoint: pathlib.Path, output: pathlib.Path, attention: str = "fused") -> pathlib.Path:
    """Write `model.onnx`, `model.onnx_data` and the side files into `output`.

    `attention` is "fused" (ONNX Runtime's MultiHeadAttention, see fused_attention.py)
    or "standard" (the attention operators as PyTorch traces them). An existing
    folder keeps its other files. The graph is checked against FlagEmbedding before it
    replaces any `model.onnx` there, so a failed check leaves the folder as it was.
    """
    if output.exists() and not output.is_dir():
        raise SystemExit(f"error: output {output} is a file; give a folder for model.onnx and its files")
    flag_model = load_flag_model(checkpoint)
    if attention == "fused":
        import fused_attention

        m3_model = copy.deepcopy(flag_model.model)
        holder = fused_attention.fuse_attention(m3_model.model)
        module = ThreeOutputs(m3_model, holder).eval()
    else:
        module = ThreeOutputs(flag_model.model).eval()
    tokenizer = flag_model.tokenizer
    sample = tokenizer(["A sample text for tracing.", "Two"], padding=True, return_tensors="pt")
    output.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory() as tmp:
        traced_path = pathlib.Path(tmp) / "model.onnx"
        # The TorchScript exporter (dynamo=False) keeps batch and sequence dynamic; the
        # dynamo exporter of torch 2.15 fixed the batch at 1 for this model.
        torch.onnx.export(
            module,
            (sample["input_ids"], sample["attention_mask"]),
            str(traced_path),
            input_names=INPUT_NAMES,
            output_names=OUTPUT_NAMES,
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "attention_mask": {0: "batch", 1: "sequence"},
                "dense_embeddings": {0: "batch"},
                "sparse_weights": {0: "batch", 1: "sequence"},
                "colbert_vectors": {0: "batch", 1: "sequence_minus_1"},
            },
            opset_version=OPSET,
            dynamo=False,
        )
        model = onnx.load(str(traced_path), load_external_data=True)
    if attention == "fused":
        model = fused_attention.split_on_padding(model)

    model_path = output / "model.onnx"
    with tempfile.TemporaryDirectory(dir=output, prefix=".export-") as staging:
        staged = pathlib.Path(staging) / "model.onnx"
        onnx.save_model(
            model,
            str(staged),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location="model.onnx_data",
            size_threshold=0,
        )
        check_against_flag_model(flag_model, staged)
        for name in ("model.onnx", "model.onnx_data"):
            readable_by_all(pathlib.Path(staging) / name)
            os.replace(pathlib.Path(staging) / name, output / name)
    for name in SIDE_FILES:
        source = checkpoint / name
        if source.exists() and source.resolve() != (output / name).resolve():
            shutil.copyfile(source, output / name)

    export_tokenizer(flag_model.tokenizer, output)
    return model_path


def readable_by_all(path: pathlib.Path) -> None:
    """Give `path` the mode a new file gets under the umask, so that a service account
    can read the export. onnx 1.23's `save_model` created the external data file with
    mode 0600 here, under umask 0022."""
    umask = os.umask(0)
    os.umask(umask)
    path.chmod(0o666 & ~umask)


def export_tokenizer(tokenizer, output: pathlib.Path) -> pathlib.Path:
    """Write `tokenizer.onnx`, the tokenizer as an onnxruntime-extensions graph.

    For ONNX Runtime users in languages without a Hugging Face tokenizer. The graph
    runs SentencePiece on `sentencepiece.bpe.model` and adds `<s>` and `</s>`; it does
    not truncate, and docs/parity.md lists the texts whose ids differ from
    `tokenizer.json`.
    """
    from onnxruntime_extensions import gen_processing_models

    graph, _ = gen_processing_models(tokenizer, pre_kwargs={})
    path = output / "tokenizer.onnx"
    onnx.save_model(graph, str(path))
    return path


def check_against_flag_model(flag_model, model_path: pathlib.Path) -> None:
    """Run the exported graph with onnxruntime and compare it with FlagEmbedding.

    One padded batch and one text alone, so that both branches of a fused-attention
    graph (padding and no padding) are checked.
    """
    import onnxruntime

    session = onnxruntime.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    batches = [
        ["A test text! Texto de prueba!", "", "short", "Текст для теста! 測試文字!" * 3],
        ["Текст для теста! 測試文字!" * 3],
    ]
    worst = 0.0
    for texts in batches:
        encoded = flag_model.tokenizer(texts, padding=True, return_tensors="np")
        dense, sparse, colbert = session.run(
            OUTPUT_NAMES,
            {name: encoded[name].astype(np.int64) for name in INPUT_NAMES},
        )
        with torch.no_grad():
            reference = flag_model.model(
                {name: torch.from_numpy(encoded[name]) for name in INPUT_NAMES},
                return_dense=True,
                return_sparse=True,
                return_colbert_vecs=True,
            )
        diffs = {
            "dense": np.abs(dense - reference["dense_vecs"].numpy()).max(),
            "sparse": np.abs(sparse - reference["sparse_vecs"].numpy()).max(),
            "colbert": np.abs(colbert - reference["colbert_vecs"].numpy()).max(),
        }
        print(f"{len(texts)} texts, max abs difference vs FlagEmbedding: {diffs}", file=sys.stderr)
        worst = max(worst, *diffs.values())
    if not worst <= 1e-4:
        raise SystemExit(f"export check failed: max abs difference {worst} > 1e-4")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", type=pathlib.Path, help="FlagEmbedding checkpoint folder")
    parser.add_argument("output", type=pathlib.Path,
                        help="folder for model.onnx and its files; an existing folder keeps its "
                        "other files, and model.onnx, model.onnx_data and the copied files are replaced")
    parser.add_argument(
        "--attention",
        choices=["fused", "standard"],
        default="fused",
        help="fused: ONNX Runtime MultiHeadAttention, flash attention on unpadded batches; "
        "standard: the operators as PyTorch traces them",
    )
    args = parser.parse_args()
    path = export(args.checkpoint, args.output, args.attention)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
