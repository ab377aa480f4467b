"""Write small `.pt` files for the tests of the engine's state dict reader.

Every readable file stores `weight` = arange(6).reshape(2, 3) / 4 - 0.5 and
`bias` = [0.25, -1.5], which are exact in float16, bfloat16 and float32:

- `float16.pt`, `bfloat16.pt`, `float32.pt`: `torch.save` of a state dict;
- `float32-protocol4.pt`: the same with pickle protocol 4 (SHORT_BINUNICODE,
  MEMOIZE, FRAME);
- `float32-transposed.pt`: `weight` saved as the transpose of a [3, 2] tensor, a
  strided view (stride (1, 2));

and the files the reader must reject:

- `float64.pt`: a float64 tensor;
- `with-numpy-value.pt`: a numpy integer beside the tensors;
- `legacy-format.pt`: the pre-1.6 format, which is not a zip archive (its storage keys
  are memory addresses, so this file changes on every run);
- `no-pickle.pt`: a zip archive without `data.pkl`;
- `missing-storage.pt`: `float32.pt` without the storage entry of `bias`.

Usage: python python/make_state_dict_fixtures.py [--output tests/fixtures]
"""

import argparse
import collections
import pathlib
import zipfile

import numpy as np
import torch

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent


def state(dtype: torch.dtype) -> collections.OrderedDict:
    weight = torch.arange(6, dtype=torch.float64).reshape(2, 3) / 4 - 0.5
    bias = torch.tensor([0.25, -1.5], dtype=torch.float64)
    return collections.OrderedDict(weight=weight.to(dtype), bias=bias.to(dtype))


def rewrite_without(source: pathlib.Path, target: pathlib.Path, suffix: str) -> None:
    """Copy a zip archive, leaving out the entry whose name ends with `suffix`."""
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(target, "w") as copy:
        for info in original.infolist():
            if not info.filename.endswith(suffix):
                copy.writestr(info, original.read(info.filename))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=pathlib.Path, default=REPO_ROOT / "tests" / "fixtures",
                        help="fixtures folder, whose state dict fixtures are replaced (default: tests/fixtures)")
    folder = parser.parse_args().output / "state-dicts"
    folder.mkdir(parents=True, exist_ok=True)

    torch.save(state(torch.float16), folder / "float16.pt")
    torch.save(state(torch.bfloat16), folder / "bfloat16.pt")
    torch.save(state(torch.float32), folder / "float32.pt")
    torch.save(state(torch.float32), folder / "float32-protocol4.pt", pickle_protocol=4)

    transposed = state(torch.float32)
    transposed["weight"] = transposed["weight"].T.contiguous().T
    assert transposed["weight"].stride() == (1, 2)
    torch.save(transposed, folder / "float32-transposed.pt")

    torch.save(state(torch.float64), folder / "float64.pt")
    with_numpy = state(torch.float32)
    with_numpy["step"] = np.int64(3)
    torch.save(with_numpy, folder / "with-numpy-value.pt")
    torch.save(state(torch.float32), folder / "legacy-format.pt", _use_new_zipfile_serialization=False)
    with zipfile.ZipFile(folder / "no-pickle.pt", "w") as archive:
        entry = zipfile.ZipInfo("no-pickle/readme.txt", date_time=(1980, 1, 1, 0, 0, 0))
        archive.writestr(entry, "an archive without data.pkl\n")
    rewrite_without(folder / "float32.pt", folder / "missing-storage.pt", "/data/1")


if __name__ == "__main__":
    main()
