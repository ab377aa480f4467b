"""Build bge-m3-lite's fused fp32 graph from a backbone-only export.

Runs `bge_m3_lite.fuse.fuse()` (bge-m3-lite 0.6.2): onnxruntime's BERT optimizer
fuses the 24 attention blocks, then attention runs over query chunks and the rest of
each layer over row windows. Writes `model_fused.onnx` and `model_fused.onnx_data`
(the merged QKV weights) beside the export; the other weights are read from the
export's `model.onnx_data` by offset. Runs in bench/.venv.

Usage: python bench/fuse_backbone.py BACKBONE_DIR/model.onnx
"""

import argparse
import pathlib

from bge_m3_lite.fuse import fuse


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("backbone", type=pathlib.Path, help="model.onnx of bench/export_backbone.py")
    args = parser.parse_args()
    result = fuse(args.backbone)
    print(f"fused graph: {result}")


if __name__ == "__main__":
    main()
