"""Gets embeddings from a local bge-m3 server with the official `openai` client.

Usage: openai_client.py BASE_URL API_KEY TEXTS_JSON. Prints one JSON object with
the vectors of each encoding format and the error of a token-id request.
"""

import base64
import json
import struct
import sys

import openai


def main() -> None:
    base_url, api_key, texts = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    client = openai.OpenAI(base_url=f"{base_url}/v1", api_key=api_key, max_retries=0)
    result = {"openai_version": openai.__version__}

    response = client.embeddings.create(model="bge-m3", input=texts, encoding_format="float")
    result["float"] = [item.embedding for item in response.data]
    result["model"] = response.model
    result["prompt_tokens"] = response.usage.prompt_tokens

    response = client.embeddings.create(model="bge-m3", input=texts, encoding_format="base64")
    result["base64"] = [decode(item.embedding) for item in response.data]

    # Without encoding_format the client asks for base64 and decodes it itself.
    response = client.embeddings.create(model="bge-m3", input=texts[0])
    result["default"] = [item.embedding for item in response.data]

    try:
        client.embeddings.create(model="bge-m3", input=[[1, 2, 3]])
        result["token_ids_error"] = None
    except openai.BadRequestError as error:
        result["token_ids_error"] = {"status": error.status_code, "message": str(error)}

    print(json.dumps(result))


def decode(text: str) -> list[float]:
    data = base64.b64decode(text)
    return list(struct.unpack(f"<{len(data) // 4}f", data))


if __name__ == "__main__":
    main()
