#!/usr/bin/env python3
"""oci-unpack.py LAYOUT TAG DEST ARCH...: checks the multi-arch image TAG in the OCI image
layout LAYOUT (scripts/image) and unpacks each platform's root filesystem to DEST/ARCH.

Checked: TAG is an image index with exactly the platforms ARCH... (linux); each image's
config says that platform, runs efa-doctor, and carries the version label; each root has a
shell, `cp` and an efa-doctor binary built for that architecture."""
import gzip
import json
import pathlib
import subprocess
import sys

layout, tag, dest = pathlib.Path(sys.argv[1]), sys.argv[2], pathlib.Path(sys.argv[3])
want = sorted(sys.argv[4:])
ELF_MACHINE = {"amd64": 62, "arm64": 183}


def blob(digest):
    algo, hexd = digest.split(":", 1)
    return (layout / "blobs" / algo / hexd).read_bytes()


def fail(msg):
    sys.exit(f"oci-unpack: {tag}: {msg}")


index = json.loads((layout / "index.json").read_text())
refs = [m for m in index["manifests"]
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag]
if len(refs) != 1:
    fail(f"{len(refs)} entries in index.json")
top = json.loads(blob(refs[0]["digest"]))
if top.get("mediaType") != "application/vnd.oci.image.index.v1+json":
    fail(f"not a multi-arch image index: {top.get('mediaType')}")
platforms = sorted(m["platform"]["architecture"] for m in top["manifests"])
if platforms != want or any(m["platform"]["os"] != "linux" for m in top["manifests"]):
    fail(f"platforms {platforms}, expected {want}")

for entry in top["manifests"]:
    arch = entry["platform"]["architecture"]
    manifest = json.loads(blob(entry["digest"]))
    config = json.loads(blob(manifest["config"]["digest"]))
    if config["architecture"] != arch or config["os"] != "linux":
        fail(f"{arch}: config says {config['os']}/{config['architecture']}")
    if config["config"].get("Entrypoint") != ["/usr/local/bin/efa-doctor"]:
        fail(f"{arch}: entrypoint {config['config'].get('Entrypoint')}")
    labels = config["config"].get("Labels") or {}
    if not labels.get("org.opencontainers.image.version"):
        fail(f"{arch}: no version label")
    root = dest / arch
    root.mkdir(parents=True)
    for layer in manifest["layers"]:
        data = blob(layer["digest"])
        if layer["mediaType"].endswith("+gzip"):
            data = gzip.decompress(data)
        # The system tar keeps links, modes and owners as the image has them.
        subprocess.run(["tar", "-xf", "-", "-C", str(root)], input=data, check=True)
    for need in ["bin/sh", "bin/cp", "usr/local/bin/efa-doctor"]:
        if not (root / need).exists():
            fail(f"{arch}: no /{need}")
    head = (root / "usr/local/bin/efa-doctor").read_bytes()[:20]
    if head[:4] != b"\x7fELF" or int.from_bytes(head[18:20], "little") != ELF_MACHINE[arch]:
        fail(f"{arch}: efa-doctor is not an {arch} ELF binary")
    size = sum(layer["size"] for layer in manifest["layers"])
    print(f"oci-unpack: {tag} linux/{arch}: version {labels['org.opencontainers.image.version']}, "
          f"{len(manifest['layers'])} layers, {size} bytes compressed")
