"""Export XLM-RoBERTa self-attention as ONNX Runtime's fused `MultiHeadAttention`.

The stock export writes attention as MatMul, Softmax and MatMul, and ONNX Runtime then
keeps every layer's full score matrix: batch × heads × sequence² floats, 4 GiB per
layer for one 8192-token text with 16 heads. The `com.microsoft.MultiHeadAttention`
operator (ONNX Runtime contrib operators, CPU kernel) computes the same attention; when
it gets no key padding mask it runs MLAS flash attention, whose buffers are a few
blocks per thread whatever the sequence length (onnxruntime
`contrib_ops/cpu/bert/multihead_attention.cc`).

So each attention node is written twice, inside an `If` node. All the `If` nodes read
one padding test, computed once for the batch:

- no padding in the batch (every attention mask value is 1): the branch whose
  attention node gets no mask, and ONNX Runtime uses flash attention;
- padding: the branch that passes the key padding mask, computed without flash
  attention, with score matrices of batch × heads × sequence² floats.

A single text never has padding, so the engine bounds memory on long inputs by
running them alone.
"""

import copy

import onnx
import torch
from onnx import TensorProto, helper

MHA_OP = "MultiHeadAttention"
# Model metadata that records for the engine how the graph computes attention, so that it
# keeps padded batches small and lets unpadded ones use flash attention.
ATTENTION_METADATA_KEY = "bge_m3.attention"
ATTENTION_METADATA_VALUE = "multi_head_attention_split_on_padding"
MS_DOMAIN = "com.microsoft"
# Index of the key padding mask among the MultiHeadAttention inputs
# (query, key, value, bias, key_padding_mask).
MASK_INPUT = 4


class MultiHeadAttentionFunction(torch.autograd.Function):
    """Attention computed in PyTorch, exported as `com.microsoft.MultiHeadAttention`."""

    @staticmethod
    def forward(ctx, query, key, value, bias, key_padding_mask, num_heads):
        hidden = query.shape[-1]
        query = query + bias[:hidden]
        key = key + bias[hidden : 2 * hidden]
        value = value + bias[2 * hidden :]
        batch, sequence, _ = query.shape
        head_size = hidden // num_heads

        def heads(x):
            return x.view(batch, -1, num_heads, head_size).transpose(1, 2)

        mask = key_padding_mask[:, None, None, :].to(torch.bool)
        output = torch.nn.functional.scaled_dot_product_attention(
            heads(query), heads(key), heads(value), attn_mask=mask
        )
        return output.transpose(1, 2).reshape(batch, sequence, hidden)

    @staticmethod
    def symbolic(g, query, key, value, bias, key_padding_mask, num_heads):
        return g.op(
            f"{MS_DOMAIN}::{MHA_OP}",
            query,
            key,
            value,
            bias,
            key_padding_mask,
            num_heads_i=num_heads,
        )


class FusedSelfAttention(torch.nn.Module):
    """Replaces `XLMRobertaSelfAttention` for export; same weights, same output."""

    def __init__(self, original, mask_holder):
        super().__init__()
        self.query = original.query
        self.key = original.key
        self.value = original.value
        self.num_heads = original.num_attention_heads
        self.mask_holder = mask_holder

    def forward(self, hidden_states, *args, **kwargs):
        weights = (self.query, self.key, self.value)
        projected = [torch.nn.functional.linear(hidden_states, layer.weight) for layer in weights]
        bias = torch.cat([layer.bias for layer in weights])
        context = MultiHeadAttentionFunction.apply(
            *projected, bias, self.mask_holder.key_padding_mask, self.num_heads
        )
        return context, None


class MaskHolder:
    """The int32 key padding mask of the current batch, shared by every layer."""

    key_padding_mask = None


def fuse_attention(xlm_roberta_model) -> MaskHolder:
    """Swap every self-attention module of the model for `FusedSelfAttention`."""
    holder = MaskHolder()
    for layer in xlm_roberta_model.encoder.layer:
        layer.attention.self = FusedSelfAttention(layer.attention.self, holder)
    return holder


def _attention_branch(node: onnx.NodeProto, prefix: str, keep_mask: bool) -> onnx.GraphProto:
    """Return an If branch that contains a copy of the attention node, with or without its mask.

    The branch reads the node's inputs from the outer graph and renames only its output.
    """
    inner = copy.deepcopy(node)
    inner.name = f"{prefix}{node.name}"
    inner.output[:] = [f"{prefix}{node.output[0]}"]
    if not keep_mask:
        del inner.input[MASK_INPUT:]
    output = helper.make_tensor_value_info(inner.output[0], TensorProto.FLOAT, None)
    return helper.make_graph([inner], f"{prefix}{node.name}", [], [output])


def _attention_split(node: onnx.NodeProto) -> onnx.NodeProto:
    """Return an If node that runs the attention node without its mask when there is no padding."""
    return helper.make_node(
        "If",
        ["has_no_padding"],
        list(node.output),
        then_branch=_attention_branch(node, "no_padding/", keep_mask=False),
        else_branch=_attention_branch(node, "padding/", keep_mask=True),
        name=f"{node.name}/padding_split",
    )


def split_on_padding(model: onnx.ModelProto) -> onnx.ModelProto:
    """Put each attention node in an `If` that drops the mask when there is no padding.

    Only the attention nodes go into the branches. The projections and their weights
    stay in the main graph, where ONNX Runtime prepacks each weight and releases the
    mapped external data as it goes. Weights read from inside If branches stayed mapped
    until the whole session was built, 1.2 GB of extra resident memory on BGE-M3
    (onnxruntime 1.32.0).
    """
    graph = model.graph
    condition_nodes = [
        helper.make_node("ReduceMin", ["attention_mask"], ["mask_min"], keepdims=0),
        helper.make_node("Cast", ["mask_min"], ["mask_min_float"], to=TensorProto.FLOAT),
        helper.make_node("Constant", [], ["one"], value=helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])),
        helper.make_node("Equal", ["mask_min_float", "one"], ["has_no_padding"]),
    ]
    nodes = []
    for node in graph.node:
        if node.op_type == MHA_OP and node.domain == MS_DOMAIN:
            nodes.append(_attention_split(node))
        else:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(condition_nodes + nodes)
    helper.set_model_props(model, {ATTENTION_METADATA_KEY: ATTENTION_METADATA_VALUE})
    return model
