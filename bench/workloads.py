"""The benchmark workloads and their texts, with exact token counts.

Texts are made of words from the multilingual training sentences of python/corpus.py, drawn
with a seeded generator, so every run and every engine gets the same texts. The
tokenizer pre-splits on whitespace (Metaspace), so a text's token count is 2 (<s>
and </s>) plus the sum of its words' token counts; the generator adds words until
the target is near and closes the gap with one-token words, which makes each text
exactly the target length with the model's tokenizer.json.
"""

import json
import pathlib
import random
import sys
from dataclasses import dataclass

from tokenizers import Tokenizer

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "python"))
import corpus  # noqa: E402

SEED = 20261204


@dataclass(frozen=True)
class Workload:
    """One timed run: how many texts of how many tokens, and how they are timed."""

    name: str
    description: str
    texts: int
    tokens: int
    mode: str = "throughput"
    outputs: str = "all"
    calls: int = 0
    # Padded tokens per model call, the same for every engine (bge-m3's default). W3
    # uses 8192 so that each 8192-token text runs alone in every engine, because two in
    # one call need about 20 GB with unfused attention.
    token_budget: int = 4096
    # Lengths are drawn evenly from tokens ± spread. A spread of 0 makes every text
    # `tokens` long.
    spread: int = 0

    def lengths(self) -> list[int]:
        """Return the token count of each text, the same in every run."""
        if self.spread == 0:
            return [self.tokens] * self.texts
        rng = random.Random(f"{SEED}-{self.name}-lengths")
        low, high = self.tokens - self.spread, self.tokens + self.spread
        return [rng.randint(low, high) for _ in range(self.texts)]

    def with_size(self, texts: int, calls: int) -> "Workload":
        """Return the workload with another text count and call count (quick mode)."""
        fields = dict(self.__dict__, texts=texts, calls=calls)
        return Workload(**fields)


WORKLOADS = [
    Workload("W1", "256 passages of 128 tokens", 256, 128),
    Workload("W1-dense", "256 passages of 128 tokens, dense only", 256, 128, outputs="dense"),
    # Passages of mixed lengths, as a real corpus has, for engines that pad each batch
    # to its longest text.
    Workload("W1-mixed", "256 passages of 64 to 192 tokens", 256, 128, spread=64),
    Workload("W2", "16 documents of 1024 tokens", 16, 1024),
    Workload("W3", "2 documents of 8192 tokens", 2, 8192, token_budget=8192),
    Workload("W4", "one 16-token query, 200 calls", 1, 16, mode="latency", calls=200),
]

# Quick mode (smoke tests): the same token counts with fewer texts and calls.
QUICK_SIZES = {
    "W1": (16, 0), "W1-dense": (16, 0), "W1-mixed": (16, 0), "W2": (2, 0), "W3": (1, 0), "W4": (1, 20),
}


def quick(workload: Workload) -> Workload:
    texts, calls = QUICK_SIZES[workload.name]
    return workload.with_size(texts, calls)


class TextMaker:
    """Makes texts of an exact token count from a word pool."""

    def __init__(self, tokenizer_path: pathlib.Path):
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        sentences = [text for texts in corpus.TRAINING_SENTENCES.values() for text in texts]
        words = sorted({word for text in sentences for word in text.split()})
        costs = self.word_costs(words)
        self.words = [word for word in words if costs[word] > 0]
        self.costs = costs
        self.one_token_words = [word for word in self.words if costs[word] == 1]
        if not self.one_token_words:
            raise SystemExit("error: the tokenizer has no one-token word in the corpus")

    def word_costs(self, words: list[str]) -> dict[str, int]:
        """Tokens each word adds after a space (its count without <s> and </s>)."""
        encodings = self.tokenizer.encode_batch(words)
        return {word: len(encoding.ids) - 2 for word, encoding in zip(words, encodings)}

    def make(self, target: int, rng: random.Random) -> str:
        """Return a text of exactly `target` tokens, <s> and </s> included."""
        words: list[str] = []
        remaining = target - 2
        while remaining > 0:
            word = rng.choice(self.words if remaining > 8 else self.one_token_words)
            if self.costs[word] <= remaining:
                words.append(word)
                remaining -= self.costs[word]
        text = " ".join(words)
        found = len(self.tokenizer.encode(text).ids)
        if found != target:
            raise SystemExit(f"error: a generated text has {found} tokens, not {target}")
        return text


def write_texts(workload: Workload, maker: TextMaker, folder: pathlib.Path) -> pathlib.Path:
    """Write the workload's texts as JSONL and return the file."""
    rng = random.Random(f"{SEED}-{workload.name.split('-')[0]}")
    texts = [maker.make(length, rng) for length in workload.lengths()]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{workload.name}.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for text in texts:
            out.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
    return path
