/*
 * anon.c: anonymous pages (UVM's uvm_anon.c).
 */
#include <string.h>

#include "anon.h"
#include "dup.h"
#include "fault/pmap.h"
#include "frame.h"
#include "kmem.h"
#include "page.h"
#include "pager/swap.h"
#include "stats.h"
#include "usrvm_internal.h"

static struct pool anon_pool;

int
anon_sys_init(void)
{
	pool_init(&anon_pool, "anon", sizeof(struct vm_anon), 1024, 8192);
	return 0;
}

void
anon_sys_fini(void)
{
	pool_destroy(&anon_pool);
}

/*
 * anon_alloc_batch: n fresh anons (an_ref 1) for the fault path.
 * => never sleeps; returns how many were allocated.
 */
unsigned
anon_alloc_batch(struct vm_anon **v, unsigned n)
{
	unsigned got = pool_get_batch(&anon_pool, (void **)v, n, NULL);

	for (unsigned i = 0; i < got; i++)
		v[i]->an_ref = 1;
	CNT_ADD(anons, (int64_t)got);
	return got;
}

struct vm_anon *
anon_alloc(void)
{
	struct vm_anon *anon;

	return anon_alloc_batch(&anon, 1) == 1 ? anon : NULL;
}

void
anon_unref(struct vm_anon *anon)
{
	KASSERT(anon->an_ref > 0);
	if (--anon->an_ref == 0)
		anon_free(anon);
}

/*
 * anon_free: free an anon nobody references.
 * => amap lock held.
 * => a busy page (being installed or under I/O) is marked PG_RELEASED:
 *    its busy owner calls anon_release when done (UVM's uvm_anfree).
 * => the page's bytes at pg_va are not touched: whoever dropped the last
 *    reference (unmap, discard) has removed or is removing the mapping.
 */
void
anon_free(struct vm_anon *anon)
{
	struct vm_page *pg = anon->an_page;

	KASSERT(anon->an_ref == 0);
	if (pg != NULL && (pg->pg_flags & PG_BUSY)) {
		pg->pg_flags |= PG_RELEASED;
		return;
	}
	anon_release(anon);
}

void
anon_release(struct vm_anon *anon)
{
	struct vm_page *pg = anon->an_page;

	KASSERT(anon->an_ref == 0);
	if (pg != NULL) {
		KASSERT(pg->pg_anon == anon);
		if (pg->pg_flags & PG_BUSY)
			page_unbusy(pg);	/* wakes any sleeper */
		page_dequeue(pg);
		anon_page_free(anon);
	}
	anon_dropswap(anon);
	pool_put(&anon_pool, anon);
	CNT_ADD(anons, -1);
}

void
anon_page_free(struct vm_anon *anon)
{
	struct vm_page *pg = anon->an_page;

	if (pg->pg_flags & PG_LOANED) {
		/* The loan keeps the page, resident, until it ends. */
		pg->pg_anon = NULL;
		anon->an_page = NULL;
		return;
	}
	if (pg->pg_frame != FRAME_NONE)
		frame_free(pg->pg_frame, true);
	pg->pg_frame = FRAME_NONE;
	pg->pg_flags = 0;
	pg->pg_anon = NULL;
	anon->an_page = NULL;
	page_free(pg);
	page_resident_add(-1);
}

void
anon_dropswap(struct vm_anon *anon)
{
	if (anon->an_swslot != 0 && anon->an_swslot != SWSLOT_LOST)
		swap_free(anon->an_swslot, 1);
	anon->an_swslot = 0;
	if (anon->an_page != NULL)
		anon->an_page->pg_flags &= ~PG_CLEAN;
}

/*
 * anon_peek: copy the anon's mapped page into a new frame, *fp; the page
 * stays where it is.  The copy reads without faulting (the pmap's peek: a
 * fault thread must not fault).  => amap locked; the page mapped (not
 * staged).  0, ENOMEM (no frame), or ENOENT (the application discarded
 * the page itself).
 */
int
anon_peek(struct vm_anon *anon, uint32_t *fp)
{
	uint32_t f = frame_alloc();
	int error;

	if (f == FRAME_NONE)
		return ENOMEM;
	error = pmap->peek(anon->an_page->pg_va, (void *)frame_va(f),
	    PAGE_SIZE);
	if (error != 0) {
		frame_free(f, false);
		return error;
	}
	*fp = f;
	return 0;
}

/* The anon's page is in frame f now: staged, inactive. */
static void
anon_staged(struct vm_anon *anon, uint32_t f)
{
	struct vm_page *pg = anon->an_page;

	pg->pg_frame = f;
	pg->pg_flags |= PG_STAGED;
	page_deactivate(pg);
}

/*
 * anon_stage_out: take the anon's page away from its address into a
 * frame (UFFDIO_MOVE, no copy); it becomes staged, on the inactive
 * queue.  For an address about to lose the page (its entry goes, or a
 * copy-on-write gives it a new anon) while the anon lives on elsewhere.
 * => amap locked; the page is mapped (not staged, not busy).
 * => 0, ENOMEM (no frame), or the pmap's error: ENOENT (the application
 *    discarded the page itself), EINVAL (the kernel moves no page out of
 *    a private view of an object or a read-only entry), EBUSY (shared
 *    with a fork(2) child, or pinned).
 */
int
anon_stage_out(struct vm_anon *anon)
{
	struct vm_page *pg = anon->an_page;
	uint32_t f = frame_alloc();
	size_t done;
	int error;

	KASSERT(pg != NULL && !(pg->pg_flags & (PG_STAGED | PG_BUSY)));
	if (f == FRAME_NONE)
		return ENOMEM;
	error = pmap->stage_out(pg->pg_va, frame_va(f), PAGE_SIZE, &done);
	if (error != 0) {
		frame_free(f, false);
		return error;
	}
	anon_staged(anon, f);
	return 0;
}

/*
 * anon_stage_copy: anon_stage_out, and a page the kernel will not move
 * (EINVAL, EBUSY) is copied into the frame instead (anon_peek): its
 * address keeps a duplicate (counted: dup.c), which holds the anon's
 * bytes (they do not change while the anon is shared) and stays
 * write-protected: whoever installs at that address later finds it
 * present (EEXIST) and takes it over (fault.c).  For a write where the
 * page is (its new anon takes the duplicate over), an address whose
 * range is going (map_rehome) or a page being lent (loan.c): a read
 * elsewhere copies into an anon of its own instead (fault_cow_stage), so
 * that duplicates stay few and short-lived.  => as anon_stage_out.
 */
int
anon_stage_copy(struct vm_anon *anon)
{
	uint32_t f;
	int error = anon_stage_out(anon);

	if (error != EINVAL && error != EBUSY)
		return error;
	if ((error = anon_peek(anon, &f)) != 0)
		return error;
	CNT_INC(pd_unmovable);
	dup_add(anon->an_page->pg_va);
	anon_staged(anon, f);
	return 0;
}
