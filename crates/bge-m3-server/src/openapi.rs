//! The OpenAPI 3.1 document of the server, served at `GET /openapi.json`.
//!
//! Written by hand, so the server needs no code generator; the route tests check
//! that it lists every route of the router.

use serde_json::{json, Value};

/// Returns the OpenAPI document.
pub fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "bge-m3 server",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "BGE-M3 embeddings (dense, sparse and ColBERT) on ONNX Runtime. \
                Every route but /health requires `Authorization: Bearer <key>` when the \
                server runs with --api-key."
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": schemas(),
        },
        "security": [{ "bearer": [] }],
        "paths": paths(),
    })
}

fn paths() -> Value {
    json!({
        "/v1/embeddings": {
            "post": operation(
                "OpenAI embeddings API: dense vectors",
                "EmbeddingsRequest",
                "EmbeddingsResponse",
            )
        },
        "/embed": {
            "post": tei_operation(
                "text-embeddings-inference: dense vectors",
                "TeiEmbedResponse",
            )
        },
        "/embed_sparse": {
            "post": tei_operation(
                "text-embeddings-inference: sparse weights, token ids ascending",
                "TeiEmbedSparseResponse",
            )
        },
        "/v1/encode": {
            "post": operation(
                "Dense, sparse and ColBERT outputs from one forward pass",
                "EncodeRequest",
                "EncodeResponse",
            )
        },
        "/tokenize": {
            "post": operation(
                "Token ids and token texts of each input",
                "TokenizeRequest",
                "TokenizeResponse",
            )
        },
        "/health": {
            "get": {
                "summary": "200 while the server can embed, else 503; needs no API key",
                "security": [],
                "responses": {
                    "200": json_response("Healthy", json!({ "type": "object" })),
                    "503": error_response("The queue worker has stopped"),
                },
            }
        },
        "/info": {
            "get": {
                "summary": "Model name, dimensions, max input tokens and limits",
                "responses": { "200": json_response("Model information", json!({ "type": "object" })) },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics, all prefixed bge_m3_",
                "responses": {
                    "200": {
                        "description": "Prometheus text format 0.0.4",
                        "content": { "text/plain": { "schema": { "type": "string" } } },
                    }
                },
            }
        },
        "/openapi.json": {
            "get": {
                "summary": "This document",
                "responses": { "200": json_response("OpenAPI 3.1", json!({ "type": "object" })) },
            }
        },
    })
}

fn operation(summary: &str, request: &str, response: &str) -> Value {
    json!({
        "summary": summary,
        "requestBody": {
            "required": true,
            "content": { "application/json": { "schema": schema_ref(request) } },
        },
        "responses": {
            "200": json_response("Success", schema_ref(response)),
            "400": error_response("Malformed JSON, an invalid field or token ids as input"),
            "401": error_response("Missing or invalid API key"),
            "413": error_response("Body, input count or input tokens over a limit"),
            "429": error_response("The queue is full; retry after the Retry-After header"),
            "500": error_response("The model failed for these inputs"),
        },
    })
}

fn tei_operation(summary: &str, response: &str) -> Value {
    let mut operation = operation(summary, "TeiEmbedRequest", response);
    for status in ["400", "413", "429", "500"] {
        operation["responses"][status]["content"]["application/json"]["schema"] =
            schema_ref("TeiError");
    }
    operation
}

fn json_response(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn error_response(description: &str) -> Value {
    json_response(description, schema_ref("Error"))
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn schemas() -> Value {
    let floats = json!({ "type": "array", "items": { "type": "number" } });
    let vector = json!({
        "oneOf": [floats, { "type": "string", "description": "base64 of little-endian float32" }]
    });
    json!({
        "Input": {
            "description": "One text or an array of texts; token ids are rejected with 400",
            "oneOf": [
                { "type": "string" },
                { "type": "array", "items": { "type": "string" }, "minItems": 1 },
            ],
        },
        "EncodingFormat": { "type": "string", "enum": ["float", "base64"], "default": "float" },
        "Usage": {
            "type": "object",
            "properties": {
                "prompt_tokens": { "type": "integer" },
                "total_tokens": { "type": "integer" },
            },
        },
        "EmbeddingsRequest": {
            "type": "object",
            "required": ["input"],
            "properties": {
                "input": schema_ref("Input"),
                "model": { "type": "string", "description": "Echoed in the response" },
                "encoding_format": schema_ref("EncodingFormat"),
                "dimensions": {
                    "type": "integer",
                    "description": "Only the model's dense size is accepted",
                },
            },
        },
        "EmbeddingsResponse": {
            "type": "object",
            "properties": {
                "object": { "const": "list" },
                "data": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "object": { "const": "embedding" },
                            "embedding": vector,
                            "index": { "type": "integer" },
                        },
                    },
                },
                "model": { "type": "string" },
                "usage": schema_ref("Usage"),
            },
        },
        "TeiEmbedRequest": {
            "type": "object",
            "required": ["inputs"],
            "properties": {
                "inputs": schema_ref("Input"),
                "truncate": { "type": ["boolean", "null"], "default": false },
                "truncation_direction": { "type": "string", "enum": ["right"], "default": "right" },
                "prompt_name": { "type": "null", "description": "BGE-M3 defines no prompts" },
                "normalize": { "type": "boolean", "enum": [true], "default": true },
            },
        },
        "TeiEmbedResponse": { "type": "array", "items": floats },
        "TeiEmbedSparseResponse": {
            "type": "array",
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "index": { "type": "integer", "description": "Token id" },
                        "value": { "type": "number" },
                    },
                },
            },
        },
        "EncodeRequest": {
            "type": "object",
            "required": ["input"],
            "properties": {
                "input": schema_ref("Input"),
                "model": { "type": "string", "description": "Echoed in the response" },
                "outputs": {
                    "type": "array",
                    "items": { "type": "string", "enum": ["dense", "sparse", "colbert"] },
                    "default": ["dense", "sparse", "colbert"],
                },
                "truncate": { "type": "boolean", "description": "Default: --auto-truncate" },
                "sparse_format": { "type": "string", "enum": ["ids", "tokens"], "default": "ids" },
                "encoding_format": schema_ref("EncodingFormat"),
            },
        },
        "EncodeResponse": {
            "type": "object",
            "properties": {
                "model": { "type": "string" },
                "data": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "index": { "type": "integer" },
                            "dense": vector,
                            "sparse": {
                                "description": "ids: {indices, values}, ids ascending; \
                                    tokens: {token text: weight}",
                                "type": "object",
                            },
                            "colbert": { "type": "array", "items": vector },
                            "tokens": { "type": "integer" },
                            "truncated": { "type": "boolean" },
                        },
                    },
                },
                "usage": schema_ref("Usage"),
            },
        },
        "TokenizeRequest": {
            "type": "object",
            "description": "The texts go in input or in inputs, not both.",
            "properties": {
                "input": schema_ref("Input"),
                "inputs": schema_ref("Input"),
                "add_special_tokens": { "type": "boolean", "default": true },
                "truncate": { "type": "boolean", "default": true },
            },
        },
        "TokenizeResponse": {
            "type": "object",
            "properties": {
                "data": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "index": { "type": "integer" },
                            "ids": { "type": "array", "items": { "type": "integer" } },
                            "tokens": { "type": "array", "items": { "type": "string" } },
                            "truncated": { "type": "boolean" },
                        },
                    },
                },
            },
        },
        "Error": {
            "type": "object",
            "properties": {
                "error": {
                    "type": "object",
                    "properties": {
                        "message": { "type": "string" },
                        "type": { "type": "string" },
                        "param": { "type": "string", "description": "The field, when known" },
                    },
                },
            },
        },
        "TeiError": {
            "type": "object",
            "properties": {
                "error": { "type": "string" },
                "error_type": {
                    "type": "string",
                    "enum": ["Validation", "Overloaded", "Tokenizer", "Backend", "Unhealthy"],
                },
            },
        },
    })
}
