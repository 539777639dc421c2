/*
 * fault.c: fault resolution (UVM's uvm_fault.c).
 *
 * The steps of uvm_fault, with this runtime's pmap:
 *
 *   1. find the entry (map read lock, hint, O(log n)) and check protection;
 *   2. needs-copy: the first fault of a private entry creates its amap
 *      (under the write lock), then refaults; after usrvm_fork, the first
 *      write copies the amap the entry shares (reads use it as it is);
 *   3. the fault-around window, from the entry's advice and a sequential
 *      streak detector;
 *   4. upper layer: an anon at the address (case 1) -> it is resident: a
 *      duplicate message, or a write-protect fault on an exclusive anon
 *      (un-protect in place); a write to an anon another amap holds too
 *      gets a new anon with a copy (case 1B), and a read of one mapped
 *      at another space's address moves its page here;
 *   5. lower layer: no anon (case 2).  An object's shared entry (a
 *      mapped file) has no upper layer at all: its pages come from the
 *      pager (pgo_get), and are mapped in this view write-protected
 *      unless written (fault_object).  A private view of an object
 *      maps them read-only, and a write promotes the page into a new
 *      anon of the entry (case 2B: fault_object_private).  Private
 *      memory's lower layer is zero fill:
 *      - read fault: the shared zero page, write-protected, over the
 *        empty slots of the window: no memory spent until a write;
 *      - write fault: new anons for the empty slots of the window, their
 *        pages installed in one UFFDIO_COPY from a zero source;
 *      - write-protect fault on a zero page: a new anon, the protection
 *        cleared: the kernel copies the zero page on the retry.
 *
 * Lock state through a fault: map (read) for the whole fault, so unmap
 * cannot run under it; amap locked only while slots are looked up and
 * changed, never across an ioctl.  While unlocked, the pages being
 * installed are PG_BUSY: a second fault on one of them is a duplicate
 * whose thread the busy owner wakes with the rest of its window.  A page
 * whose anon was discarded meanwhile is PG_RELEASED and the owner frees it.
 *
 * Lock order (usrvm_internal.h): map -> amap -> page wait channel.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>

#include "amap.h"
#include "anon.h"
#include "dup.h"
#include "fault.h"
#include "fault/pmap.h"
#include "fork.h"
#include "frame.h"
#include "map.h"
#include "object.h"
#include "page.h"
#include "pager/anon_pager.h"
#include "pager/pgio.h"
#include "pager/swap.h"
#include "pdaemon.h"
#include "space.h"
#include "stats.h"
#include "trace.h"
#include "usrvm_internal.h"

/* Fault-around limits, in pages. */
#define FA_CLUSTER	16	/* NORMAL: the aligned cluster around a fault */
#define FA_SEQ_START	64	/* SEQUENTIAL: first window */
#define FA_MAX_NORMAL	512	/* NORMAL with a sequential streak: 2 MiB */
#define FA_MAX		1024	/* SEQUENTIAL: 4 MiB */

_Static_assert(FA_MAX <= ANON_PAGER_MAXRUN, "windows fit the anon pager");

int
fault_sys_init(void)
{
	return anon_pager_init();
}

void
fault_sys_fini(void)
{
	anon_pager_fini();
}

/* ------------------------------------------------------------------ */
/* fault-around                                                        */
/* ------------------------------------------------------------------ */

/*
 * fault_lookback: how many slots just before `slot` hold resident anons,
 * up to max.  => amap locked.  Looks at 16 slots, then 32, 64...: a fault
 * with no resident neighbour behind it costs one small lookup.
 */
static size_t
fault_lookback(const struct vm_aref *aref, size_t slot, size_t max)
{
	struct vm_anon *buf[FA_MAX];
	size_t n = 0, chunk = FA_CLUSTER;

	max = MIN(max, slot);
	while (n < max) {
		size_t k = MIN(chunk, max - n);
		amap_lookups(aref, slot - n - k, buf, k);
		for (size_t i = k; i > 0; i--)
			if (buf[i - 1] == NULL || buf[i - 1]->an_page == NULL)
				return n + (k - i);
		n += k;
		chunk *= 2;
	}
	return n;
}

/*
 * fault_window: the pages to resolve together with the faulting one.
 * => amap locked.
 *
 * A run of resident pages just behind the fault means a sequential
 * stream: the window reaches forward twice as far as the run behind it
 * (so it doubles fault after fault, up to a limit by advice).  This needs
 * no per-entry state, so any number of threads can stream through one
 * entry at once.  With no run behind it, NORMAL fills the aligned cluster
 * around the fault; RANDOM only the page itself.
 */
static void
fault_window(struct vm_map_entry *e, uintptr_t va, uintptr_t *startp,
    size_t *npagesp)
{
	size_t slot = atop(va - e->start), back, n;
	uintptr_t start = va;

	switch (e->advice) {
	case USRVM_ADV_RANDOM:
		n = 1;
		break;
	case USRVM_ADV_SEQUENTIAL:
		back = fault_lookback(&e->aref, slot, FA_MAX / 2);
		n = MAX(2 * back, (size_t)FA_SEQ_START);
		break;
	default:
		back = fault_lookback(&e->aref, slot, FA_MAX_NORMAL / 2);
		if (back > 0) {
			n = MAX(2 * back, (size_t)FA_CLUSTER);
		} else {
			start = va & ~(ptoa(FA_CLUSTER) - 1);
			n = FA_CLUSTER;
		}
		break;
	}
	if (start < e->start)
		start = e->start;
	if (ptoa(n) > e->end - start)
		n = atop(e->end - start);
	*startp = start;
	*npagesp = n;
}

/* ------------------------------------------------------------------ */
/* amap creation (needs-copy)                                          */
/* ------------------------------------------------------------------ */

/*
 * The map lock, unless the faulting thread holds it already and lends it
 * (uvm_fault_lent).  => 0, or EDEADLK: a fork(2) holds every map lock,
 * and the fault is set aside until it is over (fork_lock_enter).
 */
static __thread bool fault_lent;

static int
fault_map_lock(struct vm_map *map, bool write)
{
	if (fault_lent)
		return 0;
	if (!fork_lock_enter())
		return EDEADLK;
	if (write)
		map_lock_write(map);
	else
		map_lock_read(map);
	fork_lock_exit();
	return 0;
}

static void
fault_map_unlock(struct vm_map *map, bool write)
{
	if (fault_lent)
		return;
	if (write)
		map_unlock_write(map);
	else
		map_unlock_read(map);
}

/*
 * fault_amap_copy: clear needs-copy on the entry at va (UVM's amap_copy
 * call in uvm_fault_check): with no amap yet, a new one covering the
 * whole entry (storage is sparse, so its size costs nothing); with an
 * amap shared with another space since usrvm_fork, a private copy of
 * the entry's part of it (map_amap_copy).
 * => map unlocked on entry and exit.  The caller refaults.
 */
static int
fault_amap_copy(struct usrvm_space *vs, uintptr_t va)
{
	struct vm_map *map = &vs->vs_map;
	struct vm_map_entry *e;
	int error = 0;

	if ((error = fault_map_lock(map, true)) != 0)
		return error;
	e = map_lookup(map, va);
	if (e != NULL && (e->etype & UVM_ET_NEEDSCOPY))
		error = map_amap_copy(e);
	fault_map_unlock(map, true);
	return error;
}

/* ------------------------------------------------------------------ */
/* zero fill                                                           */
/* ------------------------------------------------------------------ */

/*
 * INSTALL ERRORS.  What an install ioctl failing means: EEXIST, the page
 * is present (skipped).  EAGAIN with no progress: the kernel is in the
 * middle of a change of the address space (an application event not read
 * yet).  Anything else: the range went away under us (the application
 * unmapped it itself) or the kernel is short of memory.  In every case
 * the rest of the run is given up and its slots taken back; the faulting
 * thread is woken and faults again when the cause has passed, or gets
 * the kernel's own SIGSEGV if the range is gone.  The host program never
 * dies of it.  (The anon pager follows the same rules.)
 */

/*
 * fault_zero_read: map the zero page, write-protected, over the empty
 * slots of the window.  No anon is created: a zero page costs nothing
 * until the first write, which comes back as a write-protect fault.
 * => map read-locked; amap unlocked.
 *
 * The amap stays locked across the install: an anon whose page the page
 * daemon moved out of its address leaves that address empty, and only
 * the lock keeps a zero page from being put there over it.
 */
static void
fault_zero_read(struct vm_map_entry *e, uintptr_t start, size_t n)
{
	struct vm_anon *anons[FA_MAX];
	struct vm_amap *amap = e->aref.ar_amap;
	size_t slot = atop(start - e->start), i = 0, mapped = 0;

	amap_lock(amap);
	amap_lookups(&e->aref, slot, anons, n);

	/* Pages already present are skipped: UFFDIO_ZEROPAGE stops at them
	 * with EEXIST. */
	while (i < n) {
		size_t j = i, done;
		while (j < n && anons[j] == NULL)
			j++;
		while (i < j) {
			int error = pmap->zero(start + ptoa(i), ptoa(j - i),
			    &done);
			mapped += atop(done);
			i += atop(done);
			if (error == EEXIST)
				i++;		/* present: skip it */
			else if (error != 0 && (error != EAGAIN || done == 0))
				break;		/* INSTALL ERRORS */
		}
		i = MAX(i, j + 1);
	}
	amap_unlock(amap);
	CNT_ADD(pages_zero_mapped, mapped);
}

/*
 * fault_anon_alloc: n fresh anons, each with a busy page descriptor.
 * => never sleeps; returns how many pairs were made.
 */
static unsigned
fault_anon_alloc(struct vm_anon **v, unsigned n)
{
	struct vm_page *pages[FA_MAX];
	unsigned na, np;

	na = anon_alloc_batch(v, n);
	np = page_alloc_batch(pages, na);
	for (unsigned i = 0; i < np; i++) {
		v[i]->an_page = pages[i];
		pages[i]->pg_anon = v[i];
	}
	for (unsigned i = np; i < na; i++) {
		v[i]->an_ref = 0;
		anon_release(v[i]);
	}
	return np;
}

/*
 * fault_anon_discard: give back a fresh anon whose page never went in
 * (the caller gives its resident count back).  => amap locked if it was
 * added.
 */
static void
fault_anon_discard(struct vm_anon *anon)
{
	struct vm_page *pg = anon->an_page;

	anon->an_ref = 0;
	anon->an_page = NULL;
	if (pg->pg_flags & PG_BUSY)
		page_unbusy(pg);
	pg->pg_flags = 0;
	page_free(pg);
	anon_release(anon);
}

/*
 * RESIDENT COUNT.  An installed page is visible to every thread at once,
 * not only to the woken ones, so it is counted resident before its
 * install (page_reserve, which also enforces the budget) and uncounted
 * if the install fails: the count never lags behind what the application
 * can see.  A fault that cannot have the pages it needs parks
 * (pdaemon_park) and is not woken until the page daemon has freed some.
 */

/*
 * fault_install_done: the busy owner finished installing anon's page
 * (already counted resident).  => amap locked.  If the anon was
 * discarded meanwhile (PG_RELEASED), free it now; otherwise the page
 * joins the active queue.
 */
static void
fault_install_done(struct vm_anon *anon)
{
	struct vm_page *pg = anon->an_page;

	if (pg->pg_flags & PG_RELEASED) {
		anon_release(anon);
		return;
	}
	pg->pg_flags &= ~PG_PAGEIO;
	page_unbusy(pg);
	page_activate(pg);
}

/*
 * fault_zero_write: new anons for the empty slots of the window, filled
 * with zeros in one UFFDIO_COPY per run of empty slots.
 * => map read-locked; amap unlocked.  0, ENOMEM or FAULT_PARK; *startp
 *    and *np are narrowed to what was attempted.
 */
static int
fault_zero_write(struct vm_map_entry *e, uintptr_t va, uintptr_t *startp,
    size_t *np)
{
	struct vm_anon *anons[FA_MAX], *fresh[FA_MAX];
	bool installed[FA_MAX];
	struct vm_amap *amap = e->aref.ar_amap;
	uintptr_t start = *startp;
	size_t n = *np, nfresh, used = 0, filled = 0, granted, slot, i;

	/* Short of memory: the faulting page and what follows it only. */
	if ((granted = page_reserve(n, 1)) == 0)
		return FAULT_PARK;
	if (granted < n) {
		start = va;
		n = MIN(granted, atop(e->end - va));
		*startp = start;
		*np = n;
	}
	slot = atop(start - e->start);

	/* Allocate before locking, one per slot of the window; what is not
	 * used goes back to this thread's pool cache. */
	nfresh = fault_anon_alloc(fresh, (unsigned)n);
	if (nfresh == 0) {
		page_resident_add(-(long)granted);
		return ENOMEM;
	}

	amap_lock(amap);
	amap_lookups(&e->aref, slot, anons, n);
	for (i = 0; i < n; i++) {
		if (anons[i] != NULL || used == nfresh ||
		    amap_add(&e->aref, slot + i, fresh[used], false) != 0) {
			anons[i] = NULL;	/* not ours to install */
			continue;
		}
		anons[i] = fresh[used++];
		anons[i]->an_page->pg_va = start + ptoa(i);
	}
	amap_unlock(amap);
	while (used < nfresh)
		fault_anon_discard(fresh[--nfresh]);

	/* Fill the runs of our busy pages (installed[] says which went in).
	 * RESIDENT COUNT: counted first, the rest taken back below. */
	anon_pager_fill(start, anons, n, installed);

	/* Unbusy what went in; take back the slots that did not. */
	amap_lock(amap);
	for (i = 0; i < n; i++) {
		struct vm_anon *anon = anons[i];
		if (anon == NULL)
			continue;
		if (installed[i]) {
			anon->an_page->pg_flags |= PG_ZERO;
			fault_install_done(anon);
			filled++;
		} else if (anon->an_page->pg_flags & PG_RELEASED) {
			fault_anon_discard(anon);	/* slot already gone */
		} else {
			amap_unadd(&e->aref, slot + i);
			fault_anon_discard(anon);
		}
	}
	amap_unlock(amap);
	page_resident_add(-(long)(granted - filled));
	CNT_ADD(pages_filled, filled);
	return 0;
}

/*
 * fault_anon_claim: put a fresh anon (its page busy, counted resident)
 * in the empty slot of va.  => amap unlocked.  false: the slot is taken
 * (another thread's fault got there first) or the amap has no memory:
 * the anon and its resident count are given back.
 */
static bool
fault_anon_claim(struct vm_map_entry *e, struct vm_anon *anon, uintptr_t va)
{
	struct vm_amap *amap = e->aref.ar_amap;
	size_t slot = atop(va - e->start);

	amap_lock(amap);
	if (amap_lookup(&e->aref, slot) != NULL ||
	    amap_add(&e->aref, slot, anon, false) != 0) {
		amap_unlock(amap);
		fault_anon_discard(anon);
		page_resident_add(-1);
		return false;
	}
	anon->an_page->pg_va = va;
	amap_unlock(amap);
	return true;
}

/*
 * fault_promote: the first write to a lower-layer page mapped by a read
 * fault, write-protected: the zero page, or an object's page in a
 * private view.  A new anon takes the slot and the protection is
 * cleared; the kernel copies the page when the faulting thread retries
 * (UVM's case 2B, with the kernel's copy-on-write doing the copy).
 * Until it does, the anon's bytes are the lower layer's, so a page found
 * missing there meanwhile is refilled from the lower layer (fault_refill).
 * => map read-locked; amap unlocked.  0, ENOMEM, FAULT_PARK or ERESTART.
 */
static int
fault_promote(struct vm_map_entry *e, uintptr_t va)
{
	struct vm_amap *amap = e->aref.ar_amap;
	size_t slot = atop(va - e->start);
	struct vm_anon *anon;
	int error;

	if (page_reserve(1, 1) == 0)	/* RESIDENT COUNT */
		return FAULT_PARK;
	if (fault_anon_alloc(&anon, 1) != 1) {
		page_resident_add(-1);
		return ENOMEM;
	}
	if (!fault_anon_claim(e, anon, va))
		return ERESTART;	/* another thread got there first */

	error = pmap->unprotect(va, PAGE_SIZE);
	if (error != 0)
		page_resident_add(-1);

	amap_lock(amap);
	if (error == 0) {
		fault_install_done(anon);
	} else {
		if (!(anon->an_page->pg_flags & PG_RELEASED))
			amap_unadd(&e->aref, slot);
		fault_anon_discard(anon);
	}
	amap_unlock(amap);
	if (error == 0) {		/* before the thread can look */
		CNT_INC(faults_wp);
		if (e->object != NULL)
			CNT_INC(faults_cow);
	}
	pmap->wake(va, PAGE_SIZE);	/* counted first; on an error: refault */
	return 0;
}

/* ------------------------------------------------------------------ */
/* upper layer                                                         */
/* ------------------------------------------------------------------ */

/*
 * fault_put_back: bring a staged page (its bytes in a frame) back, at va.
 * A read of a clean page installs a write-protected copy (the page stays
 * clean: the first write will be seen), and so does any install of a
 * page shared with another space (its first write is a copy-on-write);
 * otherwise the frame's page itself moves in, writable, and the page is
 * dirty from now on.  va becomes the page's address.
 * => amap locked (a page moves in or out only under its owner's lock);
 *    the page is not busy.  0 or the pmap's error (refault).
 */
static int
fault_put_back(struct vm_anon *anon, uintptr_t va, int access, bool shared)
{
	struct vm_page *pg = anon->an_page;
	uint32_t f = pg->pg_frame;
	bool wp = shared || (!(access & USRVM_PROT_WRITE) &&
	    (pg->pg_flags & PG_CLEAN));
	bool copied = wp;	/* the frame still holds the page */
	size_t done;
	int error;

	if (wp) {
		error = pmap->copy(va, (const void *)frame_va(f), PAGE_SIZE,
		    PMAP_WP, &done);
	} else if ((error = pmap->stage_in(va, frame_va(f), PAGE_SIZE,
	    &done)) == EBUSY) {
		/* The frame's page is shared with a fork child (it was
		 * staged when the process forked): the kernel will not move
		 * it, so its bytes are copied in instead. */
		error = pmap->copy(va, (const void *)frame_va(f), PAGE_SIZE, 0,
		    &done);
		copied = true;
	}
	if (error == EEXIST) {
		/* A duplicate the kernel would not move holds these bytes
		 * at va (anon_stage_copy): it becomes the page again. */
		copied = true;
		dup_take(va);
		error = wp ? 0 : pmap->unprotect(va, PAGE_SIZE);
	}
	if (error != 0)
		return error;
	if (!wp)
		anon_dropswap(anon);
	frame_free(f, copied);
	pg->pg_frame = FRAME_NONE;
	pg->pg_flags &= ~PG_STAGED;
	pg->pg_va = va;
	return 0;
}

/*
 * Must the anon's page be mapped write-protected in this entry?  Yes
 * when it is shared with another space: the entry still shares its amap
 * (needs-copy), or another amap holds the anon too.
 */
static bool
fault_cow_shared(const struct vm_map_entry *e, const struct vm_anon *anon)
{
	return (e->etype & UVM_ET_NEEDSCOPY) || anon->an_ref > 1;
}

/*
 * fault_loan_break: the application came back to a page it lent
 * (usrvm_loan): it copies first.  The anon gets a new page with the lent
 * page's bytes, installed at va (write-protected as fault_put_back would
 * install it), and the lent page is its loan's alone (loan.c).
 * => map read-locked; amap locked on entry, unlocked on return.
 *    0, FAULT_PARK or ENOMEM.
 */
static int
fault_loan_break(struct vm_map_entry *e, struct vm_anon *anon, uintptr_t va,
    int access)
{
	struct vm_amap *amap = e->aref.ar_amap;
	struct vm_page *lent = anon->an_page, *pg;
	bool wp = fault_cow_shared(e, anon) || (!(access & USRVM_PROT_WRITE) &&
	    (lent->pg_flags & PG_CLEAN));
	size_t done;
	int error;

	if (page_reserve(1, 1) == 0) {	/* RESIDENT COUNT */
		amap_unlock(amap);
		return FAULT_PARK;
	}
	if (page_alloc_batch(&pg, 1) != 1) {
		page_resident_add(-1);
		amap_unlock(amap);
		return ENOMEM;
	}
	error = pmap->copy(va, (const void *)frame_va(lent->pg_frame),
	    PAGE_SIZE, wp ? PMAP_WP : 0, &done);
	if (error == EEXIST) {	/* a duplicate holds these bytes (EBUSY) */
		dup_take(va);
		error = wp ? 0 : pmap->unprotect(va, PAGE_SIZE);
	}
	if (error != 0) {
		pg->pg_flags = 0;
		page_free(pg);
		page_resident_add(-1);
	} else {
		lent->pg_anon = NULL;
		pg->pg_anon = anon;
		pg->pg_va = va;
		pg->pg_frame = FRAME_NONE;
		pg->pg_flags = wp ? (lent->pg_flags & PG_CLEAN) : 0;
		anon->an_page = pg;
		if (!wp)
			anon_dropswap(anon);
		page_activate(pg);
		CNT_INC(loan_copies);
	}
	amap_unlock(amap);
	pmap->wake(va, PAGE_SIZE);	/* on an error: refault */
	return 0;
}

/*
 * fault_reactivate: the application came back to a page the daemon had
 * taken away (the emulated reference bit).
 * => map read-locked; amap locked on entry, unlocked on return.
 */
static int
fault_reactivate(struct vm_map_entry *e, struct vm_anon *anon, uintptr_t va,
    int access)
{
	struct vm_amap *amap = e->aref.ar_amap;

	if (anon->an_page->pg_flags & PG_LOANED)
		return fault_loan_break(e, anon, va, access);
	if (fault_put_back(anon, va, access, fault_cow_shared(e, anon)) == 0) {
		page_activate(anon->an_page);
		CNT_INC(pd_reactivations);
		CNT_INC(faults_upper);
		trace_fault(va, TRACE_BACK);
	}
	amap_unlock(amap);
	pmap->wake(va, PAGE_SIZE);	/* on an error: refault */
	return 0;
}

/*
 * fault_pagein_window: the anons to read with the one at `slot`: those
 * that follow it with no page and the following swap slots, as many as
 * the entry's advice and the resident run behind the fault ask for
 * (a sequential stream reads ahead; a random fault reads one page).
 * => amap locked.  Returns how many (at least 1).
 */
static size_t
fault_pagein_window(struct vm_map_entry *e, size_t slot,
    struct vm_anon **anons)
{
	size_t back, ra = 1, n = 1, maxn = atop(e->end - e->start) - slot;

	switch (e->advice) {
	case USRVM_ADV_RANDOM:
		break;
	case USRVM_ADV_SEQUENTIAL:
		back = fault_lookback(&e->aref, slot, PGIO_MAXRUN / 2);
		ra = MAX(2 * back, (size_t)PGIO_MAXRUN / 4);
		break;
	default:
		back = fault_lookback(&e->aref, slot, PGIO_MAXRUN / 2);
		ra = MAX(2 * back, (size_t)1);
		break;
	}
	ra = MIN(MIN(ra, (size_t)PGIO_MAXRUN), maxn);
	if (ra > 1)
		amap_lookups(&e->aref, slot + 1, anons + 1, ra - 1);
	while (n < ra && anons[n] != NULL && anons[n]->an_page == NULL &&
	    anons[n]->an_swslot == anons[0]->an_swslot + n)
		n++;
	return n;
}

/*
 * fault_pagein: case 1 with the anon not resident: read it (and the run
 * after it) from swap into frames and install it; an anon whose page was
 * evicted as all zeros gets zeros.
 * => map read-locked; amap locked on entry, unlocked on return.
 *    0, FAULT_PARK, ENOMEM or EIO (the page is lost: SIGBUS).
 *
 * While the read runs, the pages are busy (PG_PAGEIO) and the amap is
 * unlocked; a discard of the range meanwhile releases them
 * (PG_RELEASED), and they are freed instead of installed.  Installing
 * happens with the amap locked, after that check.
 */
static int
fault_pagein(struct vm_map_entry *e, struct vm_anon *anon, uintptr_t va,
    int access)
{
	struct vm_amap *amap = e->aref.ar_amap;
	struct vm_anon *anons[PGIO_MAXRUN];
	struct vm_page *pages[PGIO_MAXRUN];
	struct iovec iov[PGIO_MAXRUN];
	size_t slot = atop(va - e->start), n, granted, npg, i;
	uint32_t swslot = anon->an_swslot;
	bool lost = false;
	int error = 0;

	if (swslot == SWSLOT_LOST) {
		amap_unlock(amap);
		return EIO;
	}
	anons[0] = anon;
	n = swslot == 0 ? 1 : fault_pagein_window(e, slot, anons);

	/* Memory: the budget, then descriptors and frames. */
	if ((granted = page_reserve(n, 1)) == 0) {
		amap_unlock(amap);
		return FAULT_PARK;
	}
	npg = page_alloc_batch(pages, (unsigned)granted);
	for (i = 0; i < npg; i++) {
		uint32_t f = FRAME_NONE;
		if (swslot != 0 && (f = frame_alloc_warm()) == FRAME_NONE)
			break;
		pages[i]->pg_frame = f;
	}
	page_resident_add(-(long)(granted - i));
	for (size_t k = i; k < npg; k++) {
		pages[k]->pg_flags = 0;
		page_free(pages[k]);
	}
	if ((n = i) == 0) {
		amap_unlock(amap);
		return npg == 0 ? ENOMEM : FAULT_PARK;
	}
	for (i = 0; i < n; i++) {
		struct vm_page *pg = pages[i];
		pg->pg_anon = anons[i];
		pg->pg_va = va + ptoa(i);
		/* Zeros go in like a zero fill (see map_discard_range). */
		pg->pg_flags = PG_BUSY |
		    (swslot != 0 ? PG_PAGEIO | PG_STAGED : 0);
		anons[i]->an_page = pg;
		iov[i].iov_base = (void *)frame_va(pg->pg_frame);
		iov[i].iov_len = PAGE_SIZE;
	}
	amap_unlock(amap);

	if (swslot != 0) {
		error = pgio_swapv(false, swslot, iov, (unsigned)n);
		if (error != 0) {
			CNT_INC(io_errors_read);
			usrvm_log(USRVM_LOG_ERR, "swap read of slot %u for "
			    "%#lx failed: %s", swslot, (unsigned long)va,
			    strerror(error));
		} else {
			CNT_ADD(pageins, n);
		}
	} else {
		error = anon_pager_refill(va);
	}

	amap_lock(amap);
	for (i = 0; i < n; i++) {
		struct vm_anon *a = anons[i];
		struct vm_page *pg = pages[i];
		if (pg->pg_flags & PG_RELEASED) {
			anon_release(a);
		} else if (error != 0 && i == 0 && swslot != 0) {
			/* Its only copy could not be read: lost. */
			swap_markbad(swslot, 1);
			a->an_swslot = SWSLOT_LOST;
			page_unbusy(pg);
			anon_page_free(a);
			CNT_INC(pages_lost);
			lost = true;
		} else if (error != 0) {
			/* Read-ahead (still on swap), or zeros not put in
			 * (refault). */
			page_unbusy(pg);
			anon_page_free(a);
		} else if (swslot == 0) {
			fault_install_done(a);
		} else {
			/* In the frame now, clean: install it.  Keeping
			 * the slot makes its eviction free; when free slots
			 * run short, they go to pages that need them. */
			pg->pg_flags |= PG_CLEAN;
			if (swap_nslots() - swap_used() < page_budget())
				anon_dropswap(a);
			pg->pg_flags &= ~(PG_PAGEIO | PG_FAULTED);
			page_unbusy(pg);
			if (fault_put_back(a, va + ptoa(i), i == 0 ? access :
			    USRVM_PROT_READ, fault_cow_shared(e, a)) == 0) {
				page_activate(pg);
			} else {
				/* Stays in its frame; the next fault on it
				 * installs it. */
				page_deactivate(pg);
			}
		}
	}
	amap_unlock(amap);
	if (lost) {
		/* Faults on the read-ahead pages waited for this read: they
		 * fault again and read their pages themselves. */
		if (n > 1)
			pmap->wake(va + PAGE_SIZE, ptoa(n - 1));
		return EIO;
	}
	CNT_INC(faults_upper);		/* counted before it goes on */
	trace_fault(va, TRACE_IN);
	pmap->wake(va, ptoa(n));
	return 0;
}

/* ------------------------------------------------------------------ */
/* copy-on-write between spaces (usrvm_fork)                           */
/* ------------------------------------------------------------------ */

/*
 * Where a shared anon's bytes are: an anon has one page, mapped at one
 * address (pg_va) or staged in a frame, however many spaces reference it
 * (docs/DESIGN.md, "Copy-on-write").  A read at another address moves the
 * page there; a write gives the writer a new anon with a copy.  Both go
 * through a frame, so that the runtime never reads the application's
 * addresses, where a page can vanish under it.
 */

/*
 * fault_home_lost: the application discarded a shared anon's page at its
 * address itself (madvise or munmap of managed memory outside usrvm).
 * What its swap slot holds is what is left; without one it reads as
 * zeros from now on.  => amap locked.
 */
static void
fault_home_lost(struct vm_anon *anon)
{
	struct vm_page *pg = anon->an_page;

	usrvm_log(USRVM_LOG_ERR, "the page at %#lx, shared since usrvm_fork, "
	    "was discarded outside usrvm", (unsigned long)pg->pg_va);
	if (!(pg->pg_flags & PG_CLEAN)) {
		anon_dropswap(anon);
		CNT_INC(pages_lost);
	}
	page_dequeue(pg);
	anon_page_free(anon);
}

/*
 * fault_cow_stage: get the bytes of a shared anon's page into a frame,
 * for a move or a copy at va.  A page mapped at another address moves to
 * a frame (staged).  One the kernel will not move (a private view of an
 * object, a read-only entry: EINVAL; shared with a fork(2) child: EBUSY)
 * stays where it is, and *copyp gets a frame with a copy of it, which the
 * caller frees (if `may_copy`: else the fault is over with FAULT_COPY).
 * The page staying put is what keeps copies bounded: a copy at va is an
 * anon of va's own, counted against the budget and paged like any other,
 * where moving the bytes would leave an uncounted duplicate at the old
 * address (anon_stage_copy).  A write where the page is mapped takes it
 * away in any case, copied if it must be: the duplicate becomes the new
 * anon's page at once (fault_cow_copy).
 * => amap locked; true if the bytes are in a frame (still locked), else
 *    the fault is over: amap unlocked, *errorp set (FAULT_PARK, ERESTART,
 *    FAULT_COPY, or 0: refault).
 */
static bool
fault_cow_stage(struct vm_amap *amap, struct vm_anon *anon, uintptr_t va,
    bool may_copy, uint32_t *copyp, int *errorp)
{
	int error;

	*copyp = FRAME_NONE;
	if (anon->an_page->pg_flags & PG_STAGED)
		return true;
	if (anon->an_page->pg_va == va) {
		/* A write where the page is: the new anon's page goes here,
		 * so this one leaves, copied if it must be; the duplicate it
		 * leaves becomes the new anon's page at once. */
		error = anon_stage_copy(anon);
	} else if ((error = anon_stage_out(anon)) == EINVAL ||
	    error == EBUSY)
		error = may_copy ? anon_peek(anon, copyp) : FAULT_COPY;
	if (error == 0)
		return true;
	if (error == FAULT_COPY) {
		*errorp = FAULT_COPY;
	} else if (error == ENOENT) {
		fault_home_lost(anon);
		*errorp = ERESTART;
	} else if (error == ENOMEM) {
		*errorp = FAULT_PARK;	/* frames are short: evict first */
	} else {
		pmap->wake(va, PAGE_SIZE);
		*errorp = 0;
	}
	amap_unlock(amap);
	return false;
}

/* Where the bytes fault_cow_stage got are. */
static const void *
fault_cow_src(const struct vm_anon *anon, uint32_t copy)
{
	return (const void *)frame_va(copy != FRAME_NONE ? copy :
	    anon->an_page->pg_frame);
}

/*
 * fault_cow_copy: give the entry's slot at va a new anon with a copy of
 * anon's bytes at src (a frame: fault_cow_stage), installed writable;
 * the old anon keeps its page for the others.
 * => amap locked (kept).  0, FAULT_PARK (the budget is full), ENOMEM,
 *    or the pmap's error (refault).
 */
static int
fault_cow_copy(struct vm_map_entry *e, struct vm_anon *anon, uintptr_t va,
    const void *src)
{
	struct vm_anon *na;
	size_t done;
	int error;

	if (page_reserve(1, 1) == 0)	/* RESIDENT COUNT */
		return FAULT_PARK;
	if (fault_anon_alloc(&na, 1) != 1) {
		page_resident_add(-1);
		return ENOMEM;
	}
	error = pmap->copy(va, src, PAGE_SIZE, 0, &done);
	if (error == EEXIST) {
		/* A duplicate the kernel would not move holds the old
		 * anon's bytes at va (anon_stage_copy): the new anon takes
		 * it over. */
		dup_take(va);
		error = pmap->unprotect(va, PAGE_SIZE);
	}
	if (error != 0) {
		fault_anon_discard(na);
		page_resident_add(-1);
		return error;
	}
	na->an_page->pg_va = va;
	(void)amap_add(&e->aref, atop(va - e->start), na, true);
	anon_unref(anon);		/* others hold it still */
	fault_install_done(na);
	CNT_INC(faults_cow);
	return 0;
}

/*
 * fault_cow_ahead: after a copy-on-write at va, how many of the pages
 * after it to copy too.  A write stream through memory shared since
 * usrvm_fork (the pages just behind va are this entry's own already)
 * would take one fault per page: the window reaches twice as far as the
 * run of own pages behind, up to FA_COW_MAX, as the zero-fill window
 * does.  A lost bet costs a copy, never data.  => amap locked.
 */
#define FA_COW_MAX	64

static size_t
fault_cow_ahead(const struct vm_map_entry *e, uintptr_t va)
{
	size_t slot = atop(va - e->start), back = 0;
	struct vm_anon *a;

	while (back < FA_COW_MAX / 2 && back < slot &&
	    (a = amap_lookup(&e->aref, slot - back - 1)) != NULL &&
	    a->an_ref == 1 && a->an_page != NULL &&
	    !(a->an_page->pg_flags & PG_CLEAN))
		back++;
	return MIN(2 * back, atop(e->end - va) - 1);
}

/*
 * fault_cow_promote: a write to an anon another amap holds too (UVM's
 * fault case 1B), or a read of one whose page cannot move here
 * (fault_cow_move, with the copy it made): the faulting slot gets a new
 * anon with a copy of the page, installed writable (fault_cow_copy); on
 * a write, so do the next pages of a write stream that are shared the
 * same way (fault_cow_ahead).
 * => map read-locked; amap locked on entry, unlocked on return.
 *    0, ENOMEM, FAULT_PARK or ERESTART.
 */
static int
fault_cow_promote(struct vm_map_entry *e, struct vm_anon *anon, uintptr_t va,
    uint32_t copy)
{
	struct vm_amap *amap = e->aref.ar_amap;
	size_t n = 0, i;
	int error;

	if (copy == FRAME_NONE &&
	    !fault_cow_stage(amap, anon, va, true, &copy, &error))
		return error;
	error = fault_cow_copy(e, anon, va, fault_cow_src(anon, copy));
	if (copy != FRAME_NONE)
		frame_free(copy, true);	/* full of the copy */
	else if (error == 0)
		n = fault_cow_ahead(e, va);
	if (error != 0) {
		amap_unlock(amap);
		if (error == FAULT_PARK || error == ENOMEM)
			return error;
		pmap->wake(va, PAGE_SIZE);	/* refault */
		return 0;
	}
	for (i = 1; i <= n; i++) {
		uintptr_t a_va = va + ptoa(i);
		struct vm_anon *a = amap_lookup(&e->aref, atop(a_va - e->start));
		if (a == NULL || a->an_ref < 2 || a->an_page == NULL ||
		    (a->an_page->pg_flags & PG_BUSY))
			break;
		if (!(a->an_page->pg_flags & PG_STAGED) &&
		    anon_stage_out(a) != 0)
			break;
		if (fault_cow_copy(e, a, a_va, fault_cow_src(a, FRAME_NONE))
		    != 0)
			break;
	}
	amap_unlock(amap);
	CNT_ADD(pages_filled, i - 1);
	pmap->wake(va, PAGE_SIZE);
	return 0;
}

/*
 * fault_cow_move: a read at va of an anon whose page is mapped at
 * another address of a space it is shared with: the page moves here,
 * write-protected; the other address faults when it is used again.  A
 * page that cannot move is copied: va gets an anon of its own
 * (fault_cow_promote), after its entry gets an amap of its own (a slot
 * of an amap the spaces share is theirs both).
 * => map read-locked; amap locked on entry, unlocked on return.
 */
static int
fault_cow_move(struct vm_map_entry *e, struct vm_anon *anon, uintptr_t va,
    int access)
{
	uint32_t copy;
	int error;

	if (!fault_cow_stage(e->aref.ar_amap, anon, va,
	    !(e->etype & UVM_ET_NEEDSCOPY), &copy, &error))
		return error;
	if (copy != FRAME_NONE)
		return fault_cow_promote(e, anon, va, copy);
	CNT_INC(faults_cow_move);
	return fault_reactivate(e, anon, va, access);
}

/*
 * fault_refill: the page of a resident anon is missing at its address: a
 * duplicate message, or the application dropped the page and its event
 * is on its way, or (a private view of an object) the kernel had not
 * made its copy of the object's page yet (fault_promote) when that page
 * was punched out.  Put the lower layer's bytes there: zeros, or the
 * object's page.  => 0, EEXIST (the page is there), or an error (EIO,
 * ENXIO: the object's page is lost; others: refault).
 */
static int
fault_refill(struct vm_map_entry *e, uintptr_t va)
{
	struct vm_object *obj = e->object;
	uint64_t off = e->offset + (va - e->start);
	struct vm_page *pg;
	unsigned n = 1;
	size_t done;
	int error;

	if (obj == NULL)
		return anon_pager_refill(va);
	do {
		pthread_mutex_lock(&obj->vo_lock);
		error = obj->vo_pgops->pgo_get(obj, off, &pg, &n, 0,
		    USRVM_PROT_READ, 0);
	} while (error == ERESTART);
	if (error != 0)
		return error;
	error = pmap->copy(va, object_window(obj, off), PAGE_SIZE, 0, &done);
	pthread_mutex_lock(&obj->vo_lock);
	page_unbusy(pg);
	page_activate(pg);
	pthread_mutex_unlock(&obj->vo_lock);
	return error;
}

/*
 * fault_upper: case 1, an anon holds the faulting slot.
 * => map read-locked; amap locked on entry, unlocked on return.
 *
 * Its page is either busy (being installed or written: its owner wakes
 * the faulting thread), staged (the daemon took it away: put it back),
 * mapped, or absent (page it in).  A resident anon that raises a
 * missing-page fault is either a duplicate message (two threads faulted
 * on the page, the first fault already installed it) or a page the
 * application discarded whose REMOVE event is still being handled.
 * Installing zeros tells them apart: EEXIST means the page is there;
 * otherwise the page was discarded and zeros are its correct contents.
 */
static int
fault_upper(struct vm_map_entry *e, struct vm_anon *anon, uintptr_t va,
    int access, int ftype)
{
	struct vm_amap *amap = e->aref.ar_amap;
	struct vm_page *pg = anon->an_page;
	int error;

	if (pg == NULL)
		return fault_pagein(e, anon, va, access);
	if ((pg->pg_flags & PG_BUSY) && pg->pg_va != va) {
		/* A page shared with another space, busy at its address
		 * there: wait for it, then start again.  But not for one the
		 * page daemon is copying out (pd_stage_copy: under I/O, not
		 * staged yet), which waits for a fault thread to read its
		 * REMOVE event: refault instead, rather than sleep here. */
		if ((pg->pg_flags & (PG_PAGEIO | PG_STAGED)) == PG_PAGEIO) {
			amap_unlock(amap);
			pmap->wake(va, PAGE_SIZE);
			return 0;
		}
		page_wait(pg, amap_lockptr(amap));
		return ERESTART;
	}
	if (pg->pg_flags & PG_BUSY) {
		/* Being installed (its owner wakes the whole window) or
		 * written to swap (the daemon wakes us when done). */
		if (pg->pg_flags & PG_PAGEIO)
			pg->pg_flags |= PG_FAULTED;
		amap_unlock(amap);
		CNT_INC(faults_dup);
		return 0;
	}
	if ((access & USRVM_PROT_WRITE) && anon->an_ref > 1)
		return fault_cow_promote(e, anon, va, FRAME_NONE);
	if (pg->pg_flags & PG_STAGED)
		return fault_reactivate(e, anon, va, access);
	if (pg->pg_va != va)
		return fault_cow_move(e, anon, va, access);
	if (ftype == FAULT_WP) {
		/* The anon is this slot's alone.  A clean page becomes
		 * dirty: its swap copy is stale from now on. */
		KASSERT(anon->an_ref == 1);
		anon_dropswap(anon);
		amap_unlock(amap);
		CNT_INC(faults_wp);
		(void)pmap->unprotect(va, PAGE_SIZE);
		pmap->wake(va, PAGE_SIZE);	/* on an error: refault */
		return 0;
	}

	pg->pg_flags |= PG_BUSY;
	amap_unlock(amap);
	error = fault_refill(e, va);
	if (error == EEXIST)
		CNT_INC(faults_dup);
	else if (error == 0)
		CNT_INC(faults_upper);
	amap_lock(amap);
	if (pg->pg_flags & PG_RELEASED)
		anon_release(anon);
	else {
		if (error == 0)
			anon_dropswap(anon);	/* new bytes now */
		page_unbusy(pg);
	}
	amap_unlock(amap);
	/* Only now: a fault of the woken thread that found the page still
	 * busy would count on this owner to wake it (above). */
	if (error != FAULT_PARK)	/* parked: the daemon wakes it */
		pmap->wake(va, PAGE_SIZE);	/* on an error: refault */
	/* Lost: SIGBUS; the budget full: wait for the daemon (a refault
	 * now would only spin); anything else: refault. */
	return error == EIO || error == ENXIO || error == FAULT_PARK ?
	    error : 0;
}

/* ------------------------------------------------------------------ */
/* lower layer: an object's pages (shared entries)                     */
/* ------------------------------------------------------------------ */

#define FO_WINDOW	256	/* pages one object fault may map */

/*
 * fault_object_wp: the first write through a view to an object's page,
 * mapped write-protected: the page becomes dirty, then writable here.
 *
 * A write stream (the pages just before were written too) would take one
 * such fault per page: the resident clean pages after it, as many as
 * twice the run of dirty pages behind it (up to FO_WP_AROUND), become
 * dirty and writable with it, on the bet that the stream goes on.  A lost
 * bet costs the write-back of pages that did not change, never data.
 * => map read-locked.  0 or ERESTART.
 */
#define FO_WP_AROUND	64

static int
fault_object_wp(struct vm_map_entry *e, uint64_t off, uintptr_t va)
{
	struct vm_object *obj = e->object;
	struct vm_page *pg, *run[1 + FO_WP_AROUND];
	size_t back = 0, n = 1, max;

	pthread_mutex_lock(&obj->vo_lock);
	if ((pg = object_lookup(obj, off)) == NULL) {
		/* Evicted since: the retry reads it in again. */
		pthread_mutex_unlock(&obj->vo_lock);
		pmap->wake(va, PAGE_SIZE);
		return 0;
	}
	if (pg->pg_flags & PG_BUSY) {		/* being written back */
		page_wait(pg, &obj->vo_lock);
		return ERESTART;
	}
	run[0] = pg;
	while (back < FO_WP_AROUND / 2 && ptoa(back) < va - e->start &&
	    (pg = object_lookup(obj, off - ptoa(back + 1))) != NULL &&
	    !(pg->pg_flags & PG_CLEAN))
		back++;
	max = MIN(2 * back, atop(e->end - va) - 1);
	while (n <= max && (pg = object_lookup(obj, off + ptoa(n))) != NULL &&
	    (pg->pg_flags & (PG_BUSY | PG_CLEAN)) == PG_CLEAN)
		run[n++] = pg;
	/* Dirty first, and busy until writable here: a write-back in
	 * between would protect them again and call them clean. */
	for (size_t i = 0; i < n; i++) {
		object_page_dirty(obj, run[i]);
		run[i]->pg_flags |= PG_BUSY;
	}
	pthread_mutex_unlock(&obj->vo_lock);
	/* Failing (an application event pending): the retry faults again. */
	(void)pmap->unprotect(va, ptoa(n));
	pthread_mutex_lock(&obj->vo_lock);
	for (size_t i = 0; i < n; i++)
		page_unbusy(run[i]);
	pthread_mutex_unlock(&obj->vo_lock);
	pmap->wake(va, PAGE_SIZE);
	CNT_INC(faults_wp);
	return 0;
}

/*
 * Map n object pages at va, passing over any mapped here already: the
 * kernel stops short of such a page (EAGAIN with progress), then refuses
 * it (EEXIST).  Any other error (an application event pending): what is
 * left faults again.
 */
static void
fault_object_map(uintptr_t va, size_t n, int flags)
{
	size_t done, skip;
	int error;

	while (n > 0 && (error = pmap->map_object(va, ptoa(n), flags,
	    &done)) != 0) {
		if (error == EEXIST)
			skip = atop(done) + 1;
		else if (error == EAGAIN && done > 0)
			skip = atop(done);
		else
			return;
		va += ptoa(skip);
		n -= skip;
	}
}

/*
 * fault_object_unmark: the page at off will not come (its read failed, or
 * it is past the end of the file): the faulting thread gets SIGBUS from a
 * poisoned page-table entry (trap.c), which the kernel will not put over
 * the write-protect marker a view keeps where a page was punched out.
 * Clear the marker first.  No page can be mapped there meanwhile: none is
 * resident, and none comes in without vo_lock.
 */
static void
fault_object_unmark(struct vm_object *obj, uint64_t off, uintptr_t va)
{
	pthread_mutex_lock(&obj->vo_lock);
	if (object_lookup(obj, off) == NULL)
		(void)pmap->unprotect(va, PAGE_SIZE);
	pthread_mutex_unlock(&obj->vo_lock);
}

/* The object's pages[0..n), at va and after, are mapped: unbusy them,
 * and wake the faulting thread with the rest of the window. */
static void
fault_object_done(struct vm_object *obj, uintptr_t va,
    struct vm_page **pages, unsigned n)
{
	pthread_mutex_lock(&obj->vo_lock);
	for (unsigned i = 0; i < n; i++) {
		page_unbusy(pages[i]);
		page_activate(pages[i]);
	}
	pthread_mutex_unlock(&obj->vo_lock);
	pmap->wake(va, ptoa(n));
	CNT_INC(faults_lower);
	CNT_ADD(pages_filled, n);
}

/*
 * fault_object: a fault in an object's shared entry: the pager brings
 * the page in (with its read-ahead, or the resident pages after it), and
 * they are mapped in this view, write-protected, but for the faulting
 * page of a write, which is made dirty first.
 * => map read-locked.  0, ERESTART, FAULT_PARK, ENXIO (past the end of
 *    the file: SIGBUS), EIO or ENOMEM.
 */
static int
fault_object(struct vm_map_entry *e, uintptr_t va, int access, int ftype)
{
	struct vm_object *obj = e->object;
	uint64_t off = e->offset + (va - e->start);
	struct vm_page *pages[FO_WINDOW];
	unsigned n = (unsigned)MIN(FO_WINDOW, atop(e->end - va));
	bool write = (access & USRVM_PROT_WRITE) != 0;
	int flags = e->advice == USRVM_ADV_RANDOM ? PGO_RANDOM :
	    e->advice == USRVM_ADV_SEQUENTIAL ? PGO_SEQUENTIAL : 0;
	int error;

	if (ftype == FAULT_WP)
		return fault_object_wp(e, off, va);
	pthread_mutex_lock(&obj->vo_lock);
	if ((error = obj->vo_pgops->pgo_get(obj, off, pages, &n, 0, access,
	    flags)) != 0) {
		if (error == EIO || error == ENXIO)
			fault_object_unmark(obj, off, va);
		return error;
	}
	if (write) {
		pthread_mutex_lock(&obj->vo_lock);
		object_page_dirty(obj, pages[0]);
		pthread_mutex_unlock(&obj->vo_lock);
	}
	fault_object_map(va, 1, write ? 0 : PMAP_WP);
	fault_object_map(va + PAGE_SIZE, n - 1, PMAP_WP);
	fault_object_done(obj, va, pages, n);
	return 0;
}

/*
 * fault_object_map_private: map the object's pages [va, va + n pages) in
 * a private view, read-only (write-protected: a write must come to the
 * runtime, not make the kernel's own copy), over the slots with no anon.
 * The amap stays locked across the install, so no page is put over a
 * slot an anon takes meanwhile (fault_zero_read's rule).
 * => map read-locked; the pages busy.
 */
static void
fault_object_map_private(struct vm_map_entry *e, uintptr_t va, size_t n)
{
	struct vm_amap *amap = e->aref.ar_amap;
	struct vm_anon *anons[FO_WINDOW];
	size_t i = 0, j;

	amap_lock(amap);
	amap_lookups(&e->aref, atop(va - e->start), anons, n);
	while (i < n) {
		for (j = i; j < n && anons[j] == NULL; j++)
			continue;
		if (j > i)
			fault_object_map(va + ptoa(i), j - i, PMAP_WP);
		i = j + 1;
	}
	amap_unlock(amap);
}

/*
 * fault_object_cow: a write to va, in a private view, with no anon there
 * and the object's page src not mapped: a new anon (reserved and
 * allocated by the caller, busy) takes the slot, installed writable with
 * a copy of src (UVM's case 2B).  Another thread's anon there first:
 * this one goes back, and the woken thread finds that one.
 * => map read-locked; amap unlocked.  The resident count is taken back
 *    on failure.
 */
static void
fault_object_cow(struct vm_map_entry *e, struct vm_anon *anon, uintptr_t va,
    const void *src)
{
	struct vm_amap *amap = e->aref.ar_amap;
	size_t slot = atop(va - e->start), done;
	int error;

	if (!fault_anon_claim(e, anon, va))
		return;
	error = pmap->copy(va, src, PAGE_SIZE, 0, &done);
	if (error == EEXIST)	/* mapped read-only by a read meanwhile */
		error = pmap->unprotect(va, PAGE_SIZE);
	amap_lock(amap);
	if (error == 0) {
		fault_install_done(anon);
		CNT_INC(faults_cow);
	} else {
		if (!(anon->an_page->pg_flags & PG_RELEASED))
			amap_unadd(&e->aref, slot);
		fault_anon_discard(anon);
		page_resident_add(-1);
	}
	amap_unlock(amap);
}

/*
 * fault_object_private: a missing or minor fault in a private view of an
 * object, with no anon at va (case 2).  The pager brings the page in
 * with its window (as for fault_object); a write gives va its own copy
 * (fault_object_cow), and the rest is mapped read-only where no anon is.
 * => map read-locked.  0, ERESTART, FAULT_PARK, ENXIO (past the end of
 *    the file: SIGBUS), EIO or ENOMEM.
 */
static int
fault_object_private(struct vm_map_entry *e, uintptr_t va, int access)
{
	struct vm_object *obj = e->object;
	uint64_t off = e->offset + (va - e->start);
	struct vm_page *pages[FO_WINDOW];
	struct vm_anon *anon = NULL;
	unsigned n = (unsigned)MIN(FO_WINDOW, atop(e->end - va)), first = 0;
	int flags = e->advice == USRVM_ADV_RANDOM ? PGO_RANDOM :
	    e->advice == USRVM_ADV_SEQUENTIAL ? PGO_SEQUENTIAL : 0;
	int error;

	if (access & USRVM_PROT_WRITE) {
		if (page_reserve(1, 1) == 0)	/* RESIDENT COUNT */
			return FAULT_PARK;
		if (fault_anon_alloc(&anon, 1) != 1) {
			page_resident_add(-1);
			return ENOMEM;
		}
	}
	pthread_mutex_lock(&obj->vo_lock);
	if ((error = obj->vo_pgops->pgo_get(obj, off, pages, &n, 0,
	    USRVM_PROT_READ, flags)) != 0) {
		if (anon != NULL) {
			fault_anon_discard(anon);
			page_resident_add(-1);
		}
		if (error == EIO || error == ENXIO)
			fault_object_unmark(obj, off, va);
		return error;
	}
	if (anon != NULL) {
		fault_object_cow(e, anon, va, object_window(obj, off));
		first = 1;
	}
	fault_object_map_private(e, va + ptoa(first), n - first);
	fault_object_done(obj, va, pages, n);
	return 0;
}

/* ------------------------------------------------------------------ */
/* uvm_fault                                                           */
/* ------------------------------------------------------------------ */

/* A fault that found the budget full: its thread waits for the daemon. */
static int
fault_park(int error, uintptr_t va)
{
	if (error != FAULT_PARK)
		return error;
	pdaemon_park(va);
	return 0;
}

int
uvm_fault(struct usrvm_space *vs, uintptr_t va, int access, int ftype)
{
	struct vm_map *map = &vs->vs_map;
	struct vm_map_entry *e;
	struct vm_anon *anon;
	struct vm_amap *amap;
	uintptr_t start = va;
	size_t n = 1;
	int error;

	va = trunc_page(va);
ReFault:
	/* Step 1: the entry, and protection.  locked: map (read) */
	if ((error = fault_map_lock(map, false)) != 0)
		return error;
	e = map_lookup(map, va);
	if (e == NULL) {
		fault_map_unlock(map, false);
		return EFAULT;
	}
	/* Write implies read, as in the page tables of x86 (and the kernel
	 * lets such a read through to us). */
	if (((e->protection & USRVM_PROT_WRITE ? USRVM_PROT_ALL :
	    e->protection) & access) != access) {
		fault_map_unlock(map, false);
		return EACCES;
	}

	/* An object's shared entry: its pages are all there is. */
	if (entry_shares_object(e)) {
		error = fault_object(e, va, access, ftype);
		fault_map_unlock(map, false);
		if (error == ERESTART)
			goto ReFault;
		return fault_park(error, va);
	}

	/* Step 2: needs-copy.  Any first fault of private memory creates
	 * the amap (UVM waits for the first write in a private view of an
	 * object; amaps are sparse here, so waiting saves nothing).  An
	 * amap shared with another space (usrvm_fork) is copied on the
	 * first write; reads are served from it, write-protected. */
	if ((e->etype & UVM_ET_NEEDSCOPY) &&
	    (e->aref.ar_amap == NULL || (access & USRVM_PROT_WRITE))) {
		fault_map_unlock(map, false);
		if ((error = fault_amap_copy(vs, va)) != 0)
			return error;
		goto ReFault;
	}
	amap = e->aref.ar_amap;
	KASSERT(amap != NULL);

	/* Step 3: upper layer.  locked: map (read), amap */
	amap_lock(amap);
	anon = amap_lookup(&e->aref, atop(va - e->start));
	if (anon != NULL) {
		error = fault_upper(e, anon, va, access, ftype);
		fault_map_unlock(map, false);
		if (error == FAULT_COPY && (error = fault_amap_copy(vs,
		    va)) == 0)
			goto ReFault;
		if (error == ERESTART)
			goto ReFault;
		return fault_park(error, va);
	}
	if (ftype == FAULT_MISSING)
		fault_window(e, va, &start, &n);
	amap_unlock(amap);

	/* Step 4: lower layer: an object's page, or zero fill.  locked:
	 * map (read) */
	if (ftype == FAULT_WP || e->object != NULL) {
		error = ftype == FAULT_WP ? fault_promote(e, va) :
		    fault_object_private(e, va, access);
		fault_map_unlock(map, false);
		if (error == ERESTART)
			goto ReFault;
		return fault_park(error, va);
	}
	if (access & USRVM_PROT_WRITE)
		error = fault_zero_write(e, va, &start, &n);
	else
		fault_zero_read(e, start, n), error = 0;
	if (error == 0) {
		CNT_INC(faults_zero);	/* counted before it goes on */
		trace_fault(va, TRACE_ZERO);
		pmap->wake(start, ptoa(n));
	}
	fault_map_unlock(map, false);
	return fault_park(error, va);
}


int
uvm_fault_lent(struct usrvm_space *vs, uintptr_t va, int access, int ftype)
{
	int error;

	fault_lent = true;
	error = uvm_fault(vs, va, access, ftype);
	fault_lent = false;
	return error;
}
