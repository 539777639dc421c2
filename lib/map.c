/*
 * map.c: address maps (UVM's uvm_map.c, the entry half; the tree is in
 * map_tree.c).
 *
 * Every operation that changes a map follows OpenBSD's pattern:
 *   1. allocate the entries it may need (clipping needs up to two) before
 *      taking the lock;
 *   2. under the write lock, change the tree and the pmap, and drop the
 *      amap references of the entries that die (their anons are freed
 *      before the address range can be mapped again: the page daemon
 *      finds pages by their address, and must never take a page of a
 *      new mapping for one of an old one); the entries go on a
 *      dead-entry queue;
 *   3. after unlocking, free the dead entries (and, once there are
 *      objects, drop their object references: that may start I/O, and
 *      nobody should wait for it while holding the map).
 *
 * Commit accounting: each entry commits its size when made and gives it
 * back when it dies (page_commit).
 */
#include <errno.h>
#include <string.h>

#include "amap.h"
#include "anon.h"
#include "dup.h"
#include "fault/pmap.h"
#include "fault/trap.h"
#include "frame.h"
#include "kmem.h"
#include "map.h"
#include "object.h"
#include "page.h"
#include "space.h"
#include "stats.h"
#include "usrvm_internal.h"

static struct pool entry_pool;

int
map_sys_init(void)
{
	pool_init(&entry_pool, "map entry", sizeof(struct vm_map_entry),
	    64, 512);
	return 0;
}

void
map_sys_fini(void)
{
	pool_destroy(&entry_pool);
}

/* ------------------------------------------------------------------ */
/* locking                                                             */
/* ------------------------------------------------------------------ */

void
map_lock_read(struct vm_map *map)
{
	pthread_rwlock_rdlock(&map->m_lock);
}

void
map_unlock_read(struct vm_map *map)
{
	pthread_rwlock_unlock(&map->m_lock);
}

void
map_lock_write(struct vm_map *map)
{
	pthread_rwlock_wrlock(&map->m_lock);
}

void
map_unlock_write(struct vm_map *map)
{
	atomic_fetch_add_explicit(&map->m_version, 1, memory_order_release);
	pthread_rwlock_unlock(&map->m_lock);
}

static int
map_lock_init(struct vm_map *map)
{
	pthread_rwlockattr_t attr;
	int error;

	pthread_rwlockattr_init(&attr);
	/* Writers (map changes) must not starve behind a stream of faults. */
	pthread_rwlockattr_setkind_np(&attr,
	    PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	error = pthread_rwlock_init(&map->m_lock, &attr);
	pthread_rwlockattr_destroy(&attr);
	return error;
}

int
map_init(struct vm_map *map, uintptr_t min, uintptr_t max)
{
	int error;

	if ((error = map_lock_init(map)) != 0)
		return error;
	map_tree_init(&map->m_tree, min, max);
	atomic_store(&map->m_version, 0);
	atomic_store(&map->m_hint, NULL);
	return 0;
}

/* ------------------------------------------------------------------ */
/* entries                                                             */
/* ------------------------------------------------------------------ */

static struct vm_map_entry *
entry_alloc(void)
{
	bool slow = false;
	struct vm_map_entry *e = pool_get(&entry_pool, &slow);

	if (e != NULL) {
		CNT_INC(map_entries);
		if (slow)
			pool_slowdown();
	}
	return e;
}

static void
entry_free(struct vm_map_entry *e)
{
	if (e == NULL)
		return;
	pool_put(&entry_pool, e);
	CNT_ADD(map_entries, -1);
}

/*
 * entry_copy: make dst a copy of src's mapping, linked into nothing yet
 * (UVM's uvm_mapent_copy).  No reference is taken: the caller splits the
 * amap reference between the two (clipping).
 */
static void
entry_copy(struct vm_map_entry *dst, const struct vm_map_entry *src)
{
	memcpy(dst, src, sizeof(*dst));
	memset(&dst->tnode, 0, sizeof(dst->tnode));
	dst->prev = dst->next = dst->e_dead_next = NULL;
}

/* Two spare entries for clipping, allocated before the lock. */
struct entry_spares {
	struct vm_map_entry *es_e[2];
};

static int
spares_get(struct entry_spares *sp)
{
	sp->es_e[0] = entry_alloc();
	sp->es_e[1] = entry_alloc();
	if (sp->es_e[0] == NULL || sp->es_e[1] == NULL) {
		entry_free(sp->es_e[0]);
		entry_free(sp->es_e[1]);
		return ENOMEM;
	}
	return 0;
}

static struct vm_map_entry *
spares_take(struct entry_spares *sp)
{
	for (int i = 0; i < 2; i++) {
		struct vm_map_entry *e = sp->es_e[i];
		if (e != NULL) {
			sp->es_e[i] = NULL;
			return e;
		}
	}
	usrvm_panic("map: more than two clips in one operation");
}

static void
spares_put(struct entry_spares *sp)
{
	entry_free(sp->es_e[0]);
	entry_free(sp->es_e[1]);
}

static void map_hint_forget(struct vm_map *map, struct vm_map_entry *e);

/*
 * entry_kill: unlink e and queue it on *deadp, dropping its amap
 * reference and its commitment.  => map write-locked.
 */
static void
entry_kill(struct vm_map *map, struct vm_map_entry *e,
    struct vm_map_entry **deadp)
{
	map_hint_forget(map, e);
	map_tree_remove(&map->m_tree, e);
	dup_forget(e->start, e->end - e->start);	/* the range is gone */
	if (e->aref.ar_amap != NULL)
		amap_unref(e->aref.ar_amap, e->aref.ar_pageoff,
		    atop(e->end - e->start), 0);
	e->aref.ar_amap = NULL;
	if (e->object != NULL) {
		/* Write-back no longer protects pages here (a view left
		 * behind would protect whatever is mapped here next). */
		if (entry_shares_object(e))
			object_view_remove(e->object, e->start,
			    e->end - e->start);
		e->object->vo_pgops->pgo_detach(e->object);
		e->object = NULL;
	}
	if (e->etype & UVM_ET_COMMITTED)
		page_uncommit(atop(e->end - e->start));
	e->e_dead_next = *deadp;
	*deadp = e;
}

static void
dead_entries_free(struct vm_map_entry *dead)
{
	while (dead != NULL) {
		struct vm_map_entry *next = dead->e_dead_next;
		entry_free(dead);
		dead = next;
	}
}

/*
 * map_lookup: the entry containing addr, or NULL.
 * => map locked (read or write).  The hint is racy by design: it is only a
 *    guess, checked before use.
 */
struct vm_map_entry *
map_lookup(struct vm_map *map, uintptr_t addr)
{
	struct vm_map_entry *e = atomic_load_explicit(&map->m_hint,
	    memory_order_relaxed);

	if (e != NULL && addr >= e->start && addr < e->end)
		return e;
	e = map_tree_lookup(&map->m_tree, addr);
	if (e != NULL)
		atomic_store_explicit(&map->m_hint, e, memory_order_relaxed);
	return e;
}

static void
map_hint_forget(struct vm_map *map, struct vm_map_entry *e)
{
	struct vm_map_entry *expect = e;

	atomic_compare_exchange_strong(&map->m_hint, &expect, NULL);
}

/*
 * clip_start: make an entry begin exactly at addr by splitting off the
 * part before it into a new entry `front` (UVM's uvm_map_clip_start).
 * => map write-locked.  start < addr < end.
 */
static void
clip_start(struct vm_map *map, struct vm_map_entry *e, uintptr_t addr,
    struct vm_map_entry *front)
{
	size_t npages = atop(addr - e->start);

	KASSERT(e->start < addr && addr < e->end);
	entry_copy(front, e);
	front->end = addr;
	e->start = addr;
	e->offset += ptoa(npages);
	if (e->aref.ar_amap != NULL)
		amap_splitref(&front->aref, &e->aref, npages);
	if (e->object != NULL)
		e->object->vo_pgops->pgo_reference(e->object);
	map_tree_fixup(&map->m_tree, e);
	map_tree_insert(&map->m_tree, front);
}

/*
 * clip_end: make an entry end exactly at addr by splitting off the part
 * after it into a new entry `back` (UVM's uvm_map_clip_end).
 * => map write-locked.  start < addr < end.
 */
static void
clip_end(struct vm_map *map, struct vm_map_entry *e, uintptr_t addr,
    struct vm_map_entry *back)
{
	size_t npages = atop(addr - e->start);

	KASSERT(e->start < addr && addr < e->end);
	entry_copy(back, e);
	back->start = addr;
	back->offset += ptoa(npages);
	e->end = addr;
	if (e->aref.ar_amap != NULL)
		amap_splitref(&e->aref, &back->aref, npages);
	if (e->object != NULL)
		e->object->vo_pgops->pgo_reference(e->object);
	map_tree_fixup(&map->m_tree, e);
	map_tree_insert(&map->m_tree, back);
}

/*
 * clip_range: clip the entries at start and end so that [start, end) is
 * covered by whole entries; returns the first entry at or after start.
 * => map write-locked; uses at most the two spares.
 */
static struct vm_map_entry *
clip_range(struct vm_map *map, uintptr_t start, uintptr_t end,
    struct entry_spares *sp)
{
	struct vm_map_entry *e, *first;

	e = map_tree_lookup_le(&map->m_tree, start);
	if (e != NULL && e->end > start) {
		if (e->start < start)
			clip_start(map, e, start, spares_take(sp));
		first = e;
	} else {
		first = e != NULL ? e->next : map->m_tree.mt_first;
	}
	e = map_tree_lookup_le(&map->m_tree, end - 1);
	if (e != NULL && e->start < end && e->end > end)
		clip_end(map, e, end, spares_take(sp));
	return first;
}

/*
 * Can private memory a absorb the new private memory b just after it
 * (UVM's uvm_map_enter merge)?  They must be alike; if a has an amap, its
 * slots must end where a ends, so that the amap can grow by b's slots
 * (amap_extend, which also wants a's reference to be the only one).  b
 * needs a copy (no amap yet); a with an amap may not, which is the same
 * for b's range: its slots are new and a's alone.
 * => map write-locked.  (An amap's size changes only by its sole
 *    reference's holder, here us: reading it is safe.)
 */
static bool
entry_mergeable(const struct vm_map_entry *a, const struct vm_map_entry *b)
{
	const struct vm_amap *amap = a->aref.ar_amap;

	KASSERT(b->aref.ar_amap == NULL);
	return a->end == b->start && a->object == NULL && b->object == NULL &&
	    (amap == NULL || a->aref.ar_pageoff + atop(a->end - a->start) ==
	    amap_nslots(amap)) &&
	    a->protection == b->protection &&
	    a->max_protection == b->max_protection &&
	    a->inheritance == b->inheritance && a->advice == b->advice &&
	    a->wired_count == b->wired_count &&
	    (a->etype | (amap != NULL ? UVM_ET_NEEDSCOPY : 0)) == b->etype;
}

/* ------------------------------------------------------------------ */
/* map_enter                                                           */
/* ------------------------------------------------------------------ */

/* Is [start, end) free? => map locked. */
static bool
range_free(struct vm_map *map, uintptr_t start, uintptr_t end)
{
	struct vm_map_entry *e = map_tree_lookup_le(&map->m_tree, end - 1);

	return e == NULL || e->end <= start;
}

/*
 * pmap_enter_entry: open e's range in the pmap: zero-fill memory, a
 * private view of e's object, or a shared one (known to the object, for
 * write-back).
 */
int
pmap_enter_entry(struct vm_map_entry *e)
{
	size_t len = e->end - e->start;
	int error;

	if (e->object == NULL)
		return pmap->enter(e->start, len, e->protection);
	if (!entry_shares_object(e))
		return pmap->enter_object(e->start, len, e->protection,
		    e->object->vo_memfd, e->offset, PMAP_PRIVATE);
	if ((error = object_view_add(e->object, e->start, len,
	    e->offset)) != 0)
		return error;
	if ((error = pmap->enter_object(e->start, len, e->protection,
	    e->object->vo_memfd, e->offset, 0)) != 0)
		object_view_remove(e->object, e->start, len);
	return error;
}

/*
 * map_enter: map len bytes: private zero-fill memory (obj NULL), or obj
 * from byte off, shared or private (copy-on-write), whose reference the
 * entry takes over.
 * => *addrp: the hint in, the address out.
 * => 0, ENOMEM (no room, no memory, no commit), EEXIST (fixed over a
 *    mapping), or the pmap's error; no side effect on failure (obj's
 *    reference stays the caller's).
 */
int
map_enter(struct usrvm_space *vs, uintptr_t *addrp, size_t len, int prot,
    int maxprot, bool fixed, struct vm_object *obj, uint64_t off,
    bool private)
{
	struct vm_map *map = &vs->vs_map;
	struct vm_map_entry *e, *prev;
	uintptr_t start;
	int error;
	/* Anons commit budget + swap: private memory's, and a private
	 * view's that may ever be written.  An object has its own backing
	 * store. */
	bool commit = obj == NULL ||
	    (private && (maxprot & USRVM_PROT_WRITE));

	if (commit && page_commit(atop(len)) != 0)
		return ENOMEM;
	if ((e = entry_alloc()) == NULL) {
		if (commit)
			page_uncommit(atop(len));
		return ENOMEM;
	}

	map_lock_write(map);
	if (fixed) {
		start = *addrp;
		if (!range_free(map, start, start + len)) {
			error = EEXIST;
			goto fail;
		}
	} else if (!map_tree_findspace(&map->m_tree, *addrp, len, PAGE_SIZE,
	    &start)) {
		error = ENOMEM;
		goto fail;
	}
	e->start = start;
	e->end = start + len;
	e->object = obj;
	e->offset = off;
	e->protection = (uint8_t)prot;
	e->max_protection = (uint8_t)maxprot;
	e->advice = USRVM_ADV_NORMAL;
	if (obj == NULL || private) {
		e->inheritance = USRVM_INH_COPY;	/* as UVM's mmap */
		e->etype = UVM_ET_COPYONWRITE | UVM_ET_NEEDSCOPY;
	} else {
		e->inheritance = USRVM_INH_SHARE;
		e->etype = 0;
	}
	if (commit)
		e->etype |= UVM_ET_COMMITTED;
	if ((error = pmap_enter_entry(e)) != 0)
		goto fail;

	/* Extend the previous entry instead, when it is of the same kind
	 * (and its amap, if any, is its own and can grow). */
	prev = map_tree_lookup_le(&map->m_tree, start);
	if (prev != NULL && entry_mergeable(prev, e) &&
	    (prev->aref.ar_amap == NULL ||
	    amap_extend(prev->aref.ar_amap, atop(len)) == 0)) {
		prev->end = e->end;
		map_tree_fixup(&map->m_tree, prev);
		map_unlock_write(map);
		entry_free(e);
	} else {
		map_tree_insert(&map->m_tree, e);
		map_unlock_write(map);
	}
	*addrp = start;
	return 0;

fail:
	map_unlock_write(map);
	entry_free(e);
	if (commit)
		page_uncommit(atop(len));
	return error;
}

/* ------------------------------------------------------------------ */
/* copy-on-write between spaces (usrvm_fork)                           */
/* ------------------------------------------------------------------ */

/*
 * rehome_page: the address of pg, an anon's page other spaces still need,
 * is about to lose it: its bytes go to a frame.  One the page daemon is
 * copying out (pd_stage_copy: busy with I/O, not staged) may not be read
 * yet, and the daemon cannot be waited for here (it waits for a fault
 * thread, and fault threads wait for this map): its bytes are read now
 * into a frame of rehome's own, which replaces the daemon's
 * (PG_COPIED: the daemon frees its own, whose read may come after the
 * address has gone or been reused).  A shared anon's page is
 * write-protected: both read the same bytes while it is there.  A page
 * the read misses was dropped by the daemon after its own read.
 * => amap locked.
 */
static void
rehome_page(struct vm_page *pg)
{
	uint32_t f;
	int error = 0;

	if ((pg->pg_flags & (PG_BUSY | PG_PAGEIO | PG_STAGED)) ==
	    (PG_BUSY | PG_PAGEIO)) {
		if ((error = anon_peek(pg->pg_anon, &f)) == 0) {
			if (pg->pg_flags & PG_COPIED)
				frame_free(pg->pg_frame, true);
			pg->pg_frame = f;
			pg->pg_flags |= PG_COPIED;
		}
	} else if (!(pg->pg_flags & (PG_STAGED | PG_BUSY)))
		error = anon_stage_copy(pg->pg_anon);
	if (error != 0 && error != ENOENT)
		usrvm_log(USRVM_LOG_ERR, "keeping the shared page at %#lx: "
		    "%s: the other spaces lose it", (unsigned long)pg->pg_va,
		    strerror(error));
}

/*
 * map_rehome: [start, end) of e is about to lose its pages (unmap, or
 * usrvm_advise DONTNEED).  An anon there that another space references
 * too and whose page is mapped there moves to a frame first, so that the
 * others keep its bytes (an anon's page is mapped at one address only:
 * fault.c, "copy-on-write between spaces").  Only amaps shared with
 * another space have such anons.
 * => map write-locked: no fault of this space moves a page here meanwhile.
 */
void
map_rehome(struct vm_map_entry *e, uintptr_t start, uintptr_t end)
{
	struct vm_amap *amap = e->aref.ar_amap;
	size_t s = atop(start - e->start), last = atop(end - e->start);

	if (amap == NULL)
		return;
	amap_lock(amap);
	if (!amap_cow(amap)) {
		amap_unlock(amap);
		return;
	}
	while (s < last &&
	    (s = amap_next_used(&e->aref, s, last - s)) != SIZE_MAX) {
		struct vm_anon *anon = amap_lookup(&e->aref, s);
		struct vm_page *pg = anon->an_page;

		if (pg != NULL && pg->pg_va == e->start + ptoa(s) &&
		    (anon->an_ref > 1 || amap_slot_refs(&e->aref, s) > 1))
			rehome_page(pg);
		s++;
	}
	amap_unlock(amap);
}

/*
 * map_amap_copy: clear needs-copy on e (UVM's amap_copy): with no amap
 * yet, a new one covering the entry; with an amap another entry
 * references too (usrvm_fork), a private copy of the entry's slots whose
 * anons are shared (each page is copied on its first write); an amap
 * nobody else references any more is kept.
 * => map write-locked.  0 or ENOMEM.
 */
int
map_amap_copy(struct vm_map_entry *e)
{
	size_t n = atop(e->end - e->start);
	struct vm_amap *old = e->aref.ar_amap, *amap;
	unsigned refs;

	KASSERT(e->etype & UVM_ET_NEEDSCOPY);
	if (old == NULL) {
		if ((amap = amap_alloc(n)) == NULL)
			return ENOMEM;
		e->aref.ar_amap = amap;
		e->aref.ar_pageoff = 0;
	} else {
		/* Others only ever drop their references meanwhile. */
		amap_lock(old);
		refs = amap_refs(old);
		amap_unlock(old);
		if (refs > 1) {
			amap = amap_copy(old, e->aref.ar_pageoff, n);
			if (amap == NULL)
				return ENOMEM;
			amap_unref(old, e->aref.ar_pageoff, n, 0);
			e->aref.ar_amap = amap;
			e->aref.ar_pageoff = 0;
			CNT_INC(amap_copies);
		}
	}
	e->etype &= ~UVM_ET_NEEDSCOPY;
	return 0;
}

/* Pre-allocated entries, on a list through e_dead_next. */
static struct vm_map_entry *
entries_get(size_t n)
{
	struct vm_map_entry *list = NULL, *e;

	while (n-- > 0) {
		if ((e = entry_alloc()) == NULL) {
			dead_entries_free(list);
			return NULL;
		}
		e->e_dead_next = list;
		list = e;
	}
	return list;
}

/*
 * The kind of entry the child gets for e (e's inheritance not NONE):
 * ZERO, fresh private memory; COPY of a shared view of an object, a
 * private view of it (a later write by the parent to a page the child
 * has not written shows in the child too, as with a private mapping of
 * a file and as in UVM); otherwise what e is.
 */
static uint16_t
fork_etype(const struct vm_map_entry *e)
{
	if (e->inheritance == USRVM_INH_ZERO || e->object == NULL)
		return UVM_ET_COPYONWRITE | UVM_ET_NEEDSCOPY | UVM_ET_COMMITTED;
	if (e->inheritance == USRVM_INH_COPY)
		return UVM_ET_COPYONWRITE | UVM_ET_NEEDSCOPY |
		    (e->max_protection & USRVM_PROT_WRITE ?
		    UVM_ET_COMMITTED : 0);
	return e->etype;
}

/*
 * Can e be forked?  A shared view of an object is shared, copied (a
 * private view) or zero-filled.  Private memory is copied, zero-filled,
 * or shared: it becomes shared anonymous memory first (map_share.c).  A
 * private view of an object is copied (a private view of the same
 * object, its amap shared copy-on-write; the kernel will not move its
 * anons' pages, so the other space copies a page it reads into an anon
 * of its own: fault_cow_move) or zero-filled; not
 * shared (the amap and the object's pages between the two: ENOTSUP).
 * The child's private entries commit their size.
 */
/* Private memory that the child is to share: made shared first. */
static bool
fork_shares_private(const struct vm_map_entry *e)
{
	return e->object == NULL && e->inheritance == USRVM_INH_SHARE &&
	    !(e->etype & UVM_ET_FOREIGN);
}

static int
fork_check(const struct vm_map_entry *e, size_t *nentp, size_t *npagesp)
{
	if ((e->etype & UVM_ET_FOREIGN) || e->inheritance == USRVM_INH_NONE)
		return 0;
	if (e->inheritance == USRVM_INH_SHARE && e->object != NULL &&
	    !entry_shares_object(e))
		return ENOTSUP;
	(*nentp)++;
	if ((fork_etype(e) & UVM_ET_COMMITTED) && !fork_shares_private(e))
		*npagesp += atop(e->end - e->start);
	return 0;
}

/*
 * map_fork: a new space whose contents equal parent's at this moment,
 * entry by entry per inheritance (UVM's uvmspace_fork): COPY entries
 * share the parent's amap, both needing a copy (the parent's pages
 * become write-protected: the first write on either side copies the
 * amap, then the page); ZERO entries are fresh zero-fill memory; NONE
 * entries are holes.  Each entry keeps its offset from the space's base.
 * Costs O(entries): no page is copied or touched, beyond write-protecting
 * the parent's.
 * SHARE entries of private memory become shared anonymous memory first
 * (map_share_private), which costs a copy of their resident pages.
 * => 0, ENOTSUP (a private view of an object with SHARE: fork_check),
 *    ENOMEM (commit, entries, address space), EIO (a swap slot to copy
 *    could not be read), EAGAIN (the application kept changing its
 *    mappings); no side effect on failure but write protection and
 *    needs-copy in the parent, which cost one fault each, and private
 *    memory made shared, which shows the same bytes.
 */
int
map_fork(struct usrvm_space *parent, struct usrvm_space **childp)
{
	struct vm_map *map = &parent->vs_map, *cmap;
	struct vm_map_entry *e, *ne, *spare = NULL;
	struct usrvm_space *child;
	size_t nent = 0, npages = 0;
	int error;

	if ((child = space_create(parent->vs_size, &error)) == NULL)
		return error;
	cmap = &child->vs_map;
	map_lock_write(map);
	for (e = map->m_tree.mt_first; e != NULL; e = e->next)
		if ((error = fork_check(e, &nent, &npages)) != 0)
			goto fail;
	if (page_commit(npages) != 0) {
		error = ENOMEM;
		goto fail;
	}
	if (nent > 0 && (spare = entries_get(nent)) == NULL) {
		page_uncommit(npages);
		error = ENOMEM;
		goto fail;
	}
	for (e = map->m_tree.mt_first; e != NULL; e = e->next)
		if (fork_shares_private(e) &&
		    (error = map_share_private(e)) != 0) {
			page_uncommit(npages);
			dead_entries_free(spare);
			goto fail;
		}

	map_lock_write(cmap);	/* nobody knows the child yet: no order */
	for (e = map->m_tree.mt_first; e != NULL && error == 0; e = e->next) {
		size_t len = e->end - e->start;

		if ((e->etype & UVM_ET_FOREIGN) ||
		    e->inheritance == USRVM_INH_NONE)
			continue;
		ne = spare;
		spare = ne->e_dead_next;
		entry_copy(ne, e);
		ne->start = child->vs_base + (e->start - parent->vs_base);
		ne->end = ne->start + len;
		ne->aref.ar_amap = NULL;
		ne->aref.ar_pageoff = 0;
		ne->wired_count = 0;
		ne->etype = fork_etype(e);
		if (e->inheritance == USRVM_INH_ZERO) {
			ne->object = NULL;	/* fresh private memory */
			ne->offset = 0;
		}
		if ((error = pmap_enter_entry(ne)) != 0) {
			ne->e_dead_next = spare;
			spare = ne;
			break;
		}
		if (ne->object != NULL)	/* one more view */
			e->object->vo_pgops->pgo_reference(e->object);
		if (ne->etype & UVM_ET_COMMITTED)
			npages -= atop(len);	/* the child's entry has it */
		if (e->inheritance == USRVM_INH_COPY &&
		    e->aref.ar_amap != NULL &&
		    (error = pmap->wprotect(e->start, len)) == 0) {
			amap_ref(e->aref.ar_amap, e->aref.ar_pageoff,
			    atop(len), AMAP_COW);
			ne->aref = e->aref;
			e->etype |= UVM_ET_NEEDSCOPY;
		}
		map_tree_insert(&cmap->m_tree, ne);
	}
	map_unlock_write(cmap);
	map_unlock_write(map);
	page_uncommit(npages);
	dead_entries_free(spare);
	if (error != 0) {
		(void)space_destroy(child);
		return error;
	}
	CNT_INC(forks);
	*childp = child;
	return 0;

fail:
	map_unlock_write(map);
	(void)space_destroy(child);
	return error;
}

/* ------------------------------------------------------------------ */
/* map_remove                                                          */
/* ------------------------------------------------------------------ */

/*
 * map_remove_locked: unlink every entry in [start, end), close its pmap
 * range, and queue it on *deadp.  => map write-locked, range clipped.
 */
static void
map_remove_locked(struct vm_map *map, struct vm_map_entry *first,
    uintptr_t end, struct vm_map_entry **deadp)
{
	struct vm_map_entry *e = first, *next;
	int error;

	while (e != NULL && e->start < end) {
		next = e->next;
		KASSERT(e->end <= end);
		if (e->etype & UVM_ET_FOREIGN) {
			/* Not ours: it stays unless the range is free again
			 * and can be taken back. */
			if (pmap->reclaim(e->start, e->end - e->start) != 0) {
				e = next;
				continue;
			}
		} else {
			map_rehome(e, e->start, e->end);
			if ((error = pmap->remove(e->start,
			    e->end - e->start)) != 0)
				/*
				 * The application unmapped part of it itself,
				 * at this moment, in another thread
				 * (trap_sync has applied every earlier
				 * event).  Its UNMAP event takes the range
				 * back (map_forget); the entry goes.
				 */
				usrvm_log(USRVM_LOG_NOTICE, "unmap [%#lx, "
				    "%#lx): the range changed under usrvm "
				    "(%s)", (unsigned long)e->start,
				    (unsigned long)e->end, strerror(error));
		}
		entry_kill(map, e, deadp);
		e = next;
	}
}

/*
 * map_remove: unmap [start, end).  Holes inside are fine (munmap).
 * => 0 or ENOMEM (no entry for a clip).
 */
int
map_remove(struct usrvm_space *vs, uintptr_t start, uintptr_t end)
{
	struct vm_map *map = &vs->vs_map;
	struct vm_map_entry *first, *dead = NULL;
	struct entry_spares sp;

	if (spares_get(&sp) != 0)
		return ENOMEM;
	trap_sync();		/* the application's own munmap, applied */
	map_lock_write(map);
	first = clip_range(map, start, end, &sp);
	map_remove_locked(map, first, end, &dead);
	map_unlock_write(map);
	spares_put(&sp);
	dead_entries_free(dead);	/* step 3: unlocked */
	return 0;
}

/*
 * map_fini: remove everything and release the reservation (space
 * destruction).  What another mapping took (FOREIGN) is left alone.
 */
void
map_fini(struct usrvm_space *vs)
{
	struct vm_map *map = &vs->vs_map;
	struct vm_map_entry *dead = NULL, *e, *next;
	uintptr_t cursor = map->m_tree.mt_min;

	map_lock_write(map);
	map_remove_locked(map, map->m_tree.mt_first, map->m_tree.mt_max,
	    &dead);
	for (e = map->m_tree.mt_first; e != NULL; e = next) {
		next = e->next;
		KASSERT(e->etype & UVM_ET_FOREIGN);
		if (e->start > cursor)
			pmap->release(cursor, e->start - cursor);
		cursor = e->end;
		entry_kill(map, e, &dead);
	}
	if (cursor < map->m_tree.mt_max)
		pmap->release(cursor, map->m_tree.mt_max - cursor);
	map_unlock_write(map);
	dead_entries_free(dead);
	pthread_rwlock_destroy(&map->m_lock);
}

/* ------------------------------------------------------------------ */
/* attribute changes                                                   */
/* ------------------------------------------------------------------ */

/*
 * Is [start, end) covered by entries with no hole?  A FOREIGN entry is a
 * hole: the range is not ours.  => map locked.
 */
static bool
range_covered(struct vm_map *map, uintptr_t start, uintptr_t end)
{
	struct vm_map_entry *e = map_tree_lookup(&map->m_tree, start);

	for (; e != NULL; e = e->next) {
		if (e->etype & UVM_ET_FOREIGN)
			return false;
		if (e->end >= end)
			return true;
		if (e->next == NULL || e->next->start != e->end)
			return false;
	}
	return false;
}

/*
 * map_protect: set the protection of [start, end), and with maxprot >= 0
 * the maximum protection too (which can only be lowered).
 * => ENOMEM if the range has a hole, EACCES if prot exceeds the maximum
 *    or maxprot exceeds the old one; all entries are checked before any
 *    is changed.
 */
int
map_protect(struct usrvm_space *vs, uintptr_t start, uintptr_t end,
    int prot, int maxprot)
{
	struct vm_map *map = &vs->vs_map;
	struct vm_map_entry *e;
	struct entry_spares sp;
	int error = 0;

	if (spares_get(&sp) != 0)
		return ENOMEM;
	trap_sync();		/* the application's own munmap, applied */
	map_lock_write(map);
	if (!range_covered(map, start, end)) {
		error = ENOMEM;
		goto out;
	}
	for (e = map_tree_lookup(&map->m_tree, start); e != NULL &&
	    e->start < end; e = e->next) {
		int max = maxprot >= 0 ? maxprot : e->max_protection;
		if ((prot & max) != prot ||
		    (max & e->max_protection) != max) {
			error = EACCES;
			goto out;
		}
	}
	for (e = clip_range(map, start, end, &sp); e != NULL &&
	    e->start < end; e = e->next) {
		if (maxprot >= 0)
			e->max_protection = (uint8_t)maxprot;
		e->protection = (uint8_t)prot;
		if (!(e->etype & UVM_ET_FOREIGN) &&
		    pmap->protect(e->start, e->end - e->start,
		    e->protection) != 0)
			/* As in map_remove_locked: the application's own
			 * munmap racing with this call; its event follows. */
			usrvm_log(USRVM_LOG_NOTICE, "protect [%#lx, %#lx): the "
			    "range changed under usrvm",
			    (unsigned long)e->start, (unsigned long)e->end);
	}
out:
	map_unlock_write(map);
	spares_put(&sp);
	return error;
}

int
map_check_covered(struct usrvm_space *vs, uintptr_t start, uintptr_t end)
{
	bool covered;

	map_lock_read(&vs->vs_map);
	covered = range_covered(&vs->vs_map, start, end);
	map_unlock_read(&vs->vs_map);
	return covered ? 0 : ENOMEM;
}

/* ------------------------------------------------------------------ */
/* usrvm_sync                                                          */
/* ------------------------------------------------------------------ */

/*
 * map_sync: write back the objects' pages that [start, end) shows; wait:
 * until they are on the device.  Each object is flushed with the map
 * unlocked (holding a reference), so faults and map changes go on.
 * => 0, ENOMEM (the range has a hole) or EIO.
 */
int
map_sync(struct usrvm_space *vs, uintptr_t start, uintptr_t end, bool wait)
{
	struct vm_map *map = &vs->vs_map;
	uintptr_t cursor = start;
	int error = 0, e2;

	map_lock_read(map);
	if (!range_covered(map, start, end))
		error = ENOMEM;
	map_unlock_read(map);
	while (error == 0 && cursor < end) {
		struct vm_map_entry *e;
		struct vm_object *obj = NULL;
		uint64_t off = 0, len = 0;

		map_lock_read(map);
		if ((e = map_tree_lookup(&map->m_tree, cursor)) == NULL) {
			map_unlock_read(map);
			return ENOMEM;	/* unmapped meanwhile */
		}
		if (entry_shares_object(e)) {	/* a private view: nothing */
			obj = e->object;
			obj->vo_pgops->pgo_reference(obj);
			off = e->offset + (cursor - e->start);
			len = MIN(end, e->end) - cursor;
		}
		cursor = MIN(end, e->end);
		map_unlock_read(map);
		if (obj == NULL)
			continue;
		e2 = obj->vo_pgops->pgo_put(obj, off, off + len,
		    wait ? PGO_SYNCIO : 0);
		obj->vo_pgops->pgo_detach(obj);
		if (e2 != 0)
			error = e2;
	}
	return error;
}

/* Does [start, end) hold memory shared with another space? */
static bool
range_cow(struct vm_map *map, uintptr_t start, uintptr_t end)
{
	struct vm_map_entry *e;
	bool cow = false;

	map_lock_read(map);
	if ((e = map_tree_lookup_le(&map->m_tree, start)) == NULL)
		e = map->m_tree.mt_first;
	for (; e != NULL && e->start < end && !cow; e = e->next) {
		struct vm_amap *amap = e->aref.ar_amap;

		if (e->end <= start || amap == NULL)
			continue;
		amap_lock(amap);
		cow = amap_cow(amap);
		amap_unlock(amap);
	}
	map_unlock_read(map);
	return cow;
}

/*
 * map_unshare: before the kernel drops the pages of [start, end) (DONTNEED),
 * take the range's anons out of every amap shared with another space:
 * entries that still share one get their own copy, and the anons there
 * are dropped now, their pages moved away first where another space
 * still needs them (map_rehome).  After this, nothing in the range is
 * another space's, and the REMOVE event (map_discard) finds only what
 * faults put there meanwhile, which is this space's own.
 * => map unlocked.  0 or ENOMEM.
 */
static int
map_unshare(struct usrvm_space *vs, uintptr_t start, uintptr_t end)
{
	struct vm_map *map = &vs->vs_map;
	struct vm_map_entry *e;
	struct entry_spares sp;
	int error = 0;

	if (!range_cow(map, start, end))
		return 0;
	if (spares_get(&sp) != 0)
		return ENOMEM;
	map_lock_write(map);
	for (e = clip_range(map, start, end, &sp); e != NULL &&
	    e->start < end && error == 0; e = e->next) {
		struct vm_amap *amap = e->aref.ar_amap;
		bool cow;

		if (amap == NULL)
			continue;
		amap_lock(amap);
		cow = amap_cow(amap);
		amap_unlock(amap);
		if (!cow)
			continue;
		map_rehome(e, e->start, e->end);
		if ((e->etype & UVM_ET_NEEDSCOPY) &&
		    (error = map_amap_copy(e)) != 0)
			break;
		amap = e->aref.ar_amap;
		amap_lock(amap);
		(void)amap_wipe_range(&e->aref, 0, atop(e->end - e->start));
		amap_unlock(amap);
	}
	map_unlock_write(map);
	spares_put(&sp);
	return error;
}

/*
 * map_dontneed: drop the pages of [start, end).
 * => no lock held, not a fault thread: the kernel blocks the caller until
 *    a fault thread has read the REMOVE event, whose handler
 *    (map_discard) drops the anons.  The same path serves the
 *    application's own madvise, so the two can never disagree.
 * => ENOMEM if the range has a hole (madvise's rule).
 */
int
map_dontneed(struct usrvm_space *vs, uintptr_t start, uintptr_t end)
{
	int error;

	KASSERT(!trap_self());
	if ((error = map_check_covered(vs, start, end)) != 0 ||
	    (error = map_unshare(vs, start, end)) != 0)
		return error;
	error = pmap->dontneed(start, end - start);
	dup_forget(start, end - start);
	return error;
}

/*
 * map_advise: store NORMAL, RANDOM or SEQUENTIAL advice on [start, end).
 * => ENOMEM if the range has a hole (madvise's rule).
 */
int
map_advise(struct usrvm_space *vs, uintptr_t start, uintptr_t end, int adv)
{
	struct vm_map *map = &vs->vs_map;
	struct vm_map_entry *e;
	struct entry_spares sp;
	int error = 0;

	KASSERT(adv == USRVM_ADV_NORMAL || adv == USRVM_ADV_RANDOM ||
	    adv == USRVM_ADV_SEQUENTIAL);
	if (spares_get(&sp) != 0)
		return ENOMEM;
	map_lock_write(map);
	if (!range_covered(map, start, end)) {
		error = ENOMEM;
		goto out;
	}
	for (e = clip_range(map, start, end, &sp); e != NULL &&
	    e->start < end; e = e->next)
		e->advice = (uint8_t)adv;
out:
	map_unlock_write(map);
	spares_put(&sp);
	return error;
}

/*
 * map_inherit: set the fork inheritance of the entries in [start, end).
 * Holes are skipped (UVM's uvm_map_inherit).
 */
int
map_inherit(struct usrvm_space *vs, uintptr_t start, uintptr_t end, int inh)
{
	struct vm_map *map = &vs->vs_map;
	struct vm_map_entry *e;
	struct entry_spares sp;

	if (spares_get(&sp) != 0)
		return ENOMEM;
	map_lock_write(map);
	for (e = clip_range(map, start, end, &sp); e != NULL &&
	    e->start < end; e = e->next)
		if (!(e->etype & UVM_ET_FOREIGN))
			e->inheritance = (uint8_t)inh;
	map_unlock_write(map);
	spares_put(&sp);
	return 0;
}

/* ------------------------------------------------------------------ */
/* discard (userfaultfd REMOVE events)                                 */
/* ------------------------------------------------------------------ */

/*
 * map_discard_range: drop the anons of slots [slot, slot + n) of an entry,
 * except those being filled with zeros.  => amap locked.
 *
 * An anon busy with a zero fill is being installed by a fault thread.
 * Whether its install lands before the kernel drops the range's pages or
 * after, keeping it is right: after, the page holds zeros and is tracked;
 * before, the page is gone and the next access refaults on a resident
 * anon, which fault_upper answers with zeros.  Freeing it instead would
 * leave a page the runtime no longer knows about.  An anon busy with swap
 * I/O (PG_PAGEIO) holds old contents: it is dropped (released: its busy
 * owner frees it and installs nothing).
 */
static void
map_discard_range(struct vm_aref *aref, size_t slot, size_t n)
{
	size_t s = slot, end = slot + n;

	while ((s = amap_next_used(aref, s, end - s)) != SIZE_MAX) {
		struct vm_anon *anon = amap_lookup(aref, s);
		if (anon->an_page == NULL ||
		    (anon->an_page->pg_flags & (PG_BUSY | PG_PAGEIO)) !=
		    PG_BUSY) {
			amap_unadd(aref, s);
			anon_unref(anon);
		}
		if (++s >= end)
			break;
	}
}

/*
 * map_discard: the kernel dropped the pages of [start, end) (madvise by
 * the application, or usrvm_advise DONTNEED/FREE): drop their anons.
 * => map unlocked on entry; takes it for reading.
 */
void
map_discard(struct usrvm_space *vs, uintptr_t start, uintptr_t end)
{
	struct vm_map *map = &vs->vs_map;
	struct vm_map_entry *e;

	dup_forget(start, end - start);		/* the kernel dropped them */
	map_lock_read(map);
	e = map_tree_lookup_le(&map->m_tree, start);
	if (e == NULL || e->end <= start)
		e = e != NULL ? e->next : map->m_tree.mt_first;
	for (; e != NULL && e->start < end; e = e->next) {
		struct vm_amap *amap = e->aref.ar_amap;
		uintptr_t s = MAX(start, e->start), t = MIN(end, e->end);

		/* An amap still shared with another space is not this
		 * space's to change (map_unshare handled usrvm_advise). */
		if (amap == NULL || (e->etype & UVM_ET_NEEDSCOPY))
			continue;
		amap_lock(amap);
		map_discard_range(&e->aref, atop(s - e->start), atop(t - s));
		amap_unlock(amap);
	}
	map_unlock_read(map);
}

/*
 * map_forget: the application unmapped [start, end) behind our back.
 * => map unlocked on entry; takes it for writing.
 */
void
map_forget(struct usrvm_space *vs, uintptr_t start, uintptr_t end)
{
	struct vm_map *map = &vs->vs_map;
	struct vm_map_entry *e, *next, *dead = NULL, *foreign;
	struct entry_spares sp;

	start = trunc_page(start);
	end = round_page(end);
	if (!space_contains(vs, start, end - start))
		return;
	foreign = entry_alloc();
	if (foreign == NULL || spares_get(&sp) != 0) {
		usrvm_log(USRVM_LOG_ERR, "no memory to forget [%#lx, %#lx)",
		    (unsigned long)start, (unsigned long)end);
		entry_free(foreign);
		return;
	}
	map_lock_write(map);
	for (e = clip_range(map, start, end, &sp); e != NULL &&
	    e->start < end; e = next) {
		next = e->next;
		entry_kill(map, e, &dead);
	}
	if (pmap->reclaim(start, end - start) != 0) {
		usrvm_log(USRVM_LOG_NOTICE, "[%#lx, %#lx) was unmapped by the "
		    "application and is now used by another mapping: usrvm "
		    "keeps out of it", (unsigned long)start,
		    (unsigned long)end);
		foreign->start = start;
		foreign->end = end;
		foreign->inheritance = USRVM_INH_NONE;
		foreign->etype = UVM_ET_FOREIGN;
		map_tree_insert(&map->m_tree, foreign);
		foreign = NULL;
	}
	map_unlock_write(map);
	spares_put(&sp);
	entry_free(foreign);
	dead_entries_free(dead);
}

/* ------------------------------------------------------------------ */
/* fork(2) child                                                       */
/* ------------------------------------------------------------------ */

/*
 * map_fork_child: in a fork child (fork.c), the map's lock and its amaps'
 * locks are new: the parent's forking thread held the map for writing,
 * and its other threads may have waited on it.
 */
void
map_fork_child(struct vm_map *map)
{
	if (map_lock_init(map) != 0)
		usrvm_panic("fork child: cannot make a map lock");
	for (struct vm_map_entry *e = map->m_tree.mt_first; e != NULL;
	    e = e->next)
		if (e->aref.ar_amap != NULL)
			FORK_REINIT_MUTEX(amap_lockptr(e->aref.ar_amap));
}

/*
 * map_fork_foreign: in a fork child, e's range is now the kernel's own
 * mapping (fork.c put it there): the entry becomes FOREIGN, its anons
 * go, and its object is left alone (its pages are the parent's).
 * => e->object's reference is abandoned with the parent's object layer.
 */
void
map_fork_foreign(struct vm_map_entry *e)
{
	if (e->aref.ar_amap != NULL)
		amap_unref(e->aref.ar_amap, e->aref.ar_pageoff,
		    atop(e->end - e->start), 0);
	e->aref.ar_amap = NULL;
	e->object = NULL;
	dup_forget(e->start, e->end - e->start);	/* the kernel's now */
	if (e->etype & UVM_ET_COMMITTED)
		page_uncommit(atop(e->end - e->start));
	e->etype = UVM_ET_FOREIGN;
	e->inheritance = USRVM_INH_NONE;
}

/* ------------------------------------------------------------------ */
/* validation                                                          */
/* ------------------------------------------------------------------ */

/*
 * map_validate: every map invariant (map.h).  => map unlocked.
 */
int
map_validate(struct vm_map *map)
{
	struct vm_map_entry *e;

	map_lock_read(map);
	map_tree_validate(&map->m_tree);
	for (e = map->m_tree.mt_first; e != NULL; e = e->next) {
		KASSERT(page_aligned(e->start) && page_aligned(e->end));
		KASSERT(e->start < e->end);
		KASSERT((e->protection & e->max_protection) == e->protection);
		KASSERT(!(e->etype & UVM_ET_NEEDSCOPY) ||
		    (e->etype & UVM_ET_COPYONWRITE));
		if (e->aref.ar_amap != NULL)
			KASSERT(e->aref.ar_pageoff + atop(e->end - e->start) <=
			    amap_nslots(e->aref.ar_amap));
	}
	map_unlock_read(map);
	return 0;
}
