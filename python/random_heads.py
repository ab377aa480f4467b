"""FlagEmbedding's two heads with random weights, for the models the project makes.

BGE-M3's checkpoint stores the heads beside the encoder: `colbert_linear.pt` (a
hidden × hidden linear layer) and `sparse_linear.pt` (hidden × 1). The test and bench
models get random ones, with the sparse bias set so that about half of the token
weights are positive after the ReLU, as in a trained model's sparse output. A random
head without that bias gives no positive weight to most tokens, and the sparse path
would go untested.
"""

import pathlib

import torch


def save_random_heads(model, tokenizer, texts: list[str], model_dir: pathlib.Path) -> None:
    """Write random `colbert_linear.pt` and `sparse_linear.pt`, with the sparse bias
    set to the negated median logit of the tokens of `texts`."""
    hidden_size = model.config.hidden_size
    colbert = torch.nn.Linear(hidden_size, hidden_size)
    sparse = torch.nn.Linear(hidden_size, 1)
    with torch.no_grad():
        encoded = tokenizer(texts, padding=True, return_tensors="pt")
        hidden = model(**encoded).last_hidden_state
        logits = (hidden @ sparse.weight.T).squeeze(-1)[encoded["attention_mask"].bool()]
        sparse.bias.fill_(-float(logits.median()))
    torch.save(colbert.state_dict(), model_dir / "colbert_linear.pt")
    torch.save(sparse.state_dict(), model_dir / "sparse_linear.pt")
