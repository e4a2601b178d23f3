/*
 * fakehmem: a test-only libfabric DL provider.
 *
 * The real libfabric loads it from $FI_PROVIDER_PATH (as libfakehmem-fi.so) and it answers
 * fi_getinfo with one EFA-like RDM entry, opens a fabric and a domain, and fails memory
 * registrations on demand, so efa-doctor's fi_mr_regattr probe can be tested through a real
 * libfabric instead of a mock of its own functions.
 *
 * Build: cc -shared -fPIC -Wall -Wextra -Werror -o libfakehmem-fi.so fakeprov.c -lfabric
 *
 * Environment (read at every call, so one process may change them between calls):
 *   FAKEPROV_NO_HMEM=1      do not advertise FI_HMEM; hints asking for FI_HMEM get
 *                           -FI_ENODATA.
 *   FAKEPROV_DMABUF_RET=N   return N from regattr when flags has FI_MR_DMABUF.
 *   FAKEPROV_CUDA_RET=N     return N from regattr for iface FI_HMEM_CUDA (without
 *                           FI_MR_DMABUF).
 *   FAKEPROV_HOST_RET=N     return N from regattr for iface FI_HMEM_SYSTEM.
 *                           N is a libfabric return code (0 or a negative errno, e.g. -14);
 *                           unset, empty or unparsable means 0. Other ifaces succeed.
 *   FAKEPROV_TRACE=PATH     append "iface=<n> flags=<hex> len=<n> ret=<n>" per regattr call.
 *   FAKEPROV_NO_P2P=1       mimic the efa provider without a peer-to-peer path to the GPU
 *                           (libfabric v2.6.0 prov/efa/src/rdm/efa_rdm_mr.c, efa_hmem.c,
 *                           efa_rdm_ep_fiops.c): fi_getinfo warns "Failed to register CUDA
 *                           buffer with the EFA device, ...", an FI_HMEM_CUDA registration
 *                           succeeds without the device and gets a key from 2^32 up
 *                           (NON_P2P_MR_KEYGEN_INIT), and an endpoint refuses
 *                           FI_OPT_CUDA_API_PERMITTED=false with -FI_EOPNOTSUPP.
 *
 * A failing regattr logs, at warn level on subsystem "mr", the EFA provider's message:
 *   Unable to register MR of <len> bytes: <fi_strerror(-ret)>
 */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>

#include <rdma/fabric.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#include <rdma/providers/fi_log.h>
#include <rdma/providers/fi_prov.h>

/* libfabric >= 1.20: the attr's first field is a union with a dma-buf descriptor. */
#ifndef FI_MR_DMABUF
#define FI_MR_DMABUF (1ULL << 40)
#endif

/* fi_endpoint.h since 1.18: FI_OPT_ENDPOINT option names. */
#ifndef FI_OPT_CUDA_API_PERMITTED
#define FI_OPT_CUDA_API_PERMITTED 10
#endif

/* Layout of struct fi_mr_dmabuf (libfabric >= 1.20), under our own name. */
struct fakeprov_dmabuf {
	int fd;
	uint64_t offset;
	size_t len;
	void *base_addr;
};

#define FAKEPROV_NAME "fakehmem"
#define FAKEPROV_FABRIC "fake"
#define FAKEPROV_DOMAIN "fake0-rdm"

static struct fi_provider fakeprov;

static int env_flag(const char *name)
{
	const char *v = getenv(name);

	return v && v[0] && strcmp(v, "0") != 0;
}

static int env_ret(const char *name)
{
	const char *v = getenv(name);
	char *end;
	long r;

	if (!v || !v[0])
		return 0;
	errno = 0;
	r = strtol(v, &end, 0);
	if (errno || *end || r < -0x7fffffffL || r > 0x7fffffffL)
		return 0;
	return (int) r;
}

static uint64_t fakeprov_caps(void)
{
	uint64_t caps = FI_MSG | FI_RMA | FI_LOCAL_COMM | FI_REMOTE_COMM;

	if (!env_flag("FAKEPROV_NO_HMEM"))
		caps |= FI_HMEM;
	return caps;
}

/* ---- generic fid ops ---- */

static int fake_no_bind(struct fid *fid, struct fid *bfid, uint64_t flags)
{
	(void) fid;
	(void) bfid;
	(void) flags;
	return -FI_ENOSYS;
}

static int fake_no_control(struct fid *fid, int command, void *arg)
{
	(void) fid;
	(void) command;
	(void) arg;
	return -FI_ENOSYS;
}

static int fake_no_ops_open(struct fid *fid, const char *name, uint64_t flags, void **ops,
			    void *context)
{
	(void) fid;
	(void) name;
	(void) flags;
	(void) ops;
	(void) context;
	return -FI_ENOSYS;
}

/* Every fid we hand out is the first member of one malloc'd block. */
static int fake_close(struct fid *fid)
{
	free(fid);
	return 0;
}

static struct fi_ops fake_fid_ops = {
	.size = sizeof(struct fi_ops),
	.close = fake_close,
	.bind = fake_no_bind,
	.control = fake_no_control,
	.ops_open = fake_no_ops_open,
};

/* ---- memory registration ---- */

static void trace(enum fi_hmem_iface iface, uint64_t flags, size_t len, int ret)
{
	const char *path = getenv("FAKEPROV_TRACE");
	FILE *f;

	if (!path || !path[0])
		return;
	f = fopen(path, "a");
	if (!f)
		return;
	fprintf(f, "iface=%d flags=0x%llx len=%zu ret=%d\n", (int) iface,
		(unsigned long long) flags, len, ret);
	fclose(f);
}

static int fake_mr_regattr(struct fid *fid, const struct fi_mr_attr *attr, uint64_t flags,
			   struct fid_mr **mr_out)
{
	static uint64_t next_key = 1;
	struct fid_mr *mr;
	size_t len = 0, i;
	int ret;

	(void) fid;
	if (!attr || !mr_out)
		return -FI_EINVAL;

	if (flags & FI_MR_DMABUF) {
		const struct fakeprov_dmabuf *d = (const void *) attr->mr_iov;

		len = d ? d->len : 0;
		ret = env_ret("FAKEPROV_DMABUF_RET");
	} else {
		for (i = 0; attr->mr_iov && i < attr->iov_count; i++)
			len += attr->mr_iov[i].iov_len;
		if (attr->iface == FI_HMEM_CUDA)
			ret = env_ret("FAKEPROV_CUDA_RET");
		else if (attr->iface == FI_HMEM_SYSTEM)
			ret = env_ret("FAKEPROV_HOST_RET");
		else
			ret = 0;
	}

	trace(attr->iface, flags, len, ret);

	if (ret) {
		FI_WARN(&fakeprov, FI_LOG_MR, "Unable to register MR of %zu bytes: %s\n", len,
			fi_strerror(ret < 0 ? -ret : ret));
		return ret;
	}

	mr = calloc(1, sizeof(*mr));
	if (!mr)
		return -FI_ENOMEM;
	mr->fid.fclass = FI_CLASS_MR;
	mr->fid.context = attr->context;
	mr->fid.ops = &fake_fid_ops;
	mr->mem_desc = mr;
	mr->key = __atomic_fetch_add(&next_key, 1, __ATOMIC_RELAXED) & 0xffff; /* mr_key_size 2 */
	/* No P2P: the device never saw the CUDA buffer; the key is made up. */
	if (env_flag("FAKEPROV_NO_P2P") && attr->iface == FI_HMEM_CUDA && !(flags & FI_MR_DMABUF))
		mr->key += 1ULL << 32;
	*mr_out = mr;
	return 0;
}

static int fake_mr_reg(struct fid *fid, const void *buf, size_t len, uint64_t access,
		       uint64_t offset, uint64_t requested_key, uint64_t flags,
		       struct fid_mr **mr, void *context)
{
	(void) fid;
	(void) buf;
	(void) len;
	(void) access;
	(void) offset;
	(void) requested_key;
	(void) flags;
	(void) mr;
	(void) context;
	return -FI_ENOSYS;
}

static int fake_mr_regv(struct fid *fid, const struct iovec *iov, size_t count,
			uint64_t access, uint64_t offset, uint64_t requested_key,
			uint64_t flags, struct fid_mr **mr, void *context)
{
	(void) fid;
	(void) iov;
	(void) count;
	(void) access;
	(void) offset;
	(void) requested_key;
	(void) flags;
	(void) mr;
	(void) context;
	return -FI_ENOSYS;
}

static struct fi_ops_mr fake_mr_ops = {
	.size = sizeof(struct fi_ops_mr),
	.reg = fake_mr_reg,
	.regv = fake_mr_regv,
	.regattr = fake_mr_regattr,
};

/* ---- endpoint: only fi_setopt, for FI_OPT_CUDA_API_PERMITTED ---- */

static int fake_ep_setopt(fid_t fid, int level, int optname, const void *optval, size_t optlen)
{
	(void) fid;
	if (level != FI_OPT_ENDPOINT || optname != FI_OPT_CUDA_API_PERMITTED)
		return -FI_ENOPROTOOPT;
	if (!optval || optlen != sizeof(bool))
		return -FI_EINVAL;
	/* Without P2P, CUDA memory can be moved only by CUDA copies. */
	if (!*(const bool *) optval && env_flag("FAKEPROV_NO_P2P"))
		return -FI_EOPNOTSUPP;
	return 0;
}

/* The probe calls only setopt; the others stay NULL. */
static struct fi_ops_ep fake_ep_ops = {
	.size = sizeof(struct fi_ops_ep),
	.setopt = fake_ep_setopt,
};

static int fake_endpoint(struct fid_domain *domain, struct fi_info *info, struct fid_ep **ep_out,
			 void *context)
{
	struct fid_ep *ep;

	(void) domain;
	(void) info;
	if (!ep_out)
		return -FI_EINVAL;
	ep = calloc(1, sizeof(*ep));
	if (!ep)
		return -FI_ENOMEM;
	ep->fid.fclass = FI_CLASS_EP;
	ep->fid.context = context;
	ep->fid.ops = &fake_fid_ops;
	ep->ops = &fake_ep_ops;
	*ep_out = ep;
	return 0;
}

/* Other domain ops are never called by the probe: left NULL. */
static struct fi_ops_domain fake_domain_ops = {
	.size = sizeof(struct fi_ops_domain),
	.endpoint = fake_endpoint,
};

/* ---- fabric / domain ---- */

static int fake_domain(struct fid_fabric *fabric, struct fi_info *info,
		       struct fid_domain **dom_out, void *context)
{
	struct fid_domain *dom;

	(void) fabric;
	if (!dom_out)
		return -FI_EINVAL;
	if (info && info->domain_attr && info->domain_attr->name &&
	    strcmp(info->domain_attr->name, FAKEPROV_DOMAIN) != 0)
		return -FI_EINVAL;

	dom = calloc(1, sizeof(*dom));
	if (!dom)
		return -FI_ENOMEM;
	dom->fid.fclass = FI_CLASS_DOMAIN;
	dom->fid.context = context;
	dom->fid.ops = &fake_fid_ops;
	dom->ops = &fake_domain_ops;
	dom->mr = &fake_mr_ops;
	*dom_out = dom;
	return 0;
}

static int fake_no_passive_ep(struct fid_fabric *fabric, struct fi_info *info,
			      struct fid_pep **pep, void *context)
{
	(void) fabric;
	(void) info;
	(void) pep;
	(void) context;
	return -FI_ENOSYS;
}

static int fake_no_eq_open(struct fid_fabric *fabric, struct fi_eq_attr *attr,
			   struct fid_eq **eq, void *context)
{
	(void) fabric;
	(void) attr;
	(void) eq;
	(void) context;
	return -FI_ENOSYS;
}

static int fake_no_wait_open(struct fid_fabric *fabric, struct fi_wait_attr *attr,
			     struct fid_wait **waitset)
{
	(void) fabric;
	(void) attr;
	(void) waitset;
	return -FI_ENOSYS;
}

static int fake_no_trywait(struct fid_fabric *fabric, struct fid **fids, int count)
{
	(void) fabric;
	(void) fids;
	(void) count;
	return -FI_ENOSYS;
}

static struct fi_ops_fabric fake_fabric_ops = {
	.size = sizeof(struct fi_ops_fabric),
	.domain = fake_domain,
	.passive_ep = fake_no_passive_ep,
	.eq_open = fake_no_eq_open,
	.wait_open = fake_no_wait_open,
	.trywait = fake_no_trywait,
};

static int fake_fabric(struct fi_fabric_attr *attr, struct fid_fabric **fab_out,
		       void *context)
{
	struct fid_fabric *fab;

	if (!fab_out)
		return -FI_EINVAL;
	if (attr && attr->name && strcmp(attr->name, FAKEPROV_FABRIC) != 0)
		return -FI_ENODATA;

	fab = calloc(1, sizeof(*fab));
	if (!fab)
		return -FI_ENOMEM;
	fab->fid.fclass = FI_CLASS_FABRIC;
	fab->fid.context = context;
	fab->fid.ops = &fake_fid_ops;
	fab->ops = &fake_fabric_ops;
	/* The core overwrites this with the caller's version for providers >= 1.5. */
	fab->api_version = attr ? attr->api_version : fakeprov.fi_version;
	*fab_out = fab;
	return 0;
}

/* ---- getinfo ---- */

static int fake_getinfo(uint32_t version, const char *node, const char *service,
			uint64_t flags, const struct fi_info *hints, struct fi_info **info)
{
	struct fi_info *fi;
	uint64_t caps = fakeprov_caps();

	(void) node;
	(void) service;
	(void) flags;
	if (!info)
		return -FI_EINVAL;
	*info = NULL;
	if (env_flag("FAKEPROV_NO_P2P") && (caps & FI_HMEM))
		FI_WARN(&fakeprov, FI_LOG_CORE,
			"Failed to register CUDA buffer with the EFA device, FI_HMEM transfers that require peer to peer support will fail.\n");

	if (hints) {
		const char *pn = hints->fabric_attr ? hints->fabric_attr->prov_name : NULL;

		/* The core passes "core;util" layered names through; match the core part. */
		if (pn && strncasecmp(pn, FAKEPROV_NAME, strlen(FAKEPROV_NAME)) != 0)
			return -FI_ENODATA;
		if (pn && pn[strlen(FAKEPROV_NAME)] != '\0' && pn[strlen(FAKEPROV_NAME)] != ';')
			return -FI_ENODATA;
		if (hints->ep_attr && hints->ep_attr->type != FI_EP_UNSPEC &&
		    hints->ep_attr->type != FI_EP_RDM)
			return -FI_ENODATA;
		if ((hints->caps & FI_HMEM) && !(caps & FI_HMEM))
			return -FI_ENODATA;
	}

	fi = fi_allocinfo();
	if (!fi)
		return -FI_ENOMEM;

	fi->caps = caps;
	fi->mode = FI_CONTEXT;
	fi->addr_format = FI_FORMAT_UNSPEC;
	fi->ep_attr->type = FI_EP_RDM;
	fi->ep_attr->protocol = FI_PROTO_UNSPEC;
	fi->ep_attr->max_msg_size = 1 << 20;
	fi->tx_attr->caps = caps;
	fi->tx_attr->mode = FI_CONTEXT;
	fi->tx_attr->size = 1024;
	fi->tx_attr->iov_limit = 1;
	fi->rx_attr->caps = caps;
	fi->rx_attr->mode = FI_CONTEXT;
	fi->rx_attr->size = 1024;
	fi->rx_attr->iov_limit = 1;
	fi->domain_attr->name = strdup(FAKEPROV_DOMAIN);
	fi->domain_attr->threading = FI_THREAD_COMPLETION;
	fi->domain_attr->control_progress = FI_PROGRESS_AUTO;
	fi->domain_attr->data_progress = FI_PROGRESS_AUTO;
	fi->domain_attr->resource_mgmt = FI_RM_ENABLED;
	fi->domain_attr->av_type = FI_AV_UNSPEC;
	fi->domain_attr->mr_mode = FI_MR_LOCAL | FI_MR_VIRT_ADDR | FI_MR_ALLOCATED |
				   FI_MR_PROV_KEY | FI_MR_HMEM;
	fi->domain_attr->mr_key_size = 2;
	fi->domain_attr->mr_iov_limit = 1;
	fi->domain_attr->mr_cnt = 65536;
	fi->domain_attr->ep_cnt = 1;
	fi->domain_attr->tx_ctx_cnt = 1;
	fi->domain_attr->rx_ctx_cnt = 1;
	fi->domain_attr->max_ep_tx_ctx = 1;
	fi->domain_attr->max_ep_rx_ctx = 1;
	fi->fabric_attr->name = strdup(FAKEPROV_FABRIC);
	/*
	 * prov_name stays NULL: the core sets it to this provider's name (and would append
	 * ours to it, "fakehmem;fakehmem", were it already set, as for a utility provider).
	 */
	fi->fabric_attr->prov_version = fakeprov.version;
	fi->fabric_attr->api_version = version;

	if (!fi->domain_attr->name || !fi->fabric_attr->name) {
		fi_freeinfo(fi);
		return -FI_ENOMEM;
	}
	*info = fi;
	return 0;
}

static void fake_cleanup(void)
{
}

static struct fi_provider fakeprov = {
	.version = FI_VERSION(1, 0),
	.fi_version = FI_VERSION(FI_MAJOR_VERSION, FI_MINOR_VERSION),
	.name = FAKEPROV_NAME,
	.getinfo = fake_getinfo,
	.fabric = fake_fabric,
	.cleanup = fake_cleanup,
};

FI_EXT_INI
{
	return &fakeprov;
}
