"""Export XLM-RoBERTa self-attention as ONNX Runtime's fused `MultiHeadAttention`.

The stock export writes attention as MatMul, Softmax and MatMul, and ONNX Runtime then
keeps every layer's full score matrix: batch × heads × sequence² floats, 4 GiB per
layer for one 8192-token text with 16 heads. The `com.microsoft.MultiHeadAttention`
operator (ONNX Runtime contrib operators, CPU kernel) computes the same attention; when
it gets no key padding mask it runs MLAS flash attention, whose buffers are a few
blocks per thread whatever the sequence length (onnxruntime
`contrib_ops/cpu/bert/multihead_attention.cc`).

So the graph is written twice inside one `If` node that shares the weights:

- no padding in the batch (every attention mask value is 1): the branch whose
  attention nodes get no mask, and ONNX Runtime uses flash attention;
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


def _rename_branch(graph: onnx.GraphProto, prefix: str) -> onnx.GraphProto:
    """Return a copy of `graph`'s nodes as an If branch, every produced name prefixed.

    Inputs and initializers keep their names: the branch reads them from the outer
    graph, so both branches share one copy of the weights.
    """
    produced = {output for node in graph.node for output in node.output if output}
    rename = {name: f"{prefix}{name}" for name in produced}
    branch = helper.make_graph([], f"{prefix}branch", [], [])
    for node in graph.node:
        node = copy.deepcopy(node)
        node.name = f"{prefix}{node.name}"
        node.input[:] = [rename.get(name, name) for name in node.input]
        node.output[:] = [rename.get(name, name) for name in node.output]
        branch.node.append(node)
    for output in graph.output:
        renamed = copy.deepcopy(output)
        renamed.name = rename[output.name]
        branch.output.append(renamed)
    return branch


def split_on_padding(model: onnx.ModelProto) -> onnx.ModelProto:
    """Wrap the graph in an `If` that drops the attention mask when there is no padding."""
    graph = model.graph
    no_padding = _rename_branch(graph, "no_padding/")
    for node in no_padding.node:
        if node.op_type == MHA_OP and node.domain == MS_DOMAIN:
            del node.input[MASK_INPUT:]
    padding = _rename_branch(graph, "padding/")

    condition_nodes = [
        helper.make_node("ReduceMin", ["attention_mask"], ["mask_min"], keepdims=0),
        helper.make_node("Cast", ["mask_min"], ["mask_min_float"], to=TensorProto.FLOAT),
        helper.make_node("Constant", [], ["one"], value=helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])),
        helper.make_node("Equal", ["mask_min_float", "one"], ["has_no_padding"]),
    ]
    branch_node = helper.make_node(
        "If",
        ["has_no_padding"],
        [output.name for output in graph.output],
        then_branch=no_padding,
        else_branch=padding,
        name="padding_split",
    )
    del graph.node[:]
    graph.node.extend(condition_nodes + [branch_node])
    del graph.value_info[:]
    helper.set_model_props(model, {ATTENTION_METADATA_KEY: ATTENTION_METADATA_VALUE})
    return model
