/*
 * fakecuda: a test-only stand-in for the CUDA driver library (libcuda.so.1).
 *
 * efa-doctor's registration probe loads libcuda.so.1 through the dynamic loader; tests put
 * this library first on LD_LIBRARY_PATH so the probe's real code path (context, allocation,
 * dma-buf export, then real libfabric registrations) runs on machines without a GPU. Device
 * memory is page-aligned host memory; the dma-buf fd is a memfd of the same size.
 *
 * Build: cc -shared -fPIC -Wall -Wextra -Werror -o libcuda.so.1 fakecuda.c
 *
 * Environment (read at every call):
 *   FAKECUDA_INIT_RET=N         cuInit returns N (e.g. 100, CUDA_ERROR_NO_DEVICE).
 *   FAKECUDA_DEVICES=N          cuDeviceGetCount reports N (default 1).
 *   FAKECUDA_ALLOC_RET=N        cuMemAlloc_v2 returns N (e.g. 2, out of memory).
 *   FAKECUDA_DMABUF_PCIE_RET=N  cuMemGetHandleForAddressRange with the PCIe flag returns N
 *                               (default 801, as an H100 with the 580 open driver does).
 *   FAKECUDA_DMABUF_RET=N       ... without flags returns N (default 0).
 *   FAKECUDA_DMABUF_SUPPORTED=N attribute 124 (default 1).
 *   FAKECUDA_HANG=cuInit        sleep forever in that call (deadline tests).
 *   FAKECUDA_TRACE=PATH         append one line per call that allocates or frees.
 */

#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

typedef int CUresult;
typedef int CUdevice;
typedef void *CUcontext;
typedef unsigned long long CUdeviceptr;

static int env_int(const char *name, int dflt)
{
	const char *v = getenv(name);
	if (!v || !*v)
		return dflt;
	return atoi(v);
}

static void hang_if(const char *call)
{
	const char *v = getenv("FAKECUDA_HANG");
	if (v && strcmp(v, call) == 0)
		for (;;)
			pause();
}

static void trace(const char *fmt, unsigned long long a)
{
	const char *path = getenv("FAKECUDA_TRACE");
	FILE *f;
	if (!path)
		return;
	f = fopen(path, "a");
	if (!f)
		return;
	fprintf(f, fmt, a);
	fputc('\n', f);
	fclose(f);
}

static int retained;

CUresult cuInit(unsigned int flags)
{
	(void) flags;
	hang_if("cuInit");
	return env_int("FAKECUDA_INIT_RET", 0);
}

CUresult cuDeviceGetCount(int *count)
{
	*count = env_int("FAKECUDA_DEVICES", 1);
	return 0;
}

CUresult cuDeviceGet(CUdevice *dev, int ordinal)
{
	if (ordinal < 0 || ordinal >= env_int("FAKECUDA_DEVICES", 1))
		return 101; /* CUDA_ERROR_INVALID_DEVICE */
	*dev = ordinal;
	return 0;
}

CUresult cuDeviceGetName(char *name, int len, CUdevice dev)
{
	snprintf(name, (size_t) len, "Fake GPU %d", dev);
	return 0;
}

CUresult cuDeviceGetPCIBusId(char *id, int len, CUdevice dev)
{
	snprintf(id, (size_t) len, "00000000:%02X:00.0", 0x53 + dev);
	return 0;
}

CUresult cuDeviceGetAttribute(int *v, int attr, CUdevice dev)
{
	(void) dev;
	*v = attr == 124 ? env_int("FAKECUDA_DMABUF_SUPPORTED", 1) : 1;
	return 0;
}

CUresult cuDevicePrimaryCtxRetain(CUcontext *ctx, CUdevice dev)
{
	retained++;
	trace("retain %llu", (unsigned long long) dev);
	*ctx = (CUcontext) (long) (dev + 1);
	return 0;
}

CUresult cuDevicePrimaryCtxRelease_v2(CUdevice dev)
{
	retained--;
	trace("release %llu", (unsigned long long) dev);
	return 0;
}

CUresult cuCtxSetCurrent(CUcontext ctx)
{
	(void) ctx;
	return 0;
}

CUresult cuMemAlloc_v2(CUdeviceptr *ptr, size_t size)
{
	void *p = NULL;
	int ret = env_int("FAKECUDA_ALLOC_RET", 0);
	if (ret)
		return ret;
	if (posix_memalign(&p, 2 << 20, size))
		return 2; /* CUDA_ERROR_OUT_OF_MEMORY */
	memset(p, 0, size);
	*ptr = (CUdeviceptr) (unsigned long) p;
	trace("alloc %llu", (unsigned long long) size);
	return 0;
}

CUresult cuMemFree_v2(CUdeviceptr ptr)
{
	free((void *) (unsigned long) ptr);
	trace("free %llu", 0);
	return 0;
}

CUresult cuPointerGetAttribute(void *data, int attr, CUdeviceptr ptr)
{
	(void) ptr;
	if (attr != 2)
		return 1;
	*(unsigned int *) data = 2; /* CU_MEMORYTYPE_DEVICE */
	return 0;
}

CUresult cuMemGetHandleForAddressRange(void *handle, CUdeviceptr ptr, size_t size, int type,
				       unsigned long long flags)
{
	int ret, fd;
	(void) ptr;
	if (type != 1)
		return 1;
	ret = flags ? env_int("FAKECUDA_DMABUF_PCIE_RET", 801) : env_int("FAKECUDA_DMABUF_RET", 0);
	if (ret)
		return ret;
	fd = memfd_create("fake-dmabuf", MFD_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t) size))
		return 999;
	*(int *) handle = fd;
	trace("dmabuf %llu", (unsigned long long) fd);
	return 0;
}

CUresult cuGetErrorName(CUresult err, const char **name)
{
	switch (err) {
	case 1: *name = "CUDA_ERROR_INVALID_VALUE"; break;
	case 2: *name = "CUDA_ERROR_OUT_OF_MEMORY"; break;
	case 100: *name = "CUDA_ERROR_NO_DEVICE"; break;
	case 101: *name = "CUDA_ERROR_INVALID_DEVICE"; break;
	case 801: *name = "CUDA_ERROR_NOT_SUPPORTED"; break;
	default: *name = "CUDA_ERROR_UNKNOWN"; break;
	}
	return 0;
}
