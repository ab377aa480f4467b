"""A bench model folder whose tokenizer covers the whole vocabulary, and texts for it.

The bench model uses the tiny test model's tokenizer, whose ids stay below 689, so
its texts read only the first rows of the 250002-row embedding table. Real BGE-M3
text reads rows all over the table. This script writes a folder that links the bench
model's graph and weights and adds a word-level tokenizer with one word per id: `t4`
to `t250000`, and XLM-R's special tokens at their ids. It then writes texts of random
words, so every engine that reads the folder gathers rows across the table.

    bench/.venv/bin/python bench/wide_vocab.py --model models/bench-bge-m3 \
        --output models/bench-bge-m3-wide --texts bench/work/texts/W3-wide.jsonl

Writes `--count` texts of `--tokens` tokens each, special tokens included (2 texts of
8192 tokens by default, W3's shape), with a fixed seed.
"""

import argparse
import json
import pathlib
import random

from tokenizers import Tokenizer, models, pre_tokenizers, processors

SEED = 20261205
SPECIAL = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
MASK = "<mask>"
LINKED_FILES = [
    "model.onnx",
    "model.onnx_data",
    "config.json",
    "special_tokens_map.json",
    "tokenizer_config.json",
]


def vocabulary_size(config: pathlib.Path) -> int:
    return json.loads(config.read_text())["vocab_size"]


def word(token_id: int) -> str:
    return f"t{token_id}"


def wide_tokenizer(size: int) -> Tokenizer:
    """Build a word-level tokenizer with one word per id that puts `<s> … </s>` around texts."""
    vocab = dict(SPECIAL)
    vocab.update({word(token_id): token_id for token_id in range(len(SPECIAL), size - 1)})
    vocab[MASK] = size - 1
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    tokenizer.add_special_tokens(list(SPECIAL) + [MASK])
    return tokenizer


def link_model(model: pathlib.Path, output: pathlib.Path) -> None:
    output.mkdir(parents=True, exist_ok=True)
    for name in LINKED_FILES:
        link = output / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to((model / name).resolve())


def write_texts(path: pathlib.Path, size: int, count: int, tokens: int) -> None:
    rng = random.Random(SEED)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as out:
        for _ in range(count):
            ids = [rng.randrange(len(SPECIAL), size - 1) for _ in range(tokens - 2)]
            out.write(json.dumps({"text": " ".join(word(i) for i in ids)}) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=pathlib.Path, required=True,
                        help="bench model folder with model.onnx and config.json")
    parser.add_argument("--output", type=pathlib.Path, required=True,
                        help="folder to write, whose model files are symlinks")
    parser.add_argument("--texts", type=pathlib.Path, required=True, help="JSONL to write")
    parser.add_argument("--count", type=int, default=2, help="number of texts")
    parser.add_argument("--tokens", type=int, default=8192,
                        help="tokens per text, <s> and </s> included")
    args = parser.parse_args()
    if args.tokens < 3:
        parser.error(f"--tokens {args.tokens} leaves no room for a word; give 3 or more")

    size = vocabulary_size(args.model / "config.json")
    link_model(args.model, args.output)
    tokenizer = wide_tokenizer(size)
    tokenizer.save(str(args.output / "tokenizer.json"))
    write_texts(args.texts, size, args.count, args.tokens)

    check = tokenizer.encode(word(size - 2) + " " + word(len(SPECIAL)))
    print(f"{args.output}: {size} ids, sample ids {check.ids}; {args.count} texts in {args.texts}")


if __name__ == "__main__":
    main()
