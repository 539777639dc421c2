/*
 * object.c: an object's page cache and its views (object.h, PART 2).
 *
 * The index of resident pages is two levels of arrays: a directory of
 * vo_size / OBJ_CHUNK_BYTES pointers made with the object, and chunks
 * of OBJ_CHUNK descriptors made when a page of theirs first comes in
 * and kept until the object goes (a file streamed once through the
 * cache costs 4 KiB of chunks per 2 MiB of file).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fault/pmap.h"
#include "kmem.h"
#include "object.h"
#include "page.h"
#include "stats.h"
#include "usrvm_internal.h"

#define OBJ_CHUNK	512
#define OBJ_CHUNK_BYTES	ptoa(OBJ_CHUNK)

struct object_view {
	uintptr_t ov_va;
	size_t ov_len;
	uint64_t ov_off;
	struct object_view *ov_next;
};

static size_t
object_nchunks(const struct vm_object *obj)
{
	return (obj->vo_size + OBJ_CHUNK_BYTES - 1) / OBJ_CHUNK_BYTES;
}

int
object_init(struct vm_object *obj, const struct uvm_pagerops *ops,
    uint64_t size)
{
	int error;

	KASSERT(page_aligned(size));
	memset(obj, 0, sizeof(*obj));
	obj->vo_pgops = ops;
	obj->vo_size = size;
	obj->vo_memfd = memfd_create("usrvm-object", MFD_CLOEXEC);
	if (obj->vo_memfd < 0)
		return errno;
	if (ftruncate(obj->vo_memfd, (off_t)size) != 0)
		goto fail;
	if (size > 0) {
		void *w = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
		    obj->vo_memfd, 0);
		if (w == MAP_FAILED)
			goto fail;
		obj->vo_window = w;
		obj->vo_pages = kmem_zalloc(object_nchunks(obj) *
		    sizeof(*obj->vo_pages));
		if (obj->vo_pages == NULL) {
			munmap(w, size);
			errno = ENOMEM;
			goto fail;
		}
	}
	pthread_mutex_init(&obj->vo_lock, NULL);
	return 0;
fail:
	error = errno;
	close(obj->vo_memfd);
	return error;
}

void
object_fini(struct vm_object *obj)
{
	size_t nchunks = object_nchunks(obj);

	KASSERT(obj->vo_views == NULL);
	pthread_mutex_lock(&obj->vo_lock);
	for (size_t c = 0; c < nchunks; c++) {
		struct vm_page **chunk = obj->vo_pages[c];
		if (chunk == NULL)
			continue;
		for (size_t i = 0; i < OBJ_CHUNK; i++)
			if (chunk[i] != NULL)
				object_page_free(obj, chunk[i]);
		kmem_free(chunk, OBJ_CHUNK * sizeof(*chunk));
	}
	pthread_mutex_unlock(&obj->vo_lock);
	if (obj->vo_size > 0) {
		kmem_free(obj->vo_pages, nchunks * sizeof(*obj->vo_pages));
		munmap(obj->vo_window, obj->vo_size);
	}
	close(obj->vo_memfd);
	pthread_mutex_destroy(&obj->vo_lock);
}

/* ------------------------------------------------------------------ */
/* pages                                                               */
/* ------------------------------------------------------------------ */

static struct vm_page **
object_slot(struct vm_object *obj, uint64_t off, bool make)
{
	size_t idx = atop(off);
	struct vm_page ***dir = &obj->vo_pages[idx / OBJ_CHUNK];

	if (*dir == NULL) {
		if (!make)
			return NULL;
		if ((*dir = kmem_zalloc(OBJ_CHUNK * sizeof(**dir))) == NULL)
			return NULL;
	}
	return &(*dir)[idx % OBJ_CHUNK];
}

struct vm_page *
object_lookup(struct vm_object *obj, uint64_t off)
{
	struct vm_page **slot;

	if (off >= obj->vo_size)
		return NULL;
	slot = object_slot(obj, off, false);
	return slot != NULL ? *slot : NULL;
}

uint64_t
object_next(struct vm_object *obj, uint64_t off, uint64_t end)
{
	end = MIN(end, obj->vo_size);
	while (off < end) {
		struct vm_page **chunk = obj->vo_pages[atop(off) / OBJ_CHUNK];
		if (chunk == NULL) {		/* none in this chunk */
			off = (off / OBJ_CHUNK_BYTES + 1) * OBJ_CHUNK_BYTES;
			continue;
		}
		if (chunk[atop(off) % OBJ_CHUNK] != NULL)
			return off;
		off += PAGE_SIZE;
	}
	return end;
}

int
object_get_resident(struct vm_object *obj, uint64_t off,
    struct vm_page **pages, unsigned *wantp, unsigned *np)
{
	struct vm_page *pg;
	unsigned n = 0;

	if (off >= obj->vo_size) {
		pthread_mutex_unlock(&obj->vo_lock);
		return ENXIO;
	}
	*wantp = (unsigned)MIN(*wantp, atop(obj->vo_size - off));
	if ((pg = object_lookup(obj, off)) != NULL &&
	    (pg->pg_flags & PG_BUSY)) {
		page_wait(pg, &obj->vo_lock);
		return ERESTART;
	}
	while (pg != NULL && n < *wantp) {
		pg->pg_flags |= PG_BUSY;
		pages[n++] = pg;
		if ((pg = object_lookup(obj, off + ptoa(n))) != NULL &&
		    (pg->pg_flags & PG_BUSY))
			break;
	}
	*np = n;
	return 0;
}

unsigned
object_dirty_run(struct vm_object *obj, uint64_t off, uint64_t end,
    struct vm_page **run, unsigned max)
{
	struct vm_page *pg;
	unsigned n = 0;

	while (n < max && off + ptoa(n) < end &&
	    (pg = object_lookup(obj, off + ptoa(n))) != NULL &&
	    !(pg->pg_flags & (PG_BUSY | PG_CLEAN))) {
		pg->pg_flags |= PG_BUSY | PG_PAGEIO;
		run[n++] = pg;
	}
	return n;
}

void
object_run_done(struct vm_page **run, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		run[i]->pg_flags &= ~PG_PAGEIO;
		page_unbusy(run[i]);
	}
}

unsigned
object_insert(struct vm_object *obj, uint64_t off, struct vm_page **pages,
    unsigned n)
{
	struct vm_page **slot;
	unsigned got;

	KASSERT(off + ptoa(n) <= obj->vo_size);
	got = page_alloc_batch(pages, n);
	for (unsigned i = 0; i < got; i++) {
		struct vm_page *pg = pages[i];
		if ((slot = object_slot(obj, off + ptoa(i), true)) == NULL) {
			while (i < got)
				page_free(pages[--got]);
			break;
		}
		KASSERT(*slot == NULL);
		pg->pg_obj = obj;
		pg->pg_offset = off + ptoa(i);
		pg->pg_flags = PG_BUSY | PG_CLEAN;
		*slot = pg;
		obj->vo_npages++;
	}
	return got;
}

void
object_pages_free(struct vm_object *obj, struct vm_page **pages, unsigned n)
{
	for (unsigned i = 0, j; i < n; i = j) {
		uint64_t off = pages[i]->pg_offset;

		/* One punch for each run of consecutive pages. */
		for (j = i + 1; j < n && pages[j]->pg_offset ==
		    pages[j - 1]->pg_offset + PAGE_SIZE; j++)
			continue;
		if (fallocate(obj->vo_memfd, FALLOC_FL_PUNCH_HOLE |
		    FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)ptoa(j - i)) != 0)
			usrvm_panic("object: punching pages [%#llx, +%u) out: "
			    "%s", (unsigned long long)off, j - i,
			    strerror(errno));
		for (unsigned k = i; k < j; k++) {
			struct vm_page *pg = pages[k];
			struct vm_page **slot = object_slot(obj,
			    pg->pg_offset, false);

			KASSERT(slot != NULL && *slot == pg);
			if (!(pg->pg_flags & PG_CLEAN))
				obj->vo_ndirty--;
			*slot = NULL;
			obj->vo_npages--;
			page_dequeue(pg);
			if (pg->pg_flags & PG_BUSY)
				page_unbusy(pg);  /* waiters look it up again */
			page_free(pg);
		}
		page_resident_add(-(long)(j - i));
	}
}

void
object_page_free(struct vm_object *obj, struct vm_page *pg)
{
	object_pages_free(obj, &pg, 1);
}

void
object_page_dirty(struct vm_object *obj, struct vm_page *pg)
{
	if (!(pg->pg_flags & PG_CLEAN))
		return;
	pg->pg_flags &= ~PG_CLEAN;
	if (obj->vo_ndirty++ == 0)
		obj->vo_dirty_ns = usrvm_now_ns();
	if (obj->vo_pgops->pgo_dirtied != NULL)
		obj->vo_pgops->pgo_dirtied(obj, pg);
}

void
object_page_clean(struct vm_object *obj, struct vm_page *pg)
{
	if (pg->pg_flags & PG_CLEAN)
		return;
	pg->pg_flags |= PG_CLEAN;
	obj->vo_ndirty--;
}

/* ------------------------------------------------------------------ */
/* views                                                               */
/* ------------------------------------------------------------------ */

int
object_view_add(struct vm_object *obj, uintptr_t va, size_t len,
    uint64_t off)
{
	struct object_view *v = kmem_alloc(sizeof(*v));

	if (v == NULL)
		return ENOMEM;
	v->ov_va = va;
	v->ov_len = len;
	v->ov_off = off;
	pthread_mutex_lock(&obj->vo_lock);
	v->ov_next = obj->vo_views;
	obj->vo_views = v;
	pthread_mutex_unlock(&obj->vo_lock);
	return 0;
}

void
object_view_remove(struct vm_object *obj, uintptr_t va, size_t len)
{
	struct object_view **vp, *v, *tail = NULL;
	uintptr_t end = va + len;

	/* A view cut in the middle leaves two: the tail is made first. */
	tail = kmem_alloc(sizeof(*tail));
	pthread_mutex_lock(&obj->vo_lock);
	for (vp = &obj->vo_views; (v = *vp) != NULL;) {
		uintptr_t vend = v->ov_va + v->ov_len;
		if (vend <= va || v->ov_va >= end) {
			vp = &v->ov_next;
			continue;
		}
		if (v->ov_va < va && vend > end) {
			KASSERT(tail != NULL);
			tail->ov_va = end;
			tail->ov_len = vend - end;
			tail->ov_off = v->ov_off + (end - v->ov_va);
			tail->ov_next = v->ov_next;
			v->ov_next = tail;
			tail = NULL;
			v->ov_len = va - v->ov_va;
			break;
		}
		if (v->ov_va < va) {			/* keep the front */
			v->ov_len = va - v->ov_va;
			vp = &v->ov_next;
		} else if (vend > end) {		/* keep the back */
			v->ov_off += end - v->ov_va;
			v->ov_len = vend - end;
			v->ov_va = end;
			vp = &v->ov_next;
		} else {				/* all of it */
			*vp = v->ov_next;
			kmem_free(v, sizeof(*v));
		}
	}
	pthread_mutex_unlock(&obj->vo_lock);
	kmem_free(tail, sizeof(*tail));
}

int
object_wprotect(struct vm_object *obj, uint64_t off, size_t len)
{
	for (struct object_view *v = obj->vo_views; v != NULL;
	    v = v->ov_next) {
		uint64_t s = MAX(off, v->ov_off);
		uint64_t e = MIN(off + len, v->ov_off + v->ov_len);
		int error;
		if (s >= e)
			continue;
		error = pmap->wprotect(v->ov_va + (s - v->ov_off), e - s);
		if (error != 0 && error != ENOENT)
			return error;
	}
	return 0;
}
