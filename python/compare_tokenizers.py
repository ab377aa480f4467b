"""List the corpus texts where transformers' AutoTokenizer and tokenizer.json disagree.

The engine runs `tokenizer.json` with the Rust `tokenizers` crate. FlagEmbedding
tokenizes with transformers' `AutoTokenizer`; transformers 4.x loads the same file,
transformers 5.x rebuilds the XLM-R pipeline from the vocabulary. Run this script in
an environment with the transformers version to check; it needs no PyTorch.

Usage: python python/compare_tokenizers.py MODEL_DIR CORPUS_JSONL [--max-length 8192]
"""

import argparse
import json
import pathlib

import tokenizers
import transformers
from transformers import AutoTokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model_dir", type=pathlib.Path, help="model folder with tokenizer.json")
    parser.add_argument("corpus", type=pathlib.Path, help="JSONL file of {\"text\": ...} records")
    parser.add_argument("--max-length", type=int, default=8192,
                        help="tokens per text, <s> and </s> included (default: 8192)")
    args = parser.parse_args()

    texts = [
        json.loads(line)["text"]
        for line in args.corpus.read_text(encoding="utf-8").split("\n")
        if line
    ]
    from_file = tokenizers.Tokenizer.from_file(str(args.model_dir / "tokenizer.json"))
    from_file.enable_truncation(args.max_length)
    auto = AutoTokenizer.from_pretrained(str(args.model_dir))

    differing = 0
    for index, text in enumerate(texts):
        file_ids = from_file.encode(text).ids
        auto_ids = auto(text, truncation=True, max_length=args.max_length)["input_ids"]
        if file_ids != auto_ids:
            differing += 1
            at = next(
                (i for i, (a, b) in enumerate(zip(file_ids, auto_ids)) if a != b),
                min(len(file_ids), len(auto_ids)),
            )
            window = slice(max(at - 2, 0), at + 4)
            print(json.dumps({
                "index": index,
                "text": text[:60],
                "lengths": [len(file_ids), len(auto_ids)],
                "first_difference": at,
                "tokenizer_json": file_ids[window],
                "auto_tokenizer": auto_ids[window],
            }, ensure_ascii=False))
    print(f"transformers {transformers.__version__}, tokenizers {tokenizers.__version__}: "
          f"{differing} of {len(texts)} texts tokenized differently")


if __name__ == "__main__":
    main()
