"""Two NIXL agents in one process move a CUDA tensor and a pinned host buffer.

Usage: nixl_transfer.py BACKEND READY_FILE RELEASE_FILE

Writes READY_FILE (JSON: pid, backend, the registered buffers' addresses, sizes and kinds, the
transfer results) once the transfers are done, then waits until RELEASE_FILE exists so that
efa-doctor can inspect the live process. Used by scripts/device/capture.sh.
"""

import faulthandler
import json
import os
import sys
import time

# A hang inside a backend's initialisation shows where it is stuck.
faulthandler.dump_traceback_later(45, exit=True)

import torch

from nixl_cu13._api import nixl_agent, nixl_agent_config

backend, ready_file, release_file = sys.argv[1], sys.argv[2], sys.argv[3]
ELEMENTS = 16 << 20  # 64 MiB of float32: KV-cache sized

result = {"pid": os.getpid(), "backend": backend, "buffers": [], "transfers": [], "errors": []}


def buffer(name, t):
    result["buffers"].append(
        {"name": name, "address": hex(t.data_ptr()), "size": t.numel() * t.element_size(), "kind": "cuda" if t.is_cuda else "pinned-host"}
    )


def move(src_agent, dst_agent, src, dst, label):
    local = src_agent.get_xfer_descs(src)
    remote = dst_agent.get_xfer_descs(dst)
    handle = src_agent.initialize_xfer("WRITE", local, remote, dst_agent.name, b"done")
    state = src_agent.transfer(handle)
    deadline = time.time() + 60
    while state == "PROC" and time.time() < deadline:
        state = src_agent.check_xfer_state(handle)
    torch.cuda.synchronize()
    result["transfers"].append({"label": label, "state": state, "equal": bool(torch.equal(src.cpu(), dst.cpu()))})


try:
    config = nixl_agent_config(backends=[backend], capture_telemetry=True)
    prefill = nixl_agent("prefill", config)
    decode = nixl_agent("decode", config)
    result["plugins"] = list(prefill.plugin_list)
    result["backends_created"] = list(prefill.backends.keys())
    src = torch.arange(ELEMENTS, dtype=torch.float32, device="cuda")
    dst = torch.zeros(ELEMENTS, dtype=torch.float32, device="cuda")
    host_src = torch.arange(ELEMENTS, dtype=torch.float32).pin_memory()
    host_dst = torch.zeros(ELEMENTS, dtype=torch.float32).pin_memory()
    for name, t in [("prefill.cuda", src), ("decode.cuda", dst), ("prefill.host", host_src), ("decode.host", host_dst)]:
        buffer(name, t)
    prefill.register_memory(src)
    prefill.register_memory(host_src)
    decode.register_memory(dst)
    decode.register_memory(host_dst)
    prefill.add_remote_agent(decode.get_agent_metadata())
    move(prefill, decode, src, dst, "cuda->cuda")
    move(prefill, decode, host_src, host_dst, "host->host")
except Exception as e:  # recorded, not fatal: the process must stay up to be inspected
    result["errors"].append(f"{type(e).__name__}: {e}")

faulthandler.cancel_dump_traceback_later()
with open(ready_file + ".tmp", "w") as f:
    json.dump(result, f, indent=1)
os.rename(ready_file + ".tmp", ready_file)
print(json.dumps(result), flush=True)
deadline = time.time() + 120
while not os.path.exists(release_file) and time.time() < deadline:
    time.sleep(0.2)
# Skip interpreter teardown: agent destructors with exporter threads can block at exit.
os._exit(0)
