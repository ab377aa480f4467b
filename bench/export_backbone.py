"""Export the XLM-RoBERTa backbone of a BGE-M3 checkpoint for bge-m3-lite.

bge-m3-lite 0.6.2 runs a backbone-only graph (the layout of BAAI's own ONNX export:
inputs `input_ids` and `attention_mask`, outputs `token_embeddings` [batch, sequence,
hidden] and `sentence_embedding` [batch, hidden], the L2-normalised <s> state) and
applies the sparse and ColBERT heads in numpy. It cannot run the three-output export
of python/export_onnx.py. Weights go to `model.onnx_data`, the file name that
`bge_m3_lite.fuse.fuse()` expects beside the graph.

Eager attention is exported (not PyTorch's scaled-dot-product kernel) so that
onnxruntime's BERT optimizer, which bge-m3-lite's fusion runs, finds the attention
pattern. Runs in the reference environment (python/requirements.txt).

Usage: python bench/export_backbone.py CHECKPOINT_DIR OUTPUT_DIR
"""

import argparse
import pathlib
import tempfile

import onnx
import torch

OPSET = 14


class Backbone(torch.nn.Module):
    """Last hidden state and the normalised <s> state."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        sentence = torch.nn.functional.normalize(hidden[:, 0], dim=-1)
        return hidden, sentence


def export(checkpoint: pathlib.Path, output: pathlib.Path) -> pathlib.Path:
    """Write `model.onnx` and `model.onnx_data` into `output`."""
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(checkpoint), attn_implementation="eager").eval()
    ids = torch.tensor([[0, 100, 200, 300, 2], [0, 150, 2, 1, 1]], dtype=torch.int64)
    mask = (ids != 1).to(torch.int64)
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        traced = pathlib.Path(tmp) / "model.onnx"
        # The TorchScript exporter keeps batch and sequence dynamic (dynamo=False).
        torch.onnx.export(
            Backbone(model),
            (ids, mask),
            str(traced),
            input_names=["input_ids", "attention_mask"],
            output_names=["token_embeddings", "sentence_embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "attention_mask": {0: "batch", 1: "sequence"},
                "token_embeddings": {0: "batch", 1: "sequence"},
                "sentence_embedding": {0: "batch"},
            },
            opset_version=OPSET,
            dynamo=False,
        )
        graph = onnx.load(str(traced), load_external_data=True)
    path = output / "model.onnx"
    for stale in (path, output / "model.onnx_data"):
        stale.unlink(missing_ok=True)
    onnx.save_model(
        graph,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="model.onnx_data",
        size_threshold=0,
    )
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", type=pathlib.Path, help="FlagEmbedding checkpoint folder")
    parser.add_argument("output", type=pathlib.Path, help="folder for model.onnx and model.onnx_data")
    args = parser.parse_args()
    print(f"wrote {export(args.checkpoint, args.output)}")


if __name__ == "__main__":
    main()
