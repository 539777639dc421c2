/*
 * mmap.c: the public mapping calls (UVM's uvm_mmap.c: the system-call
 * layer).  Every argument is checked here, before the map is touched, so
 * a bad call fails with no side effect.
 */
#include <errno.h>

#include "fault/trap.h"
#include "map.h"
#include "object.h"
#include "page.h"
#include "pager/aobj.h"
#include "pager/vnode_pager.h"
#include "space.h"
#include "usrvm_internal.h"

#define PROT_BITS	(USRVM_PROT_ALL | USRVM_PROT_MAX(USRVM_PROT_ALL))	/* incl. MAX_SET */
#define MAP_BITS	(USRVM_MAP_PRIVATE | USRVM_MAP_SHARED | \
			 USRVM_MAP_ANON | USRVM_MAP_FIXED)

/* A range argument: page aligned, non-empty, inside the space. */
static int
check_range(struct usrvm_space *vs, void *addr, size_t len)
{
	if (!space_valid(vs))
		return EINVAL;
	if (!page_aligned(addr) || !page_aligned(len) || len == 0)
		return EINVAL;
	if (!space_contains(vs, (uintptr_t)addr, len))
		return EINVAL;
	return 0;
}

/* Split prot into protection and maximum (USRVM_PROT_MAX). */
static int
check_prot(int prot, int *protp, int *maxp, bool *has_max)
{
	if ((prot & ~PROT_BITS) != 0 ||
	    (((prot >> 16) & 0xff) != 0 && !(prot & USRVM_PROT_MAX_SET)))
		return EINVAL;
	*protp = prot & USRVM_PROT_ALL;
	*has_max = (prot & USRVM_PROT_MAX_SET) != 0;
	*maxp = *has_max ? (prot >> 16) & USRVM_PROT_ALL : USRVM_PROT_ALL;
	if ((*protp & *maxp) != *protp)
		return EACCES;
	return 0;
}

void *
usrvm_map(struct usrvm_space *vs, void *hint, size_t len, int prot,
    int flags, int fd, off_t off)
{
	uintptr_t addr = (uintptr_t)hint;
	struct vm_object *obj = NULL;
	int p, maxp, error;
	bool has_max, writable;

	if (!space_valid(vs) || len == 0 || !page_aligned(len) ||
	    !page_aligned(hint) || (flags & ~MAP_BITS) != 0 ||
	    !(flags & USRVM_MAP_PRIVATE) == !(flags & USRVM_MAP_SHARED)) {
		error = EINVAL;
		goto fail;
	}
	if ((error = check_prot(prot, &p, &maxp, &has_max)) != 0)
		goto fail;
	if (flags & USRVM_MAP_ANON) {
		if (fd != -1 || off != 0) {
			error = EINVAL;
			goto fail;
		}
	} else if (fd < 0) {
		error = EBADF;
		goto fail;
	} else if (off < 0 || !page_aligned(off) ||
	    (uint64_t)off + len < (uint64_t)off) {
		error = EINVAL;
		goto fail;
	}
	if ((flags & USRVM_MAP_FIXED) && !space_contains(vs, addr, len)) {
		error = EINVAL;
		goto fail;
	}
	if ((!(flags & USRVM_MAP_ANON) || (flags & USRVM_MAP_SHARED)) &&
	    (error = usrvm_object_threads()) != 0)
		goto fail;
	if ((flags & (USRVM_MAP_ANON | USRVM_MAP_SHARED)) ==
	    (USRVM_MAP_ANON | USRVM_MAP_SHARED)) {
		if ((error = aobj_create(len, &obj)) != 0)
			goto fail;
	} else if (!(flags & USRVM_MAP_ANON)) {
		if ((error = uvn_attach(fd, (uint64_t)off, len, p,
		    (flags & USRVM_MAP_SHARED) != 0, &obj, &writable)) != 0)
			goto fail;
		/* A private mapping writes its own copies, never the file. */
		if (!writable && (flags & USRVM_MAP_SHARED))
			maxp &= ~USRVM_PROT_WRITE;
	}
	if (!(flags & USRVM_MAP_FIXED) && !space_contains(vs, addr, len))
		addr = vs->vs_base;	/* a hint outside: ignore it */
	error = map_enter(vs, &addr, len, p, maxp,
	    (flags & USRVM_MAP_FIXED) != 0, obj, (uint64_t)off,
	    obj != NULL && (flags & USRVM_MAP_PRIVATE));
	if (error != 0) {
		if (obj != NULL)
			obj->vo_pgops->pgo_detach(obj);
		goto fail;
	}
	return (void *)addr;
fail:
	errno = error;
	return NULL;
}

int
usrvm_unmap(struct usrvm_space *vs, void *addr, size_t len)
{
	int error;

	if ((error = check_range(vs, addr, len)) != 0)
		return -error;
	return -map_remove(vs, (uintptr_t)addr, (uintptr_t)addr + len);
}

int
usrvm_protect(struct usrvm_space *vs, void *addr, size_t len, int prot)
{
	int p, maxp, error;
	bool has_max;

	if ((error = check_range(vs, addr, len)) != 0 ||
	    (error = check_prot(prot, &p, &maxp, &has_max)) != 0)
		return -error;
	return -map_protect(vs, (uintptr_t)addr, (uintptr_t)addr + len, p,
	    has_max ? maxp : -1);
}

int
usrvm_advise(struct usrvm_space *vs, void *addr, size_t len, int advice)
{
	uintptr_t start = (uintptr_t)addr;
	int error;

	if ((error = check_range(vs, addr, len)) != 0)
		return -error;
	switch (advice) {
	case USRVM_ADV_NORMAL:
	case USRVM_ADV_RANDOM:
	case USRVM_ADV_SEQUENTIAL:
		return -map_advise(vs, start, start + len, advice);
	case USRVM_ADV_WILLNEED:
		/* Nothing to bring in: every anon is resident until the
		 * swap device exists; zero-fill pages cost nothing early. */
		return -map_check_covered(vs, start, start + len);
	case USRVM_ADV_DONTNEED:
	case USRVM_ADV_FREE:
		return -map_dontneed(vs, start, start + len);
	default:
		return -EINVAL;
	}
}

int
usrvm_inherit(struct usrvm_space *vs, void *addr, size_t len, int inh)
{
	int error;

	if ((error = check_range(vs, addr, len)) != 0)
		return -error;
	if (inh != USRVM_INH_SHARE && inh != USRVM_INH_COPY &&
	    inh != USRVM_INH_NONE && inh != USRVM_INH_ZERO)
		return -EINVAL;
	return -map_inherit(vs, (uintptr_t)addr, (uintptr_t)addr + len, inh);
}

struct usrvm_space *
usrvm_space_create(size_t reserve)
{
	struct usrvm_space *vs;
	int error;

	if (!usrvm_is_running()) {
		errno = EINVAL;
		return NULL;
	}
	if ((vs = space_create(reserve, &error)) == NULL)
		errno = error;
	return vs;
}

int
usrvm_space_destroy(struct usrvm_space *vs)
{
	if (!space_valid(vs))
		return -EINVAL;
	if (vs == usrvm_default_space())
		return -EBUSY;	/* it goes with usrvm_shutdown */
	return -space_destroy(vs);
}

void *
usrvm_space_base(struct usrvm_space *vs)
{
	return space_valid(vs) ? (void *)vs->vs_base : NULL;
}

size_t
usrvm_space_size(struct usrvm_space *vs)
{
	return space_valid(vs) ? vs->vs_size : 0;
}

struct usrvm_space *
usrvm_fork(struct usrvm_space *vs)
{
	struct usrvm_space *child = NULL;
	int error;

	if (!space_valid(vs) || trap_self())
		error = EINVAL;
	else if (page_budget() == 0)
		error = ENOTSUP;	/* see usrvm.h */
	else if ((error = usrvm_object_threads()) == 0)	/* SHARE: aobjs */
		error = map_fork(vs, &child);
	if (error != 0) {
		errno = error;
		return NULL;
	}
	return child;
}

int
usrvm_sync(void *addr, size_t len, int flags)
{
	uintptr_t start = (uintptr_t)addr;
	struct usrvm_space *vs;
	int error;

	if (!page_aligned(start) || len == 0 || start + len < start ||
	    (flags & ~(USRVM_SYNC_ASYNC | USRVM_SYNC_SYNC)) != 0 ||
	    !(flags & USRVM_SYNC_ASYNC) == !(flags & USRVM_SYNC_SYNC))
		return -EINVAL;
	len = round_page(len);
	if ((vs = space_enter(start)) == NULL)
		return -ENOMEM;
	error = space_contains(vs, start, len) ?
	    map_sync(vs, start, start + len, (flags & USRVM_SYNC_SYNC) != 0) :
	    ENOMEM;
	space_exit(vs);
	return -error;
}
