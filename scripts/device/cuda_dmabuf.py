"""Asks the CUDA driver (through ctypes, as efa-doctor's probe does) whether device memory
can be exported as a dma-buf: the attribute, then cuMemGetHandleForAddressRange with the
PCIe mapping flag and without it. Prints one line per step."""

import ctypes
import os

cuda = ctypes.CDLL("libcuda.so.1")
CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED = 124
CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_SUPPORTED = 116
CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD = 1
CU_MEM_RANGE_FLAG_DMA_BUF_MAPPING_TYPE_PCIE = 1


def call(name, *args):
    rc = getattr(cuda, name)(*args)
    msg = ctypes.c_char_p()
    cuda.cuGetErrorName(rc, ctypes.byref(msg))
    print(f"{name}: {rc} {msg.value.decode() if msg.value else ''}")
    return rc


call("cuInit", 0)
dev = ctypes.c_int()
call("cuDeviceGet", ctypes.byref(dev), 0)
for attr, label in [(CU_DEVICE_ATTRIBUTE_DMA_BUF_SUPPORTED, "DMA_BUF_SUPPORTED"), (CU_DEVICE_ATTRIBUTE_GPU_DIRECT_RDMA_SUPPORTED, "GPU_DIRECT_RDMA_SUPPORTED")]:
    v = ctypes.c_int(-1)
    call("cuDeviceGetAttribute", ctypes.byref(v), attr, dev)
    print(f"  {label} = {v.value}")
ctx = ctypes.c_void_p()
call("cuDevicePrimaryCtxRetain", ctypes.byref(ctx), dev)
call("cuCtxSetCurrent", ctx)
ptr = ctypes.c_uint64()
size = 2 << 20
call("cuMemAlloc_v2", ctypes.byref(ptr), ctypes.c_size_t(size))
print(f"  device pointer 0x{ptr.value:x}")
for flags in (CU_MEM_RANGE_FLAG_DMA_BUF_MAPPING_TYPE_PCIE, 0):
    fd = ctypes.c_int(-1)
    rc = call("cuMemGetHandleForAddressRange", ctypes.byref(fd), ctypes.c_uint64(ptr.value), ctypes.c_size_t(size), CU_MEM_RANGE_HANDLE_TYPE_DMA_BUF_FD, ctypes.c_ulonglong(flags))
    print(f"  flags={flags} fd={fd.value}")
    if rc == 0 and fd.value >= 0:
        print("  fd link:", os.readlink(f"/proc/self/fd/{fd.value}"))
        os.close(fd.value)
with open("/proc/self/maps") as m:
    for line in m:
        start, end = (int(x, 16) for x in line.split()[0].split("-"))
        if start <= ptr.value < end:
            print("  maps:", line.strip())
call("cuMemFree_v2", ctypes.c_uint64(ptr.value))
