#!/usr/bin/env python3
"""Print each worker image's size: uncompressed (as the engine stores it) and as compressed
layers (each layer gzip-compressed, as a registry such as ECR stores and Fargate pulls it).

    scripts/containers/image_sizes.py [--engine podman] IMAGE...

The compressed figure is computed here from ``<engine> save`` (gzip level 6 per layer), so it
needs no registry; ECR's ``imageSizeInBytes`` is the same sum of compressed layers.
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path


class _Counter:
    def __init__(self) -> None:
        self.n = 0

    def write(self, data: bytes) -> int:
        self.n += len(data)
        return len(data)

    def flush(self) -> None:
        pass


def compressed_layers(archive: Path) -> list[tuple[int, int]]:
    """(uncompressed, gzip-compressed) bytes of every layer of a docker-archive tar."""
    sizes = []
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        for layer in manifest[0]["Layers"]:
            counter = _Counter()
            raw = 0
            with tar.extractfile(layer) as src, gzip.GzipFile(fileobj=counter, mode="wb", compresslevel=6) as gz:
                while chunk := src.read(1 << 20):
                    raw += len(chunk)
                    gz.write(chunk)
            sizes.append((raw, counter.n))
    return sizes


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="docker")
    parser.add_argument("images", nargs="+")
    args = parser.parse_args()
    if not shutil.which(args.engine):
        print(f"image_sizes.py: {args.engine} not found", file=sys.stderr)
        return 1
    for image in args.images:
        with tempfile.TemporaryDirectory(prefix="image-sizes-") as tmp:
            archive = Path(tmp) / "image.tar"
            proc = subprocess.run([args.engine, "save", "--format", "docker-archive", "-o", str(archive), image]
                                  if "podman" in Path(args.engine).name else
                                  [args.engine, "save", "-o", str(archive), image], capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"image_sizes.py: cannot save {image}: {proc.stderr.strip()}", file=sys.stderr)
                return 1
            layers = compressed_layers(archive)
        raw, packed = sum(r for r, _ in layers), sum(c for _, c in layers)
        print(f"{image}: {_mb(raw)} uncompressed, {_mb(packed)} as {len(layers)} compressed layers "
              f"(largest {_mb(max(c for _, c in layers))})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
