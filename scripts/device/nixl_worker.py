"""A NIXL KV-transfer worker for issue 15's real captures: two NIXL agents in one process
(prefill and decode) register buffers and WRITE between them, then the process stays up so
that efa-doctor can inspect it as a user would (`efa-doctor --pid PID`).

Usage: nixl_worker.py MODE MEMORY READY_FILE RELEASE_FILE [SECONDS]

MODE:
  mismatch   choose the backend as SGLang's NIXL connector does, from
             SGLANG_DISAGGREGATION_NIXL_BACKEND (default UCX), and, as a worker whose
             configured backend could not be created, fall back to NIXL's default (UCX).
             Run it with SGLANG_DISAGGREGATION_NIXL_BACKEND=LIBFABRIC where the LIBFABRIC
             plugin cannot load or cannot initialise: the configuration does not take
             effect and UCX moves the data.
  hostonly   UCX, chosen explicitly, with every registered buffer in host memory.
MEMORY: cuda (torch CUDA tensors; pinned host for hostonly) or host (numpy, for machines
without a GPU; page-aligned anonymous memory).

Writes READY_FILE (JSON: pid, backends asked for and created, buffers, transfers, errors)
once the transfers are done, then waits until RELEASE_FILE exists or SECONDS pass.
"""

import faulthandler
import json
import mmap
import os
import sys
import time

faulthandler.dump_traceback_later(90, exit=True)

mode, memory, ready_file, release_file = sys.argv[1:5]
hold = float(sys.argv[5]) if len(sys.argv) > 5 else 300.0
BYTES = 32 << 20  # below the 64 MiB "KV-sized" bar on purpose: host-only is a finding anyway

try:
    from nixl._api import nixl_agent, nixl_agent_config  # the meta package picks cu12/cu13
except Exception:  # no meta package, or it needs torch to choose: take what is installed
    try:
        from nixl_cu13._api import nixl_agent, nixl_agent_config
    except Exception:
        from nixl_cu12._api import nixl_agent, nixl_agent_config

result = {"pid": os.getpid(), "mode": mode, "memory": memory, "buffers": [], "transfers": [], "errors": []}

if mode == "mismatch":
    configured = os.environ.get("SGLANG_DISAGGREGATION_NIXL_BACKEND", "UCX")
else:
    configured = "UCX"
result["configured"] = configured


def make_agents(backends):
    config = nixl_agent_config(backends=backends)
    a, b = nixl_agent("prefill", config), nixl_agent("decode", config)
    return a, b


try:
    prefill, decode = make_agents([configured])
    created = bool(prefill.backends)
except Exception as e:  # the plugin did not load, or createBackend failed
    result["errors"].append(f"creating backend {configured}: {type(e).__name__}: {e}")
    created = False
if not created:
    result["fell_back_to"] = "UCX"
    prefill, decode = make_agents(["UCX"])
result["backends_created"] = list(prefill.backends.keys())


def buffers():
    """(src, dst, kind, nixl mem type, keepalive) pairs to register and move."""
    if memory == "cuda":
        import torch

        n = BYTES // 4
        if mode == "hostonly":
            s = torch.arange(n, dtype=torch.float32).pin_memory()
            d = torch.zeros(n, dtype=torch.float32).pin_memory()
            return [(s, d, "pinned-host")]
        s = torch.arange(n, dtype=torch.float32, device="cuda")
        d = torch.zeros(n, dtype=torch.float32, device="cuda")
        return [(s, d, "cuda")]
    # Anonymous, page-aligned host memory, as a KV pool in host memory would be.
    s, d = mmap.mmap(-1, BYTES), mmap.mmap(-1, BYTES)
    s.write(bytes(range(256)) * (BYTES // 256))
    return [(s, d, "host")]


def addr(x):
    if hasattr(x, "data_ptr"):
        return x.data_ptr()
    import ctypes

    return ctypes.addressof(ctypes.c_char.from_buffer(x))


def descs(agent, x, kind):
    if hasattr(x, "data_ptr"):
        return agent.get_xfer_descs(x), agent.register_memory(x)
    reg = agent.register_memory([(addr(x), BYTES, 0, "")], "DRAM")
    return agent.get_xfer_descs([(addr(x), BYTES, 0)], "DRAM"), reg


try:
    pairs = buffers()
    for src, dst, kind in pairs:
        for name, x in (("prefill", src), ("decode", dst)):
            result["buffers"].append({"name": f"{name}.{kind}", "address": hex(addr(x)), "size": BYTES, "kind": kind})
        local, _ = descs(prefill, src, kind)
        remote, _ = descs(decode, dst, kind)
        prefill.add_remote_agent(decode.get_agent_metadata())
        handle = prefill.initialize_xfer("WRITE", local, remote, "decode", b"done")
        state = prefill.transfer(handle)
        deadline = time.time() + 60
        while state == "PROC" and time.time() < deadline:
            state = prefill.check_xfer_state(handle)
        if memory == "cuda":
            import torch

            torch.cuda.synchronize()
            equal = bool(torch.equal(src.cpu(), dst.cpu()))
        else:
            equal = src[:] == dst[:]
        result["transfers"].append({"kind": kind, "state": state, "equal": equal})
except Exception as e:  # recorded: the process must stay up to be inspected
    result["errors"].append(f"{type(e).__name__}: {e}")

faulthandler.cancel_dump_traceback_later()
with open(ready_file + ".tmp", "w") as f:
    json.dump(result, f, indent=1)
os.rename(ready_file + ".tmp", ready_file)
print(json.dumps(result), flush=True)
deadline = time.time() + hold
while not os.path.exists(release_file) and time.time() < deadline:
    time.sleep(0.2)
# Skip interpreter teardown: agent destructors with progress threads can block at exit.
os._exit(0)
