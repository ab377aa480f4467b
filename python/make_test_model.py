"""Build the tiny random-weight BGE-M3 test model, export it, and record goldens.

The real BGE-M3 weights cannot be downloaded on the machines this project is built
on, so parity is tested on a model of the same architecture with random weights:

1. A SentencePiece unigram model is trained on the multilingual text of `corpus.py`
   and converted to `tokenizer.json` the way XLM-R's was (`<s>`=0, `<pad>`=1,
   `</s>`=2, `<unk>`=3, then the SentencePiece pieces, then `<mask>`). The converter
   of transformers 4.36.2 with tokenizers 0.15.2 writes the same normaliser and
   pre-tokenizer layout as the published BGE-M3 file; later converters do not, so
   it runs from a side folder (`--converter-path`, made by `python/setup.sh`).
2. An XLM-RoBERTa model with a small hidden size and the real position limit
   (`max_position_embeddings` 8194, pad id 1) gets random weights from a fixed seed,
   with FlagEmbedding's two heads saved as `colbert_linear.pt` and `sparse_linear.pt`.
3. `export_onnx.py` writes the three-output ONNX model with fused attention, and a
   second export with the standard attention operators into `tiny-bge-m3-standard/`.
4. FlagEmbedding 1.4.2 encodes the golden corpus at max length 8192 and 16, and the
   outputs are written as JSON lines.
5. `make_official_layout.py` writes the same model in the layout of the BAAI/bge-m3
   repository (backbone-only graph, float16 `.pt` heads).

Usage: python python/make_test_model.py [--output tests/fixtures]
"""

import argparse
import base64
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import corpus  # noqa: E402
import export_onnx  # noqa: E402
import make_official_layout  # noqa: E402
from random_heads import save_random_heads  # noqa: E402

SEED = 20261204
HIDDEN_SIZE = 32
LAYERS = 2
HEADS = 4
INTERMEDIATE_SIZE = 64
# XLM-R's own range of 0.02 gives nearly the same dense vector for every text on a
# model this small; 0.1 spreads them so that dense comparisons can fail.
INITIALIZER_RANGE = 0.1
VOCAB_SIZE = 2000
MAX_LENGTHS = [8192, 16]
REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent

CONVERT_SCRIPT = """
import sys
from transformers import XLMRobertaTokenizer, XLMRobertaTokenizerFast
slow = XLMRobertaTokenizer(vocab_file=sys.argv[1], model_max_length=8192)
slow.save_pretrained(sys.argv[2])
fast = XLMRobertaTokenizerFast.from_pretrained(sys.argv[2], from_slow=True)
fast.save_pretrained(sys.argv[2])
"""

# `from_slow: true` in tokenizer_config.json makes later transformers versions rebuild
# the tokenizer from sentencepiece.bpe.model with their own converter instead of
# loading tokenizer.json. The published BGE-M3 config has no such key.
DROPPED_CONFIG_KEYS = ["from_slow"]


def train_sentencepiece(work: pathlib.Path) -> pathlib.Path:
    """Train the unigram model with XLM-R's special ids (unk 0, bos 1, eos 2)."""
    import sentencepiece

    text_path = work / "training.txt"
    text_path.write_text(corpus.training_text(), encoding="utf-8")
    prefix = work / "sentencepiece.bpe"
    sentencepiece.SentencePieceTrainer.train(
        input=str(text_path),
        model_prefix=str(prefix),
        model_type="unigram",
        vocab_size=VOCAB_SIZE,
        hard_vocab_limit=False,
        character_coverage=1.0,
        normalization_rule_name="nmt_nfkc",
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        num_threads=1,
        seed_sentencepiece_size=100000,
    )
    return pathlib.Path(f"{prefix}.model")


def convert_tokenizer(spm_model: pathlib.Path, model_dir: pathlib.Path, converter: str) -> None:
    """Write tokenizer.json and its configs with the side-installed converter."""
    env = dict(os.environ, PYTHONPATH=converter)
    subprocess.run(
        [sys.executable, "-c", CONVERT_SCRIPT, str(spm_model), str(model_dir)],
        env=env,
        check=True,
    )
    config_path = model_dir / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    for key in DROPPED_CONFIG_KEYS:
        config.pop(key, None)
    config_path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    tokenizer = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = tokenizer["model"]["vocab"]
    expected = ["<s>", "<pad>", "</s>", "<unk>"]
    if [piece for piece, _ in vocab[:4]] != expected:
        raise SystemExit(f"unexpected special tokens in tokenizer.json: {vocab[:4]}")


def build_model(model_dir: pathlib.Path, vocab_size: int) -> None:
    """Save random XLM-RoBERTa weights and FlagEmbedding's two heads."""
    from transformers import AutoTokenizer, XLMRobertaConfig, XLMRobertaModel

    torch.manual_seed(SEED)
    config = XLMRobertaConfig(
        vocab_size=vocab_size,
        hidden_size=HIDDEN_SIZE,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=INTERMEDIATE_SIZE,
        max_position_embeddings=8194,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        initializer_range=INITIALIZER_RANGE,
        layer_norm_eps=1e-5,
    )
    model = XLMRobertaModel(config).eval()
    model.save_pretrained(model_dir)

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    save_random_heads(model, tokenizer, corpus.golden_corpus()[:-1], model_dir)


STANDARD_FILES = ["config.json", "tokenizer.json", "special_tokens_map.json"]


def export_standard(model_dir: pathlib.Path, folder: pathlib.Path) -> None:
    """Export the model with the standard attention operators, with what the engine needs."""
    with tempfile.TemporaryDirectory() as tmp:
        export_onnx.export(model_dir, pathlib.Path(tmp), attention="standard")
        folder.mkdir(parents=True, exist_ok=True)
        for name in ["model.onnx", "model.onnx_data"] + STANDARD_FILES:
            source = pathlib.Path(tmp) / name
            if not source.exists():
                source = model_dir / name
            shutil.copyfile(source, folder / name)


def floats_to_base64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype="<f4").tobytes()).decode("ascii")


def record_goldens(model_dir: pathlib.Path, golden_dir: pathlib.Path) -> None:
    """Encode the corpus with FlagEmbedding and write one JSONL file per max length."""
    flag_model = export_onnx.load_flag_model(model_dir)
    texts = corpus.golden_corpus()
    golden_dir.mkdir(parents=True, exist_ok=True)
    with open(golden_dir / "corpus.jsonl", "w", encoding="utf-8") as out:
        for text in texts:
            out.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")

    for max_length in MAX_LENGTHS:
        output = flag_model.encode(
            texts,
            batch_size=8,
            max_length=max_length,
            return_dense=True,
            return_sparse=True,
            return_colbert_vecs=True,
        )
        ids = flag_model.tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
        full_lengths = [len(x) for x in flag_model.tokenizer(texts)["input_ids"]]
        path = golden_dir / f"max_length_{max_length}.jsonl"
        with open(path, "w", encoding="utf-8") as out:
            for index, text in enumerate(texts):
                colbert = output["colbert_vecs"][index]
                record = {
                    "index": index,
                    "input_ids": ids[index],
                    "truncated": full_lengths[index] > max_length,
                    "dense": floats_to_base64(output["dense_vecs"][index]),
                    "sparse": {k: float(v) for k, v in output["lexical_weights"][index].items()},
                    "colbert_rows": int(colbert.shape[0]),
                    "colbert": floats_to_base64(colbert),
                }
                out.write(json.dumps(record) + "\n")
        print(f"wrote {path}", file=sys.stderr)


def write_versions(golden_dir: pathlib.Path) -> None:
    import FlagEmbedding  # noqa: F401
    import importlib.metadata as metadata

    packages = ["FlagEmbedding", "transformers", "tokenizers", "torch", "onnx", "onnxruntime",
                "sentencepiece"]
    versions = {name: metadata.version(name) for name in packages}
    versions["converter"] = "transformers 4.36.2, tokenizers 0.15.2"
    versions["seed"] = SEED
    text = json.dumps(versions, indent=2) + "\n"
    (golden_dir / "versions.json").write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=pathlib.Path, default=REPO_ROOT / "tests" / "fixtures",
                        help="fixtures folder, whose model and goldens are replaced (default: tests/fixtures)")
    parser.add_argument(
        "--converter-path",
        default=os.environ.get("BGE_M3_CONVERTER_PATH", str(REPO_ROOT / "python" / ".converter")),
        help="folder with transformers 4.36.2 and tokenizers 0.15.2 (python/setup.sh makes it)",
    )
    args = parser.parse_args()
    model_dir = args.output / "tiny-bge-m3"
    model_dir.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory() as tmp:
        spm_model = train_sentencepiece(pathlib.Path(tmp))
        convert_tokenizer(spm_model, model_dir, args.converter_path)
    vocab = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    build_model(model_dir, len(vocab))
    export_onnx.export(model_dir, model_dir)
    export_standard(model_dir, args.output / "tiny-bge-m3-standard")
    record_goldens(model_dir, args.output / "goldens")
    write_versions(args.output / "goldens")
    make_official_layout.write_official_layout(args.output)


if __name__ == "__main__":
    main()
