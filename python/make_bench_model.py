"""Build a full-size random-weight BGE-M3 for benchmarks and export it.

Same architecture and size as BAAI/bge-m3 (XLM-RoBERTa large: 24 layers, hidden 1024,
16 heads, FFN 4096, vocabulary 250002, 8194 positions), so it costs the same FLOPs
and memory; its weights are random, so its outputs mean nothing. It uses the tiny test
model's tokenizer (ids below 689), which changes nothing in the cost per token.

Writes both layouts that the engine runs, about 2.3 GB of weights each, in a few
minutes on 2 cores. Not committed.

- `models/bench-bge-m3/`: the FlagEmbedding checkpoint and the three-output ONNX export
  (`export_onnx.py`, fused attention unless `--attention standard`);
- `models/bench-bge-m3-official/`: the layout of the BAAI/bge-m3 repository, a
  backbone-only graph under `onnx/` and float16 heads (`make_official_layout.py`).

Usage: python python/make_bench_model.py [--output models/bench-bge-m3]
           [--official models/bench-bge-m3-official] [--attention fused|standard]
"""

import argparse
import pathlib
import shutil
import sys

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import corpus  # noqa: E402
import export_onnx  # noqa: E402
import make_official_layout  # noqa: E402
from random_heads import save_random_heads  # noqa: E402

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
TINY_MODEL = REPO_ROOT / "tests" / "fixtures" / "tiny-bge-m3"
TOKENIZER_FILES = [
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "sentencepiece.bpe.model",
]
SEED = 20261204
HIDDEN_SIZE = 1024


def build(model_dir: pathlib.Path) -> None:
    """Save random XLM-RoBERTa-large weights, the tokenizer and both heads."""
    from transformers import AutoTokenizer, XLMRobertaConfig, XLMRobertaModel

    model_dir.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        shutil.copyfile(TINY_MODEL / name, model_dir / name)
    torch.manual_seed(SEED)
    config = XLMRobertaConfig(
        vocab_size=250002,
        hidden_size=HIDDEN_SIZE,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        max_position_embeddings=8194,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        layer_norm_eps=1e-5,
    )
    model = XLMRobertaModel(config).eval()
    model.save_pretrained(model_dir)

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    save_random_heads(model, tokenizer, corpus.golden_corpus()[:20], model_dir)


def write_official(model_dir: pathlib.Path, official: pathlib.Path) -> None:
    """Write the same weights in the BAAI/bge-m3 layout, as the engine loads it."""
    make_official_layout.write_root_files(model_dir, official)
    flag_model = export_onnx.load_flag_model(model_dir)
    backbone = make_official_layout.export_backbone(flag_model, official / "onnx")
    make_official_layout.check_backbone(flag_model, backbone)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=pathlib.Path, default=REPO_ROOT / "models" / "bench-bge-m3",
                        help="model folder, replaced if present (default: models/bench-bge-m3)")
    parser.add_argument("--official", type=pathlib.Path,
                        help="folder for the BAAI/bge-m3 layout (default: OUTPUT-official)")
    parser.add_argument("--attention", choices=["fused", "standard"], default="fused",
                        help="attention of the three-output export (see export_onnx.py)")
    args = parser.parse_args()
    official = args.official or args.output.with_name(args.output.name + "-official")
    build(args.output)
    export_onnx.export(args.output, args.output, attention=args.attention)
    write_official(args.output, official)
    print(f"wrote {args.output} and {official}", file=sys.stderr)


if __name__ == "__main__":
    main()
