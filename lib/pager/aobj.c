/*
 * aobj.c: anonymous objects and their page-ins and page-outs (see
 * aobj.h).
 *
 * The slot index mirrors the page index of object.c: a directory made
 * with the object, and chunks of AO_CHUNK slots made when a page of
 * theirs first goes out to swap.
 *
 * Page-outs run on the flusher's thread: the page daemon, which finds a
 * dirty page of an aobj at the head of its inactive queue, only asks
 * (pgo_put without PGO_SYNCIO never sleeps), and drops the page once it
 * is clean.  A write fault meanwhile waits for the page (busy) and makes
 * it dirty again after: the write that just went out is then stale, and
 * its slot freed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "fault.h"
#include "kmem.h"
#include "page.h"
#include "pager/aobj.h"
#include "pager/flusher.h"
#include "pager/pgio.h"
#include "pager/swap.h"
#include "stats.h"
#include "usrvm_internal.h"

#define AO_CHUNK	1024		/* slots per chunk of the index */
#define AO_READ_MAX	PGIO_MAXRUN	/* pages per read from swap */
#define AO_ZERO_AROUND	16		/* zero pages per fault in a stream */

struct uvm_aobj {
	struct vm_object ao_obj;	/* first */
	uint32_t **ao_swslots;		/* slot of each page: vo_lock */
	/* aobj_lock */
	struct uvm_aobj *ao_next;	/* every aobj */
	uint64_t ao_round;		/* the flusher's last round with it */
	_Atomic bool ao_clean;		/* the daemon wants it cleaned */
};

/* Every aobj, for the flusher; and the objects' reference counts. */
static pthread_mutex_t aobj_lock = PTHREAD_MUTEX_INITIALIZER;
static struct uvm_aobj *aobj_list;			/* aobj_lock */
static bool aobj_full_logged;				/* aobj_lock */

static const struct uvm_pagerops aobj_pagerops;

static struct uvm_aobj *
aobj_of(struct vm_object *obj)
{
	return (struct uvm_aobj *)obj;
}

bool
aobj_is(const struct vm_object *obj)
{
	return obj->vo_pgops == &aobj_pagerops;
}

/* ------------------------------------------------------------------ */
/* the slot index                                                      */
/* ------------------------------------------------------------------ */

static size_t
aobj_nchunks(const struct vm_object *obj)
{
	return (atop(obj->vo_size) + AO_CHUNK - 1) / AO_CHUNK;
}

/* The slot of the page at off (0: none).  vo_lock held. */
static uint32_t
aobj_swslot(struct uvm_aobj *ao, uint64_t off)
{
	uint32_t *chunk = ao->ao_swslots[atop(off) / AO_CHUNK];

	return chunk != NULL ? chunk[atop(off) % AO_CHUNK] : 0;
}

/* Set the slot of the page at off.  => 0 or ENOMEM.  vo_lock held. */
static int
aobj_set_swslot(struct uvm_aobj *ao, uint64_t off, uint32_t slot)
{
	uint32_t **chunk = &ao->ao_swslots[atop(off) / AO_CHUNK];

	if (*chunk == NULL) {
		if (slot == 0)
			return 0;
		if ((*chunk = kmem_zalloc(AO_CHUNK * sizeof(**chunk))) == NULL)
			return ENOMEM;
	}
	(*chunk)[atop(off) % AO_CHUNK] = slot;
	return 0;
}

/* Free the slot of the page at off, if it has one (uao_dropswap). */
static void
aobj_dropswap(struct uvm_aobj *ao, uint64_t off)
{
	uint32_t slot = aobj_swslot(ao, off);

	if (slot == 0)
		return;
	if (slot != SWSLOT_LOST)
		swap_free(slot, 1);
	(void)aobj_set_swslot(ao, off, 0);
}

/* ------------------------------------------------------------------ */
/* objects                                                             */
/* ------------------------------------------------------------------ */

int
aobj_create(uint64_t len, struct vm_object **objp)
{
	struct uvm_aobj *ao;
	int error;

	KASSERT(page_aligned(len) && len > 0);
	if (page_commit(atop(len)) != 0)
		return ENOMEM;
	if ((ao = kmem_zalloc(sizeof(*ao))) == NULL) {
		error = ENOMEM;
		goto fail;
	}
	if ((error = object_init(&ao->ao_obj, &aobj_pagerops, len)) != 0) {
		kmem_free(ao, sizeof(*ao));
		goto fail;
	}
	ao->ao_swslots = kmem_zalloc(aobj_nchunks(&ao->ao_obj) *
	    sizeof(*ao->ao_swslots));
	if (ao->ao_swslots == NULL) {
		object_fini(&ao->ao_obj);
		kmem_free(ao, sizeof(*ao));
		error = ENOMEM;
		goto fail;
	}
	ao->ao_obj.vo_refs = 1;
	pthread_mutex_lock(&aobj_lock);
	ao->ao_next = aobj_list;
	aobj_list = ao;
	pthread_mutex_unlock(&aobj_lock);
	CNT_INC(aobjs);
	*objp = &ao->ao_obj;
	return 0;
fail:
	page_uncommit(atop(len));
	return error;
}

/* The last reference went: pages, slots and commit go back. */
static void
aobj_destroy(struct uvm_aobj *ao)
{
	struct vm_object *obj = &ao->ao_obj;
	size_t nchunks = aobj_nchunks(obj);

	object_fini(obj);
	for (size_t c = 0; c < nchunks; c++) {
		uint32_t *chunk = ao->ao_swslots[c];
		if (chunk == NULL)
			continue;
		for (size_t i = 0; i < AO_CHUNK; i++)
			if (chunk[i] != 0 && chunk[i] != SWSLOT_LOST)
				swap_free(chunk[i], 1);
		kmem_free(chunk, AO_CHUNK * sizeof(*chunk));
	}
	kmem_free(ao->ao_swslots, nchunks * sizeof(*ao->ao_swslots));
	page_uncommit(atop(obj->vo_size));
	kmem_free(ao, sizeof(*ao));
	CNT_ADD(aobjs, -1);
}

static void
aobj_reference(struct vm_object *obj)
{
	pthread_mutex_lock(&aobj_lock);
	KASSERT(obj->vo_refs > 0);
	obj->vo_refs++;
	pthread_mutex_unlock(&aobj_lock);
}

static void
aobj_detach(struct vm_object *obj)
{
	struct uvm_aobj *ao = aobj_of(obj), **ap;
	bool last;

	pthread_mutex_lock(&aobj_lock);
	KASSERT(obj->vo_refs > 0);
	if ((last = --obj->vo_refs == 0)) {
		for (ap = &aobj_list; *ap != ao; ap = &(*ap)->ao_next)
			continue;
		*ap = ao->ao_next;
	}
	pthread_mutex_unlock(&aobj_lock);
	if (last)
		aobj_destroy(ao);
}

int
aobj_adopt(struct vm_object *obj, uint64_t off, const void *src,
    uint32_t slot)
{
	struct uvm_aobj *ao = aobj_of(obj);
	struct vm_page *pg;
	int error = 0;

	pthread_mutex_lock(&obj->vo_lock);
	KASSERT(object_lookup(obj, off) == NULL);
	KASSERT(slot == 0 || aobj_swslot(ao, off) == 0);
	if (src == NULL) {
		error = aobj_set_swslot(ao, off, slot);
	} else if (object_insert(obj, off, &pg, 1) != 1) {
		error = ENOMEM;
	} else {
		page_resident_add(1);
		memcpy(object_window(obj, off), src, PAGE_SIZE);
		object_page_dirty(obj, pg);
		page_unbusy(pg);
		page_activate(pg);
	}
	pthread_mutex_unlock(&obj->vo_lock);
	return error;
}

/* ------------------------------------------------------------------ */
/* page-in                                                             */
/* ------------------------------------------------------------------ */

/*
 * The missing pages to bring in with the one at off: those whose slots
 * follow its slot (the cluster it went out with), or, for a page never
 * written, the next ones with no slot either when the page before is
 * resident (a stream: fault-around).  => how many, at least 1.
 */
static unsigned
aobj_window(struct uvm_aobj *ao, uint64_t off, uint32_t slot,
    unsigned want, int flags)
{
	struct vm_object *obj = &ao->ao_obj;
	unsigned n = 1, max;

	if (flags & PGO_RANDOM)
		return 1;
	if (slot != 0)
		max = AO_READ_MAX;
	else if (flags & PGO_SEQUENTIAL)
		max = AO_READ_MAX;
	else if (off > 0 && object_lookup(obj, off - PAGE_SIZE) != NULL)
		max = AO_ZERO_AROUND;
	else
		max = 1;
	max = MIN(max, want);
	while (n < max && object_lookup(obj, off + ptoa(n)) == NULL &&
	    aobj_swslot(ao, off + ptoa(n)) == (slot != 0 ? slot + n : 0))
		n++;
	return n;
}

/*
 * aobj_get: pgo_get.  A resident page comes with the resident pages
 * after it; a missing one is read from its slot (with the rest of its
 * cluster), or is zeros.  What comes in is clean: it equals its slot, or
 * it was never written.
 * => 0: pages[0..*npages) busy; ERESTART, FAULT_PARK, EIO (its slot
 *    could not be read: lost), ENOMEM.  Object locked on entry, unlocked
 *    on return.
 */
static int
aobj_get(struct vm_object *obj, uint64_t off, struct vm_page **pages,
    unsigned *npages, unsigned centeridx, int access, int flags)
{
	struct uvm_aobj *ao = aobj_of(obj);
	struct iovec iov[AO_READ_MAX];
	unsigned want, n, got;
	uint32_t slot;
	int error;

	(void)access;
	KASSERT(centeridx == 0 && *npages > 0);
	want = *npages;
	if ((error = object_get_resident(obj, off, pages, &want, &n)) != 0)
		return error;
	if (n > 0) {
		pthread_mutex_unlock(&obj->vo_lock);
		*npages = n;
		return 0;
	}

	slot = aobj_swslot(ao, off);
	if (slot == SWSLOT_LOST) {
		pthread_mutex_unlock(&obj->vo_lock);
		return EIO;
	}
	n = aobj_window(ao, off, slot, want, flags);
	if ((n = (unsigned)page_reserve(n, 1)) == 0) {
		pthread_mutex_unlock(&obj->vo_lock);
		return FAULT_PARK;
	}
	got = object_insert(obj, off, pages, n);
	if (got < n)
		page_resident_add(-(long)(n - got));
	if ((n = got) == 0) {
		pthread_mutex_unlock(&obj->vo_lock);
		return ENOMEM;
	}
	pthread_mutex_unlock(&obj->vo_lock);

	/* Pages of the memfd come into being as zeros; an O_DIRECT read
	 * goes into pages that exist. */
	(void)madvise(object_window(obj, off), ptoa(n), MADV_POPULATE_WRITE);
	error = 0;
	if (slot != 0) {
		for (unsigned i = 0; i < n; i++) {
			iov[i].iov_base = object_window(obj, off + ptoa(i));
			iov[i].iov_len = PAGE_SIZE;
		}
		if ((error = pgio_swapv(false, slot, iov, n)) != 0) {
			CNT_INC(io_errors_read);
			usrvm_log(USRVM_LOG_ERR, "swap read of slots %u-%u "
			    "(shared anonymous memory) failed: %s", slot,
			    slot + n - 1, strerror(error));
		} else {
			CNT_ADD(pageins, n);
		}
	}

	pthread_mutex_lock(&obj->vo_lock);
	if (error != 0) {
		/* Its only copy could not be read: lost.  The rest of the
		 * cluster is still on swap. */
		swap_markbad(slot, 1);
		(void)aobj_set_swslot(ao, off, SWSLOT_LOST);
		CNT_INC(pages_lost);
		object_pages_free(obj, pages, n);
		pthread_mutex_unlock(&obj->vo_lock);
		return EIO;
	}
	/* Keeping the slots makes these pages' eviction free; when free
	 * slots run short, they go to pages that need them (the pages are
	 * dirty again, as the anon pager does it). */
	if (slot != 0 && swap_nslots() - swap_used() < page_budget())
		for (unsigned i = 0; i < n; i++)
			object_page_dirty(obj, pages[i]);
	pthread_mutex_unlock(&obj->vo_lock);
	*npages = n;
	return 0;
}

/* A page became dirty: the copy in its slot is stale. */
static void
aobj_dirtied(struct vm_object *obj, struct vm_page *pg)
{
	aobj_dropswap(aobj_of(obj), pg->pg_offset);
}

/* ------------------------------------------------------------------ */
/* page-out                                                            */
/* ------------------------------------------------------------------ */

/*
 * aobj_write_run: write pages run[0..n) at off (busy, PG_PAGEIO, dirty)
 * to swap, in as few runs of slots as the device has: write-protected in
 * every view, marked clean, written.  What finds no slot (the device is
 * full) or whose write fails stays dirty.  vo_lock held; dropped during
 * the writes.
 */
static void
aobj_write_run(struct uvm_aobj *ao, uint64_t off, struct vm_page **run,
    unsigned n)
{
	struct vm_object *obj = &ao->ao_obj;
	struct iovec iov[PGIO_MAXRUN];
	unsigned done = 0, k;
	uint32_t slot;
	int error;

	if (object_wprotect(obj, off, ptoa(n)) != 0)
		goto out;	/* an application event unread: next round */
	while (done < n && (k = swap_alloc(n - done, &slot)) > 0) {
		for (unsigned i = 0; i < k; i++) {
			object_page_clean(obj, run[done + i]);
			iov[i].iov_base = object_window(obj,
			    off + ptoa(done + i));
			iov[i].iov_len = PAGE_SIZE;
		}
		pthread_mutex_unlock(&obj->vo_lock);
		error = pgio_swapv(true, slot, iov, k);
		pthread_mutex_lock(&obj->vo_lock);
		for (unsigned i = 0; i < k; i++) {
			uint64_t o = off + ptoa(done + i);
			if (error == 0 &&
			    aobj_set_swslot(ao, o, slot + i) == 0)
				continue;
			if (error == 0)	/* no memory for the index */
				swap_free(slot + i, 1);
			object_page_dirty(obj, run[done + i]);
		}
		if (error != 0) {
			CNT_INC(io_errors_write);
			usrvm_log(USRVM_LOG_ERR, "swap write of %u pages to "
			    "slots %u-%u (shared anonymous memory) failed: "
			    "%s; the slots are retired and the pages will be "
			    "written elsewhere", k, slot, slot + k - 1,
			    strerror(error));
			swap_markbad(slot, k);
		} else {
			CNT_ADD(pageouts, k);
		}
		done += k;
	}
	if (done < n) {
		CNT_ADD(pd_swapfull, n - done);
		pthread_mutex_lock(&aobj_lock);
		if (!aobj_full_logged)
			usrvm_log(USRVM_LOG_ERR, "swap device full: shared "
			    "anonymous pages stay resident (USRVM_SWAP_SIZE)");
		aobj_full_logged = true;
		pthread_mutex_unlock(&aobj_lock);
	}
out:
	object_run_done(run, n);
}

/* Write every dirty page of ao that is not busy to swap. */
static void
aobj_clean(struct uvm_aobj *ao)
{
	struct vm_object *obj = &ao->ao_obj;
	struct vm_page *run[PGIO_MAXRUN];
	uint64_t off = 0;

	pthread_mutex_lock(&obj->vo_lock);
	while (off < obj->vo_size && obj->vo_ndirty > 0) {
		unsigned n;
		if (object_lookup(obj, off) == NULL) {
			off = object_next(obj, off, obj->vo_size);
			continue;
		}
		if ((n = object_dirty_run(obj, off, obj->vo_size, run,
		    PGIO_MAXRUN)) == 0) {
			off += PAGE_SIZE;
			continue;
		}
		aobj_write_run(ao, off, run, n);
		off += ptoa(n);
	}
	pthread_mutex_unlock(&obj->vo_lock);
}

void
aobj_clean_round(uint64_t round)
{
	struct uvm_aobj *ao;

	for (;;) {
		pthread_mutex_lock(&aobj_lock);
		for (ao = aobj_list; ao != NULL; ao = ao->ao_next)
			if (ao->ao_round != round && atomic_exchange_explicit(
			    &ao->ao_clean, false, memory_order_relaxed))
				break;
		if (ao != NULL) {
			ao->ao_round = round;
			ao->ao_obj.vo_refs++;	/* ours while we clean it */
		}
		pthread_mutex_unlock(&aobj_lock);
		if (ao == NULL)
			return;
		aobj_clean(ao);
		aobj_detach(&ao->ao_obj);
	}
}

/*
 * pgo_put: the page daemon wants [start, end) clean: the flusher writes
 * the object's dirty pages out soon.  usrvm_sync (PGO_SYNCIO) has nothing
 * to do: no file is behind the memory.
 */
static int
aobj_put(struct vm_object *obj, uint64_t start, uint64_t end, int flags)
{
	(void)start;
	(void)end;
	if (flags & PGO_SYNCIO)
		return 0;
	atomic_store_explicit(&aobj_of(obj)->ao_clean, true,
	    memory_order_relaxed);
	flusher_kick();
	return 0;
}

/*
 * pgo_forked: a fork(2) child, which has no runtime, gets a private copy
 * of the memory as it is at the fork (the parent is held until the child
 * has it): resident pages from the object's window, the others from
 * their slots.  A share between the two processes would need the parent
 * never to take a page out of the memfd again.
 */
static int
aobj_forked(struct vm_object *obj, uintptr_t va, size_t len, uint64_t off,
    int prot, bool private)
{
	struct uvm_aobj *ao = aobj_of(obj);
	int error = 0;

	(void)private;		/* it is a private copy either way */
	if (mmap((void *)va, len, PROT_READ | PROT_WRITE, MAP_PRIVATE |
	    MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
		return errno;
	for (size_t i = 0; i < len; i += PAGE_SIZE) {
		uint32_t slot = aobj_swslot(ao, off + i);
		if (object_lookup(obj, off + i) != NULL)
			memcpy((void *)(va + i), object_window(obj, off + i),
			    PAGE_SIZE);
		else if (slot != 0 && slot != SWSLOT_LOST &&
		    pread(swap_fd(), (void *)(va + i), PAGE_SIZE,
		    (off_t)ptoa(slot)) != (ssize_t)PAGE_SIZE)
			error = EIO;
	}
	if (mprotect((void *)va, len, (prot & USRVM_PROT_READ ? PROT_READ : 0) |
	    (prot & USRVM_PROT_WRITE ? PROT_WRITE : 0)) != 0 && error == 0)
		error = errno;
	return error;
}

/*
 * aobj_fork_child: in a fork child (fork.c), after every view has been
 * given its private copy: the aobjs are the parent's, and the child
 * forgets them (their memfds closed, their slots not kept).
 */
void
aobj_fork_child(void)
{
	FORK_REINIT_MUTEX(&aobj_lock);
	for (struct uvm_aobj *ao = aobj_list; ao != NULL; ao = ao->ao_next)
		close(ao->ao_obj.vo_memfd);
	aobj_list = NULL;
}

static const struct uvm_pagerops aobj_pagerops = {
	.pgo_reference = aobj_reference,
	.pgo_detach = aobj_detach,
	.pgo_get = aobj_get,
	.pgo_put = aobj_put,
	.pgo_forked = aobj_forked,
	.pgo_dirtied = aobj_dirtied,
};
