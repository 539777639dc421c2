/*
 * map_share.c: private memory that a child space is to share (SHARE
 * inheritance, usrvm_fork) becomes shared anonymous memory.
 *
 * UVM shares the amap itself between the two maps.  Here an anon's bytes
 * are at one address only (fault.c, "copy-on-write between spaces"), and
 * two spaces can show one page at once only from a memfd: the entry's
 * contents move into an aobj (lib/pager/aobj.c), and the entry becomes a
 * view of it, which the child's entry then shares as any shared mapping.
 *
 *   1. The range is write-protected: a write meanwhile faults, and its
 *      fault waits for the map, which the caller holds.
 *   2. Each anon's bytes go to the aobj's page at the same offset: from
 *      its address (read without faulting, pmap's peek), from its frame
 *      (staged, being written, lent), or from its swap slot when another
 *      space holds the anon too.  A slot the entry alone holds is handed
 *      over with no I/O, once every copy has succeeded.
 *   3. Pages there that other spaces' anons need (shared since an
 *      earlier usrvm_fork) move to frames (map_rehome); the range closes
 *      and opens again as a view of the aobj; the amap goes, and with
 *      it the anons' pages.
 *
 * What the application sees does not change.  It costs a copy of each
 * resident page, which is counted resident twice until the amap goes.
 */
#include <errno.h>
#include <string.h>
#include <sys/uio.h>

#include "amap.h"
#include "anon.h"
#include "dup.h"
#include "fault/pmap.h"
#include "frame.h"
#include "map.h"
#include "object.h"
#include "page.h"
#include "pager/aobj.h"
#include "pager/pgio.h"
#include "pager/swap.h"
#include "usrvm_internal.h"

/*
 * Is anon's content a swap slot the entry alone holds (or a lost one),
 * to be handed over rather than copied?  own: the entry's amap is its
 * own (not shared with another space).
 */
static bool
share_handed(const struct vm_anon *anon, bool own)
{
	return anon->an_page == NULL && anon->an_swslot != 0 &&
	    (anon->an_swslot == SWSLOT_LOST || (own && anon->an_ref == 1));
}

/*
 * Copy anon's bytes into obj's page at off, unless share_handed.
 * => amap locked.  0, ENOMEM, or EIO (a slot could not be read).
 */
static int
share_copy(struct vm_object *obj, uint64_t off, struct vm_anon *anon,
    bool own)
{
	struct vm_page *pg = anon->an_page;
	uint64_t buf[PAGE_SIZE / sizeof(uint64_t)];
	const void *src = NULL;
	struct iovec iov;
	uint32_t f;
	int error;

	if (pg == NULL) {
		/* Evicted as zeros, or handed over later. */
		if (anon->an_swslot == 0 || share_handed(anon, own))
			return 0;
		/* Another space's too: read a copy. */
		if ((f = frame_alloc_warm()) == FRAME_NONE)
			return ENOMEM;
		iov.iov_base = (void *)frame_va(f);
		iov.iov_len = PAGE_SIZE;
		if ((error = pgio_swapv(false, anon->an_swslot, &iov, 1)) == 0)
			error = aobj_adopt(obj, off, iov.iov_base, 0);
		frame_free(f, true);
		return error;
	}
	if (!(pg->pg_flags & (PG_STAGED | PG_LOANED)) &&
	    pmap->peek(pg->pg_va, buf, PAGE_SIZE) == 0)
		src = buf;
	else if (pg->pg_frame != FRAME_NONE)
		src = (const void *)frame_va(pg->pg_frame);
	if (src == NULL)	/* the application dropped it: zeros */
		return 0;
	return aobj_adopt(obj, off, src, 0);
}

/*
 * What becomes of the slots of the entry's own swapped anons
 * (share_handed), once every copy is done: obj takes them (SLOTS_GIVE);
 * if that fails, obj gives them back (SLOTS_TAKE_BACK) before it goes, so
 * that it frees none of them; otherwise the anons let go of them
 * (SLOTS_LET_GO).  => amap locked.  0 or ENOMEM (giving).
 */
enum { SLOTS_GIVE, SLOTS_TAKE_BACK, SLOTS_LET_GO };

static int
share_slots(struct vm_map_entry *e, struct vm_object *obj, bool own,
    int how)
{
	size_t n = atop(e->end - e->start), s = 0;
	int error = 0;

	while (error == 0 &&
	    (s = amap_next_used(&e->aref, s, n - s)) != SIZE_MAX) {
		struct vm_anon *anon = amap_lookup(&e->aref, s);
		if (share_handed(anon, own) && how == SLOTS_LET_GO)
			anon->an_swslot = 0;
		else if (share_handed(anon, own))
			error = aobj_adopt(obj, ptoa(s), NULL,
			    how == SLOTS_GIVE ? anon->an_swslot : 0);
		if (++s >= n)
			break;
	}
	return error;
}

/* The anons' bytes, then their slots, to obj.  => amap locked. */
static int
share_contents(struct vm_map_entry *e, struct vm_object *obj, bool own)
{
	size_t n = atop(e->end - e->start), s = 0;
	int error = 0;

	while (error == 0 &&
	    (s = amap_next_used(&e->aref, s, n - s)) != SIZE_MAX) {
		error = share_copy(obj, ptoa(s), amap_lookup(&e->aref, s),
		    own);
		if (++s >= n)
			break;
	}
	if (error == 0 &&
	    (error = share_slots(e, obj, own, SLOTS_GIVE)) != 0)
		(void)share_slots(e, obj, own, SLOTS_TAKE_BACK);
	if (error == 0)
		(void)share_slots(e, obj, own, SLOTS_LET_GO);
	return error;
}

int
map_share_private(struct vm_map_entry *e)
{
	size_t len = e->end - e->start, n = atop(len);
	struct vm_amap *amap = e->aref.ar_amap;
	bool own = !(e->etype & UVM_ET_NEEDSCOPY);
	struct vm_object *obj;
	int error;

	KASSERT(e->object == NULL);
	if (e->etype & UVM_ET_COMMITTED)
		page_uncommit(n);	/* the aobj commits the same */
	if ((error = aobj_create(len, &obj)) != 0)
		goto fail;
	if (amap != NULL) {
		if ((error = pmap->wprotect(e->start, len)) != 0)
			goto fail_obj;
		amap_lock(amap);
		error = share_contents(e, obj, own);
		amap_unlock(amap);
		if (error != 0)
			goto fail_obj;
	}

	/* The range, as a view of obj.  Pages other spaces need go to
	 * frames first.  The pmap's errors past this point leave the range
	 * closed (the application gets SIGSEGV there): only a kernel out of
	 * memory gives one. */
	map_rehome(e, e->start, e->end);
	if ((error = pmap->remove(e->start, len)) != 0)
		usrvm_log(USRVM_LOG_ERR, "sharing [%#lx, %#lx): closing it "
		    "failed: %s", (unsigned long)e->start,
		    (unsigned long)e->end, strerror(error));
	dup_forget(e->start, len);
	if (amap != NULL)
		amap_unref(amap, e->aref.ar_pageoff, n, 0);
	e->object = obj;
	e->offset = 0;
	e->aref.ar_amap = NULL;
	e->aref.ar_pageoff = 0;
	e->etype &= ~(UVM_ET_COPYONWRITE | UVM_ET_NEEDSCOPY |
	    UVM_ET_COMMITTED);
	if ((error = pmap_enter_entry(e)) != 0)
		usrvm_log(USRVM_LOG_ERR, "sharing [%#lx, %#lx): opening it "
		    "failed: %s", (unsigned long)e->start,
		    (unsigned long)e->end, strerror(error));
	return 0;

fail_obj:
	obj->vo_pgops->pgo_detach(obj);
fail:
	if ((e->etype & UVM_ET_COMMITTED) && page_commit(n) != 0) {
		usrvm_log(USRVM_LOG_ERR, "sharing [%#lx, %#lx) failed, and "
		    "its commit could not be taken back",
		    (unsigned long)e->start, (unsigned long)e->end);
		e->etype &= ~UVM_ET_COMMITTED;
	}
	return error;
}
