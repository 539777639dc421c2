/*
 * amap.c: anonymous maps, the upper layer (UVM's uvm_amap.c).
 *
 * PART 2: IMPLEMENTATION (the interface is amap.h).
 *
 * Slot storage: a radix tree.
 *
 *   An amap may have up to AMAP_MAXSLOTS slots (a 256 TiB entry is 2^36
 *   slots) while holding a handful of anons, so the slot array of NetBSD
 *   (and the dense am_slots/am_bckptr list beside it) is out of the
 *   question.  Slots live in a radix tree instead:
 *
 *	level 0:  a leaf, 64 anon pointers (64 slots);
 *	level l:  an interior node, 32 children of level l - 1.
 *
 *   A tree of depth h (h interior levels above the leaves) covers
 *   2^(6 + 5h) slots; am_depth is the smallest h covering am_nslot, so
 *   small amaps (64 slots or fewer) are a single leaf and 2^36 slots take
 *   six interior levels.
 *
 *   Every tree node is described by a 64-bit "mask" held by whoever points
 *   at it: the amap for the root (am_rootmask), the parent node for the
 *   others (amn_mask[i] beside amn_child[i]).  Bit i of a leaf's mask is
 *   set iff slot i holds an anon; bit i of an interior node's mask is set
 *   iff child i exists.  Keeping the masks in the parent makes leaves and
 *   nodes exactly 512 bytes (a kmem size class, nothing wasted) and lets
 *   amap_next_used and amap_wipe_range skip absent storage by bit
 *   arithmetic without touching it.
 *
 *   Invariant: a node exists iff its mask is non-zero.  A node that
 *   becomes empty is freed at once (amap_unadd, amap_wipe_range, partial
 *   unref, wipeout), so memory follows use and an empty amap owns no tree
 *   at all.  Leaves and nodes come from pools because amap_add runs on the
 *   fault path; amap_add allocates every node it needs before changing
 *   anything, so ENOMEM leaves the amap untouched.
 *
 * Partial references (ppref): run-length encoded.
 *
 *   NetBSD keeps one int per slot, an array as large as the amap; for 2^36
 *   slots that is impossible.  Here ppref is a sorted array of runs
 *   (start, len, ref) covering [0, am_nslot) contiguously, adjacent runs
 *   always having different counts (merged after each change).  A run is
 *   split at most twice per adjustment, so an adjustment costs
 *   O(log runs + runs) plus the anons it frees.  As in UVM, ppref is
 *   optional: if its array cannot be allocated (or grown) it is dropped for
 *   good (AMAP_PPREF_NONE) and the anons of unreferenced ranges simply live
 *   until the amap dies.
 *
 *   ppref is established lazily, the first time a reference covers only
 *   part of the amap (partial amap_ref/amap_unref, amap_splitref), and
 *   starts with every slot at the current am_ref.  This is the
 *   conservative choice: until then every reference covered the whole
 *   amap.  (NetBSD's amap_pp_establish gives the slots before the
 *   establishing offset a count of zero, which assumes they are referenced
 *   by nobody.)
 *
 * The lock: am_lock points at the mutex of a separately allocated,
 * reference-counted lock object (NetBSD's mutex_obj).  An amap made by
 * amap_copy shares the lock of the amap it copies, as in NetBSD: anons
 * shared between amaps are guarded by that one lock, so every amap of a
 * family of copies (usrvm_fork) is locked by it.
 *
 * Locking: the amap lock guards every field of struct vm_amap except
 * am_lock itself (fixed for the amap's life), the tree and ppref, and the
 * an_ref of the anons in the amap.  Pool and kmem locks are leaves taken
 * under it.  Nothing here sleeps.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "amap.h"
#include "anon.h"
#include "kmem.h"
#include "usrvm_internal.h"

/* ------------------------------------------------------------------ */
/* Data structures                                                     */
/* ------------------------------------------------------------------ */

#define AMAP_LEAF_SHIFT		6
#define AMAP_LEAF_SLOTS		(1u << AMAP_LEAF_SHIFT)		/* 64 */
#define AMAP_NODE_SHIFT		5
#define AMAP_NODE_FANOUT	(1u << AMAP_NODE_SHIFT)		/* 32 */
#define AMAP_MAXDEPTH		8
/* 2^46 slots: a 2^58-byte entry, more than 5-level paging can address. */
#define AMAP_MAXSLOTS \
	((size_t)1 << (AMAP_LEAF_SHIFT + AMAP_NODE_SHIFT * AMAP_MAXDEPTH))

struct amap_leaf {
	struct vm_anon *aml_anon[AMAP_LEAF_SLOTS];
};

struct amap_node {
	void *amn_child[AMAP_NODE_FANOUT];	/* amap_node or amap_leaf */
	uint64_t amn_mask[AMAP_NODE_FANOUT];	/* each child's mask */
};

_Static_assert(sizeof(struct amap_leaf) == 512, "leaf is a size class");
_Static_assert(sizeof(struct amap_node) == 512, "node is a size class");

/* One run of partial reference counts: slots [ppr_start, +ppr_len). */
struct amap_pprun {
	size_t ppr_start;
	size_t ppr_len;
	unsigned ppr_ref;
};

#define AMAP_PPREF_NONE		((struct amap_pprun *)-1)	/* gave up */

/* am_flags beside AMAP_SHARED: the amap's anons may be seen from another
 * space (referenced by usrvm_fork, made by amap_copy or copied by it);
 * sticky. */
#define AMAP_COPIED		0x100
#define AMAP_PPREF_MINRUNS	8

/* The reference-counted lock object (NetBSD's mutex_obj). */
struct amap_mutex {
	pthread_mutex_t amx_mutex;		/* must be first */
	_Atomic unsigned amx_refs;		/* amaps using it */
};

struct vm_amap {
	pthread_mutex_t *am_lock;	/* in a struct amap_mutex; fixed */
	unsigned am_ref;		/* arefs pointing at the amap */
	int am_flags;			/* AMAP_SHARED */
	size_t am_nslot;		/* slots */
	size_t am_nused;		/* slots holding an anon */
	unsigned am_depth;		/* interior levels above the leaves */
	void *am_root;			/* tree root, NULL iff empty */
	uint64_t am_rootmask;		/* the root's mask */
	struct amap_pprun *am_ppref;	/* NULL, runs, or AMAP_PPREF_NONE */
	size_t am_nppref;		/* runs in use */
	size_t am_ppmax;		/* runs allocated */
};

static struct pool amap_pool;
static struct pool amap_mutex_pool;
static struct pool amap_node_pool;
static struct pool amap_leaf_pool;

#define AMAP_LOCKED(amap) KDASSERT(amap_mutex_owned(amap))

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

#ifdef USRVM_DEBUG
/* Held by somebody (pthreads cannot tell us whether by this thread). */
static bool
amap_mutex_owned(struct vm_amap *amap)
{
	if (pthread_mutex_trylock(amap->am_lock) == 0) {
		pthread_mutex_unlock(amap->am_lock);
		return false;
	}
	return true;
}
#endif

/* Bits lo..hi (inclusive) of a 64-bit word, lo <= hi <= 63. */
static inline uint64_t
amap_bits(unsigned lo, unsigned hi)
{
	return (~(uint64_t)0 >> (63 - hi)) & (~(uint64_t)0 << lo);
}

/* Slots covered by a subtree whose root is at level l. */
static inline size_t
amap_span(unsigned l)
{
	return (size_t)1 << (AMAP_LEAF_SHIFT + AMAP_NODE_SHIFT * l);
}

/* Shift of the slot bits that index a level-l node (l >= 1). */
static inline unsigned
amap_cshift(unsigned l)
{
	return AMAP_LEAF_SHIFT + AMAP_NODE_SHIFT * (l - 1);
}

/* Index into the level-l node (l = 0: the leaf) on the way to slot s. */
static inline unsigned
amap_index(size_t s, unsigned l)
{
	if (l == 0)
		return s & (AMAP_LEAF_SLOTS - 1);
	return (s >> amap_cshift(l)) & (AMAP_NODE_FANOUT - 1);
}

static unsigned
amap_depth_for(size_t nslots)
{
	unsigned h = 0;

	while (amap_span(h) < nslots)
		h++;
	return h;
}

static void
amap_tree_put(void *p, unsigned l)
{
	pool_put(l == 0 ? &amap_leaf_pool : &amap_node_pool, p);
}

/* The leaf holding slot s (absolute), or NULL.  Locked. */
static struct amap_leaf *
amap_leaf_of(const struct vm_amap *amap, size_t s)
{
	void *p = amap->am_root;

	for (unsigned l = amap->am_depth; l > 0 && p != NULL; l--)
		p = ((struct amap_node *)p)->amn_child[amap_index(s, l)];
	return p;
}

/*
 * amap_path: walk from the root to the leaf of absolute slot s, noting
 * for each level l where its node is linked (linkv[l]) and the mask that
 * describes it (maskv[l]).  A missing level l is linked in from fresh[l]
 * (amap_add's preallocated nodes); without fresh, every level must exist.
 * => amap locked.  Returns the leaf.
 */
static struct amap_leaf *
amap_path(struct vm_amap *amap, size_t s, void *const *fresh,
    void **linkv[], uint64_t *maskv[])
{
	void **linkp = &amap->am_root;
	uint64_t *maskp = &amap->am_rootmask;

	for (unsigned l = amap->am_depth;; l--) {
		if (*linkp == NULL) {
			KASSERT(fresh != NULL && fresh[l] != NULL &&
			    *maskp == 0);
			*linkp = fresh[l];
		}
		linkv[l] = linkp;
		maskv[l] = maskp;
		if (l == 0)
			break;
		struct amap_node *node = *linkp;
		unsigned i = amap_index(s, l);
		linkp = &node->amn_child[i];
		maskp = &node->amn_mask[i];
	}
	return *linkp;
}

/* Absolute slot of aref slot `slot`, checked. */
static inline size_t
amap_abs(const struct vm_aref *aref, size_t slot)
{
	size_t s = aref->ar_pageoff + slot;

	KASSERT(s >= slot && s < aref->ar_amap->am_nslot);
	return s;
}

/* ------------------------------------------------------------------ */
/* The lock object                                                     */
/* ------------------------------------------------------------------ */

static struct amap_mutex *
amap_mutex_alloc(void)
{
	struct amap_mutex *amx = pool_get(&amap_mutex_pool, NULL);

	if (amx == NULL)
		return NULL;
	pthread_mutex_init(&amx->amx_mutex, NULL);
	atomic_init(&amx->amx_refs, 1);
	return amx;
}

/*
 * amap_lock_hold: keep an amap lock object alive past its amap, for the
 * page daemon, which holds pages busy with the lock dropped while their
 * anons may be freed (NetBSD's rw_obj_hold for PG_RELEASED pages).
 */
void
amap_lock_hold(pthread_mutex_t *lock)
{
	struct amap_mutex *amx = container_of(lock, struct amap_mutex,
	    amx_mutex);

	atomic_fetch_add_explicit(&amx->amx_refs, 1, memory_order_relaxed);
}

/*
 * amap_lock_rele: drop one use (an amap's, or a hold) of a lock object.
 * => the mutex must not be held.
 */
void
amap_lock_rele(pthread_mutex_t *lock)
{
	struct amap_mutex *amx = container_of(lock, struct amap_mutex,
	    amx_mutex);

	if (atomic_fetch_sub_explicit(&amx->amx_refs, 1,
	    memory_order_acq_rel) != 1)
		return;
	pthread_mutex_destroy(&amx->amx_mutex);
	pool_put(&amap_mutex_pool, amx);
}

/* ------------------------------------------------------------------ */
/* System init                                                         */
/* ------------------------------------------------------------------ */

/*
 * amap_sys_init: set up the amap pools.  Called once by usrvm_init,
 * before any amap exists.
 */
int
amap_sys_init(void)
{
	pool_init(&amap_pool, "amap", sizeof(struct vm_amap), 64, 512);
	pool_init(&amap_mutex_pool, "amapmtx", sizeof(struct amap_mutex),
	    64, 512);
	pool_init(&amap_node_pool, "amapnode", sizeof(struct amap_node),
	    32, 256);
	pool_init(&amap_leaf_pool, "amapleaf", sizeof(struct amap_leaf),
	    64, 1024);
	return 0;
}

/*
 * amap_sys_fini: tear the pools down.  Every amap must be gone.
 */
void
amap_sys_fini(void)
{
	pool_destroy(&amap_leaf_pool);
	pool_destroy(&amap_node_pool);
	pool_destroy(&amap_mutex_pool);
	pool_destroy(&amap_pool);
}

/* ------------------------------------------------------------------ */
/* Allocation, locking, accessors                                      */
/* ------------------------------------------------------------------ */

/*
 * amap_alloc: a new, empty amap of nslots slots.
 * => am_ref is 1 (the caller's aref); no lock is held on return.
 * => never sleeps; NULL if memory is exhausted.
 */
struct vm_amap *
amap_alloc(size_t nslots)
{
	struct vm_amap *amap;
	struct amap_mutex *amx;

	KASSERT(nslots > 0 && nslots <= AMAP_MAXSLOTS);
	if ((amap = pool_get(&amap_pool, NULL)) == NULL)
		return NULL;
	if ((amx = amap_mutex_alloc()) == NULL) {
		pool_put(&amap_pool, amap);
		return NULL;
	}
	/* pool_get zeroed the rest: no tree, no ppref, not shared. */
	amap->am_lock = &amx->amx_mutex;
	amap->am_ref = 1;
	amap->am_nslot = nslots;
	amap->am_depth = amap_depth_for(nslots);
	return amap;
}

void
amap_lock(struct vm_amap *amap)
{
	pthread_mutex_lock(amap->am_lock);
}

void
amap_unlock(struct vm_amap *amap)
{
	pthread_mutex_unlock(amap->am_lock);
}

/*
 * amap_lockptr: the mutex guarding amap (shared with the amaps it shares
 * anons with).  Fixed for the amap's life: no lock needed.
 */
pthread_mutex_t *
amap_lockptr(struct vm_amap *amap)
{
	return amap->am_lock;
}

/*
 * amap_nslots: the amap's size in slots.  Only amap_extend changes it,
 * and only while the caller holds the amap's sole reference, so the
 * holder of a reference may read it unlocked.
 */
size_t
amap_nslots(const struct vm_amap *amap)
{
	return amap->am_nslot;
}

/* locked */
unsigned
amap_refs(const struct vm_amap *amap)
{
	return amap->am_ref;
}

/* locked */
bool
amap_shared(const struct vm_amap *amap)
{
	return (amap->am_flags & AMAP_SHARED) != 0;
}

/* locked */
size_t
amap_nused(const struct vm_amap *amap)
{
	return amap->am_nused;
}

/* locked */
bool
amap_cow(const struct vm_amap *amap)
{
	return (amap->am_flags & AMAP_COPIED) != 0;
}

static size_t amap_pp_find(const struct vm_amap *amap, size_t s);
static inline bool amap_pp_active(const struct vm_amap *amap);

/*
 * amap_slot_refs: how many arefs reference aref slot `slot`: its partial
 * count, or am_ref when partial counts are not kept (every reference then
 * covers every slot, as far as anyone can tell).
 * => amap locked.
 */
unsigned
amap_slot_refs(const struct vm_aref *aref, size_t slot)
{
	const struct vm_amap *amap = aref->ar_amap;

	if (!amap_pp_active(amap))
		return amap->am_ref;
	return amap->am_ppref[amap_pp_find(amap, amap_abs(aref, slot))].ppr_ref;
}

/* ------------------------------------------------------------------ */
/* Slots: lookup, add, unadd                                           */
/* ------------------------------------------------------------------ */

/*
 * amap_lookup: the anon in aref slot `slot`, or NULL.
 * => amap locked; the anon is guarded by the same lock.
 * => cost: am_depth + 1 pointer loads.
 */
struct vm_anon *
amap_lookup(const struct vm_aref *aref, size_t slot)
{
	size_t s = amap_abs(aref, slot);
	struct amap_leaf *leaf = amap_leaf_of(aref->ar_amap, s);
	struct vm_anon *anon;

	if (leaf == NULL)
		return NULL;
	anon = leaf->aml_anon[s & (AMAP_LEAF_SLOTS - 1)];
	KASSERT(anon == NULL || anon->an_ref > 0);
	return anon;
}

/*
 * amap_lookups: anons[i] = amap_lookup(aref, slot + i) for i < n.
 * => amap locked.
 * => one descent per leaf crossed, absent leaves filled with NULL.
 */
void
amap_lookups(const struct vm_aref *aref, size_t slot, struct vm_anon **anons,
    size_t n)
{
	const struct vm_amap *amap = aref->ar_amap;
	size_t s, i = 0;

	if (n == 0)
		return;
	s = amap_abs(aref, slot);
	KASSERT(n <= amap->am_nslot - s);
	while (i < n) {
		unsigned off = s & (AMAP_LEAF_SLOTS - 1);
		size_t cnt = MIN(n - i, (size_t)(AMAP_LEAF_SLOTS - off));
		struct amap_leaf *leaf = amap_leaf_of(amap, s);

		if (leaf == NULL)
			memset(&anons[i], 0, cnt * sizeof(anons[0]));
		else
			memcpy(&anons[i], &leaf->aml_anon[off],
			    cnt * sizeof(anons[0]));
		i += cnt;
		s += cnt;
	}
}

/*
 * amap_add: put anon in aref slot `slot`.
 * => amap locked.
 * => replace: the slot holds an anon being replaced; its reference
 *    stays with the caller.  Otherwise the slot must be empty.
 * => the amap takes over the caller's reference to anon.
 * => 0, or ENOMEM if a leaf or node could not be allocated (from the
 *    pools: never sleeps); then the amap is unchanged.
 */
int
amap_add(const struct vm_aref *aref, size_t slot, struct vm_anon *anon,
    bool replace)
{
	struct vm_amap *amap = aref->ar_amap;
	size_t s = amap_abs(aref, slot);
	void *fresh[AMAP_MAXDEPTH + 1] = { NULL };
	void **linkv[AMAP_MAXDEPTH + 1];
	uint64_t *maskv[AMAP_MAXDEPTH + 1];
	struct amap_leaf *leaf;
	unsigned l, missing, i0;
	void *p;

	AMAP_LOCKED(amap);
	KASSERT(anon != NULL && anon->an_ref > 0);
	/* An anon already in an amap of this family (amap_copy) has this
	 * lock: no store, since the page daemon reads an_lock of queued
	 * pages without it (pd_grab). */
	if (anon->an_lock != amap->am_lock)
		anon->an_lock = amap->am_lock;

	if (replace) {
		struct amap_leaf *leaf = amap_leaf_of(amap, s);
		unsigned i = amap_index(s, 0);

		KASSERT(leaf != NULL && leaf->aml_anon[i] != NULL);
		leaf->aml_anon[i] = anon;
		return 0;
	}

	/*
	 * Find how deep the existing path goes, then allocate the missing
	 * levels (missing - 1 nodes and a leaf) before touching anything.
	 */
	p = amap->am_root;
	for (l = amap->am_depth; l > 0 && p != NULL; l--)
		p = ((struct amap_node *)p)->amn_child[amap_index(s, l)];
	missing = p == NULL ? l + 1 : 0;
	for (unsigned k = 0; k < missing; k++) {
		/* fresh[k] is for level k. */
		fresh[k] = pool_get(k == 0 ? &amap_leaf_pool : &amap_node_pool,
		    NULL);
		if (fresh[k] == NULL) {
			while (k-- > 0)
				amap_tree_put(fresh[k], k);
			return ENOMEM;
		}
	}

	/* Descend again, linking the new levels in. */
	leaf = amap_path(amap, s, fresh, linkv, maskv);
	i0 = amap_index(s, 0);
	KASSERT(leaf->aml_anon[i0] == NULL);
	leaf->aml_anon[i0] = anon;
	amap->am_nused++;

	/* Set the mask bits bottom up while masks turn non-zero. */
	for (l = 0; l <= amap->am_depth; l++) {
		uint64_t was = *maskv[l];

		*maskv[l] = was | ((uint64_t)1 << amap_index(s, l));
		if (was != 0)
			break;
	}
	return 0;
}

/*
 * amap_unadd: empty aref slot `slot`, which must hold an anon.  The
 * anon's reference goes back to the caller.
 * => amap locked.
 * => frees the leaf and nodes that become empty.
 */
void
amap_unadd(const struct vm_aref *aref, size_t slot)
{
	struct vm_amap *amap = aref->ar_amap;
	size_t s = amap_abs(aref, slot);
	void **linkv[AMAP_MAXDEPTH + 1];
	uint64_t *maskv[AMAP_MAXDEPTH + 1];
	struct amap_leaf *leaf;
	unsigned l, i0;

	AMAP_LOCKED(amap);
	leaf = amap_path(amap, s, NULL, linkv, maskv);
	i0 = amap_index(s, 0);
	KASSERT(leaf->aml_anon[i0] != NULL);
	leaf->aml_anon[i0] = NULL;
	KASSERT(amap->am_nused > 0);
	amap->am_nused--;

	/* Clear mask bits bottom up, freeing nodes that become empty. */
	for (l = 0; l <= amap->am_depth; l++) {
		*maskv[l] &= ~((uint64_t)1 << amap_index(s, l));
		if (*maskv[l] != 0)
			break;
		amap_tree_put(*linkv[l], l);
		*linkv[l] = NULL;
	}
}

/* ------------------------------------------------------------------ */
/* Range walks: wipe and next_used                                     */
/* ------------------------------------------------------------------ */

/*
 * amap_wipe_sub: empty the slots in [lo, hi) of the subtree at *linkp
 * (level l, first slot base, mask *maskp), dropping one reference of each
 * anon.  lo and hi lie inside the subtree and lo < hi.  Frees the subtree
 * if it becomes empty.  Returns how many anons were removed.
 * => amap locked.  Visits only existing nodes that intersect [lo, hi).
 */
static size_t
amap_wipe_sub(void **linkp, uint64_t *maskp, unsigned l, size_t base,
    size_t lo, size_t hi)
{
	size_t n = 0;
	uint64_t bits;

	if (l == 0) {
		struct amap_leaf *leaf = *linkp;

		bits = *maskp & amap_bits(lo - base, hi - 1 - base);
		*maskp &= ~bits;
		while (bits != 0) {
			unsigned i = __builtin_ctzll(bits);
			struct vm_anon *anon = leaf->aml_anon[i];

			bits &= bits - 1;
			KASSERT(anon != NULL);
			leaf->aml_anon[i] = NULL;
			anon_unref(anon);
			n++;
		}
	} else {
		struct amap_node *node = *linkp;
		unsigned cs = amap_cshift(l);
		size_t cspan = (size_t)1 << cs;

		bits = *maskp & amap_bits((lo - base) >> cs,
		    (hi - 1 - base) >> cs);
		while (bits != 0) {
			unsigned i = __builtin_ctzll(bits);
			size_t cb = base + ((size_t)i << cs);

			bits &= bits - 1;
			n += amap_wipe_sub(&node->amn_child[i],
			    &node->amn_mask[i], l - 1, cb, MAX(lo, cb),
			    MIN(hi, cb + cspan));
			if (node->amn_mask[i] == 0)
				*maskp &= ~((uint64_t)1 << i);
		}
	}
	if (*maskp == 0) {
		amap_tree_put(*linkp, l);
		*linkp = NULL;
	}
	return n;
}

/*
 * amap_wipe_abs: amap_wipe_range on absolute slots [lo, lo + n).
 * => amap locked.
 */
static size_t
amap_wipe_abs(struct vm_amap *amap, size_t lo, size_t n)
{
	size_t removed;

	AMAP_LOCKED(amap);
	KASSERT(lo <= amap->am_nslot && n <= amap->am_nslot - lo);
	if (n == 0 || amap->am_root == NULL)
		return 0;
	removed = amap_wipe_sub(&amap->am_root, &amap->am_rootmask,
	    amap->am_depth, 0, lo, lo + n);
	KASSERT(removed <= amap->am_nused);
	amap->am_nused -= removed;
	return removed;
}

/*
 * amap_wipe_range: empty aref slots [slot, slot + n), dropping one
 * reference of each anon found (anon_unref: the anon may be freed).
 * => amap locked.
 * => cost proportional to the storage present in the range, not to n.
 * => returns how many anons were removed.
 */
size_t
amap_wipe_range(const struct vm_aref *aref, size_t slot, size_t n)
{
	struct vm_amap *amap = aref->ar_amap;

	if (n == 0)
		return 0;
	return amap_wipe_abs(amap, amap_abs(aref, slot), n);
}

/*
 * amap_next_sub: the first used slot in [lo, hi) of the subtree p (level
 * l, first slot base, mask `mask`), or SIZE_MAX.
 * => amap locked.  Every existing subtree is non-empty, so at most two
 *    children per level are entered.
 */
static size_t
amap_next_sub(const void *p, uint64_t mask, unsigned l, size_t base,
    size_t lo, size_t hi)
{
	uint64_t bits;

	if (l == 0) {
		bits = mask & amap_bits(lo - base, hi - 1 - base);
		return bits == 0 ? SIZE_MAX : base + __builtin_ctzll(bits);
	}

	const struct amap_node *node = p;
	unsigned cs = amap_cshift(l);
	size_t cspan = (size_t)1 << cs;

	bits = mask & amap_bits((lo - base) >> cs, (hi - 1 - base) >> cs);
	while (bits != 0) {
		unsigned i = __builtin_ctzll(bits);
		size_t cb = base + ((size_t)i << cs);
		size_t r;

		bits &= bits - 1;
		r = amap_next_sub(node->amn_child[i], node->amn_mask[i], l - 1,
		    cb, MAX(lo, cb), MIN(hi, cb + cspan));
		if (r != SIZE_MAX)
			return r;
	}
	return SIZE_MAX;
}

/* amap_next_used on absolute slots.  Locked. */
static size_t
amap_next_abs(const struct vm_amap *amap, size_t lo, size_t n)
{
	if (n == 0 || amap->am_root == NULL)
		return SIZE_MAX;
	return amap_next_sub(amap->am_root, amap->am_rootmask, amap->am_depth,
	    0, lo, lo + n);
}

/*
 * amap_next_used: the first used aref slot s, slot <= s < slot + n, or
 * SIZE_MAX.  n is clipped to the end of the amap.
 * => amap locked.
 * => cost O(am_depth), whatever n.
 */
size_t
amap_next_used(const struct vm_aref *aref, size_t slot, size_t n)
{
	const struct vm_amap *amap = aref->ar_amap;
	size_t s, r;

	if (n == 0)
		return SIZE_MAX;
	s = amap_abs(aref, slot);
	n = MIN(n, amap->am_nslot - s);
	r = amap_next_abs(amap, s, n);
	return r == SIZE_MAX ? SIZE_MAX : r - aref->ar_pageoff;
}

/* ------------------------------------------------------------------ */
/* Partial references                                                  */
/* ------------------------------------------------------------------ */

static inline bool
amap_pp_active(const struct vm_amap *amap)
{
	return amap->am_ppref != NULL && amap->am_ppref != AMAP_PPREF_NONE;
}

/*
 * amap_pp_drop: give up partial reference counting for good (ppref
 * could not be allocated or grown).  Safe at any time: without ppref the
 * anons of unreferenced ranges just live until the amap dies.
 * => amap locked.
 */
static void
amap_pp_drop(struct vm_amap *amap)
{
	if (amap_pp_active(amap))
		kmem_free(amap->am_ppref,
		    amap->am_ppmax * sizeof(struct amap_pprun));
	amap->am_ppref = AMAP_PPREF_NONE;
	amap->am_nppref = amap->am_ppmax = 0;
}

/*
 * amap_pp_establish: start partial reference counting, every slot at
 * the current am_ref.
 * => amap locked; ppref not established yet.  Never sleeps.
 */
static void
amap_pp_establish(struct vm_amap *amap)
{
	struct amap_pprun *runs;

	KASSERT(amap->am_ppref == NULL);
	runs = kmem_alloc(AMAP_PPREF_MINRUNS * sizeof(*runs));
	if (runs == NULL) {
		amap_pp_drop(amap);
		return;
	}
	runs[0].ppr_start = 0;
	runs[0].ppr_len = amap->am_nslot;
	runs[0].ppr_ref = amap->am_ref;
	amap->am_ppref = runs;
	amap->am_nppref = 1;
	amap->am_ppmax = AMAP_PPREF_MINRUNS;
}

/*
 * amap_pp_reserve: make room for `more` runs.  false if the array could
 * not be grown (ppref is then dropped).
 * => amap locked, ppref active.
 */
static bool
amap_pp_reserve(struct vm_amap *amap, size_t more)
{
	struct amap_pprun *runs;
	size_t max;

	if (amap->am_nppref + more <= amap->am_ppmax)
		return true;
	max = MAX(amap->am_ppmax * 2, amap->am_nppref + more);
	runs = kmem_alloc(max * sizeof(*runs));
	if (runs == NULL) {
		amap_pp_drop(amap);
		return false;
	}
	memcpy(runs, amap->am_ppref, amap->am_nppref * sizeof(*runs));
	kmem_free(amap->am_ppref, amap->am_ppmax * sizeof(*runs));
	amap->am_ppref = runs;
	amap->am_ppmax = max;
	return true;
}

/*
 * amap_pp_find: index of the run containing slot s.
 * => amap locked, ppref active, s < am_nslot.
 */
static size_t
amap_pp_find(const struct vm_amap *amap, size_t s)
{
	const struct amap_pprun *runs = amap->am_ppref;
	size_t lo = 0, hi = amap->am_nppref;

	/* The last run with ppr_start <= s. */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;

		if (runs[mid].ppr_start <= s)
			lo = mid;
		else
			hi = mid;
	}
	KASSERT(runs[lo].ppr_start <= s &&
	    s - runs[lo].ppr_start < runs[lo].ppr_len);
	return lo;
}

/*
 * amap_pp_split: make a run start at slot s; returns its index
 * (am_nppref if s == am_nslot).
 * => amap locked, ppref active, room for one more run reserved.
 */
static size_t
amap_pp_split(struct vm_amap *amap, size_t s)
{
	struct amap_pprun *runs = amap->am_ppref;
	size_t i, head;

	if (s == amap->am_nslot)
		return amap->am_nppref;
	i = amap_pp_find(amap, s);
	if (runs[i].ppr_start == s)
		return i;
	KASSERT(amap->am_nppref < amap->am_ppmax);
	memmove(&runs[i + 2], &runs[i + 1],
	    (amap->am_nppref - i - 1) * sizeof(*runs));
	amap->am_nppref++;
	head = s - runs[i].ppr_start;
	runs[i + 1].ppr_start = s;
	runs[i + 1].ppr_len = runs[i].ppr_len - head;
	runs[i + 1].ppr_ref = runs[i].ppr_ref;
	runs[i].ppr_len = head;
	return i + 1;
}

/*
 * amap_pp_merge: merge adjacent runs with equal counts.
 * => amap locked, ppref active.
 */
static void
amap_pp_merge(struct vm_amap *amap)
{
	struct amap_pprun *runs = amap->am_ppref;
	size_t out = 0;

	for (size_t i = 1; i < amap->am_nppref; i++) {
		if (runs[i].ppr_ref == runs[out].ppr_ref)
			runs[out].ppr_len += runs[i].ppr_len;
		else
			runs[++out] = runs[i];
	}
	amap->am_nppref = out + 1;
}

/*
 * amap_pp_adjref: add adj (+1 or -1) to the partial reference count of
 * slots [off, off + len); the anons of every range whose count reaches
 * zero are wiped (anon_unref).
 * => amap locked, ppref active, am_ref already adjusted.
 * => if the run array cannot grow, ppref is dropped instead.
 */
static void
amap_pp_adjref(struct vm_amap *amap, size_t off, size_t len, int adj)
{
	struct amap_pprun *runs;
	size_t first, end;

	KASSERT(len > 0 && off < amap->am_nslot &&
	    len <= amap->am_nslot - off);
	if (!amap_pp_reserve(amap, 2))
		return;
	first = amap_pp_split(amap, off);
	end = amap_pp_split(amap, off + len);
	runs = amap->am_ppref;
	for (size_t i = first; i < end; i++) {
		KASSERT(adj > 0 || runs[i].ppr_ref > 0);
		runs[i].ppr_ref += adj;
		KASSERT(runs[i].ppr_ref <= amap->am_ref);
		if (runs[i].ppr_ref == 0)
			amap_wipe_abs(amap, runs[i].ppr_start, runs[i].ppr_len);
	}
	amap_pp_merge(amap);
}

/*
 * amap_adjref: add adj (+1 or -1) to am_ref and to the partial counts of
 * [offset, offset + len) (all: of every slot).
 * => amap locked.
 * => ppref is established before am_ref changes, so that it starts from
 *    the count every slot had until now.
 */
static void
amap_adjref(struct vm_amap *amap, size_t offset, size_t len, int adj,
    bool all)
{
	if (!all) {
		KASSERT(len > 0 && offset < amap->am_nslot &&
		    len <= amap->am_nslot - offset);
		if (len == amap->am_nslot)
			all = true;
	}
	if (amap->am_ppref == NULL && !all)
		amap_pp_establish(amap);
	amap->am_ref += adj;
	if (amap_pp_active(amap)) {
		if (all)
			amap_pp_adjref(amap, 0, amap->am_nslot, adj);
		else
			amap_pp_adjref(amap, offset, len, adj);
	}
}

/* ------------------------------------------------------------------ */
/* References                                                          */
/* ------------------------------------------------------------------ */

/*
 * amap_wipeout: the last reference is gone: drop every anon and free the
 * amap.
 * => amap locked on entry, am_ref == 0; returns with the amap freed (and
 *    its lock released).
 */
static void
amap_wipeout(struct vm_amap *amap)
{
	pthread_mutex_t *lock = amap->am_lock;

	KASSERT(amap->am_ref == 0);
	amap_wipe_abs(amap, 0, amap->am_nslot);
	KASSERT(amap->am_nused == 0 && amap->am_root == NULL);
	if (amap_pp_active(amap))
		kmem_free(amap->am_ppref,
		    amap->am_ppmax * sizeof(struct amap_pprun));
	pthread_mutex_unlock(lock);
	amap_lock_rele(lock);
	pool_put(&amap_pool, amap);
}

/*
 * amap_ref: add a reference to slots [offset, offset + len) (absolute);
 * AMAP_REFALL: to the whole amap.  AMAP_SHARED marks the amap shared.
 * => amap unlocked (we lock).  Never sleeps.
 */
void
amap_ref(struct vm_amap *amap, size_t offset, size_t len, int flags)
{
	amap_lock(amap);
	KASSERT(amap->am_ref > 0);
	if (flags & AMAP_SHARED)
		amap->am_flags |= AMAP_SHARED;
	if (flags & AMAP_COW)
		amap->am_flags |= AMAP_COPIED;
	amap_adjref(amap, offset, len, 1, (flags & AMAP_REFALL) != 0);
	amap_unlock(amap);
}

/*
 * amap_unref: drop a reference to [offset, offset + len) (absolute);
 * AMAP_REFALL: to the whole amap.
 * => amap unlocked (we lock).  The amap may be freed on return.
 * => the anons of slots nobody references any more are unref'd (and
 *    freed if that was their last reference); with the last reference,
 *    every anon and the amap itself.
 * => never sleeps, but may free pages (anon_free).
 */
void
amap_unref(struct vm_amap *amap, size_t offset, size_t len, int flags)
{
	amap_lock(amap);
	KASSERT(amap->am_ref > 0);
	if (amap->am_ref == 1) {
		amap->am_ref = 0;
		amap_wipeout(amap);	/* unlocks and frees */
		return;
	}
	/* Back to a single reference: no longer shared. */
	if (amap->am_ref == 2)
		amap->am_flags &= ~AMAP_SHARED;
	amap_adjref(amap, offset, len, -1, (flags & AMAP_REFALL) != 0);
	amap_unlock(amap);
}

/*
 * amap_copy: a new amap of len slots holding the anons of slots
 * [offset, offset + len) of src (absolute), each with one more reference
 * (UVM's amap_copy, for an entry that needs a private copy of a shared
 * amap).  The copy shares src's lock: anons shared between amaps are
 * guarded by one lock.  Both are marked copied (amap_cow).
 * => amap unlocked (we lock).  NULL on ENOMEM, with nothing changed.
 * => cost: proportional to the anons in the range, not to len.
 */
struct vm_amap *
amap_copy(struct vm_amap *src, size_t offset, size_t len)
{
	struct vm_aref sref = { .ar_pageoff = offset, .ar_amap = src }, dref;
	struct vm_amap *amap;
	size_t s = 0;

	KASSERT(len > 0 && offset < src->am_nslot &&
	    len <= src->am_nslot - offset);
	if ((amap = pool_get(&amap_pool, NULL)) == NULL)
		return NULL;
	amap_lock_hold(src->am_lock);
	amap->am_lock = src->am_lock;
	amap->am_ref = 1;
	amap->am_flags = AMAP_COPIED;
	amap->am_nslot = len;
	amap->am_depth = amap_depth_for(len);
	dref.ar_pageoff = 0;
	dref.ar_amap = amap;

	amap_lock(src);
	while (s < len && (s = amap_next_used(&sref, s, len - s)) != SIZE_MAX) {
		struct vm_anon *anon = amap_lookup(&sref, s);

		if (amap_add(&dref, s, anon, false) != 0) {
			/* Give back what was taken; unlocks the shared lock
			 * and drops the copy's use of it. */
			amap->am_ref = 0;
			amap_wipeout(amap);
			return NULL;
		}
		anon->an_ref++;
		s++;
	}
	src->am_flags |= AMAP_COPIED;
	amap_unlock(src);
	return amap;
}

/*
 * amap_splitref: split origref in two at `offset` slots from its start
 * (map entry clipping).  splitref becomes (amap, ar_pageoff + offset) and
 * am_ref grows by one; partial counts are unchanged (each slot is still
 * referenced by exactly one of the two halves), but are established
 * first if they were not.
 * => amap unlocked (we lock); the map holding origref is locked.
 */
void
amap_splitref(struct vm_aref *origref, struct vm_aref *splitref,
    size_t offset)
{
	struct vm_amap *amap = origref->ar_amap;

	KASSERT(amap != NULL && offset > 0);
	amap_lock(amap);
	KASSERT(amap->am_ref > 0);
	KASSERT(origref->ar_pageoff < amap->am_nslot &&
	    offset < amap->am_nslot - origref->ar_pageoff);
	if (amap->am_ppref == NULL)
		amap_pp_establish(amap);
	amap->am_ref++;		/* not a shared reference */
	splitref->ar_amap = amap;
	splitref->ar_pageoff = origref->ar_pageoff + offset;
	amap_unlock(amap);
}

/*
 * amap_extend: add `slots` empty slots at the end of the amap (UVM's
 * amap_extend forwards: a map entry grows over new memory just after it).
 * => amap unlocked (we lock).  Only the holder of the sole reference may
 *    extend (nobody else can see the new slots).
 * => with ppref, the new slots get count 1 (the caller's reference).
 * => 0, EBUSY (another reference: the amap is shared), or ENOMEM (too
 *    large, or a node could not be allocated).  The amap is unchanged on
 *    failure.
 */
int
amap_extend(struct vm_amap *amap, size_t slots)
{
	void *fresh[AMAP_MAXDEPTH];
	unsigned depth, k, need;
	size_t nslot;

	amap_lock(amap);
	if (amap->am_ref != 1) {
		amap_unlock(amap);
		return EBUSY;
	}
	if (slots == 0) {
		amap_unlock(amap);
		return 0;
	}
	if (slots > AMAP_MAXSLOTS - amap->am_nslot) {
		amap_unlock(amap);
		return ENOMEM;
	}
	nslot = amap->am_nslot + slots;
	depth = amap_depth_for(nslot);

	/* A taller tree: new roots above the old one (if any). */
	need = amap->am_root != NULL ? depth - amap->am_depth : 0;
	for (k = 0; k < need; k++) {
		if ((fresh[k] = pool_get(&amap_node_pool, NULL)) == NULL) {
			while (k-- > 0)
				pool_put(&amap_node_pool, fresh[k]);
			amap_unlock(amap);
			return ENOMEM;
		}
	}
	for (k = 0; k < need; k++) {
		struct amap_node *node = fresh[k];

		node->amn_child[0] = amap->am_root;
		node->amn_mask[0] = amap->am_rootmask;
		amap->am_root = node;
		amap->am_rootmask = 1;
	}
	amap->am_depth = depth;

	if (amap_pp_active(amap) && amap_pp_reserve(amap, 1)) {
		struct amap_pprun *run = &amap->am_ppref[amap->am_nppref++];

		run->ppr_start = amap->am_nslot;
		run->ppr_len = slots;
		run->ppr_ref = 1;
		amap_pp_merge(amap);
	}
	amap->am_nslot = nslot;
	amap_unlock(amap);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Validation                                                          */
/* ------------------------------------------------------------------ */

/*
 * amap_validate_sub: check the subtree p (level l, first slot base, mask
 * `mask`) and count its anons.
 */
static size_t
amap_validate_sub(const struct vm_amap *amap, const void *p, uint64_t mask,
    unsigned l, size_t base)
{
	size_t n = 0;

	if (p == NULL || mask == 0)
		usrvm_panic("amap %p: %s subtree at slot %zu level %u "
		    "(node %p, mask %#llx)", (const void *)amap,
		    p == NULL ? "missing" : "empty", base, l, p,
		    (unsigned long long)mask);
	if (base >= amap->am_nslot)
		usrvm_panic("amap %p: subtree at slot %zu beyond nslot %zu",
		    (const void *)amap, base, amap->am_nslot);

	if (l == 0) {
		const struct amap_leaf *leaf = p;

		for (unsigned i = 0; i < AMAP_LEAF_SLOTS; i++) {
			const struct vm_anon *anon = leaf->aml_anon[i];
			bool bit = (mask >> i) & 1;

			if ((anon != NULL) != bit)
				usrvm_panic("amap %p: slot %zu: anon %p but "
				    "used bit %d", (const void *)amap,
				    base + i, (const void *)anon, bit);
			if (anon == NULL)
				continue;
			if (base + i >= amap->am_nslot)
				usrvm_panic("amap %p: anon %p in slot %zu "
				    "beyond nslot %zu", (const void *)amap,
				    (const void *)anon, base + i,
				    amap->am_nslot);
			if (anon->an_ref == 0)
				usrvm_panic("amap %p: anon %p in slot %zu has "
				    "no reference", (const void *)amap,
				    (const void *)anon, base + i);
			n++;
		}
		return n;
	}

	const struct amap_node *node = p;
	unsigned cs = amap_cshift(l);

	if (mask >> AMAP_NODE_FANOUT)
		usrvm_panic("amap %p: node %p mask %#llx has bits beyond "
		    "fanout", (const void *)amap, p,
		    (unsigned long long)mask);
	for (unsigned i = 0; i < AMAP_NODE_FANOUT; i++) {
		bool bit = (mask >> i) & 1;

		if ((node->amn_child[i] != NULL) != bit)
			usrvm_panic("amap %p: node %p child %u is %p but "
			    "bit %d", (const void *)amap, p, i,
			    node->amn_child[i], bit);
		if (bit)
			n += amap_validate_sub(amap, node->amn_child[i],
			    node->amn_mask[i], l - 1,
			    base + ((size_t)i << cs));
		else if (node->amn_mask[i] != 0)
			usrvm_panic("amap %p: node %p child %u absent with "
			    "mask %#llx", (const void *)amap, p, i,
			    (unsigned long long)node->amn_mask[i]);
	}
	return n;
}

/*
 * amap_validate_pp: check the ppref runs.
 * => amap locked.
 */
static void
amap_validate_pp(struct vm_amap *amap)
{
	const struct amap_pprun *runs = amap->am_ppref;
	size_t next = 0;

	if (amap->am_nppref == 0 || amap->am_nppref > amap->am_ppmax)
		usrvm_panic("amap %p: ppref has %zu runs of %zu",
		    (void *)amap, amap->am_nppref, amap->am_ppmax);
	for (size_t i = 0; i < amap->am_nppref; i++) {
		const struct amap_pprun *r = &runs[i];

		if (r->ppr_start != next || r->ppr_len == 0 ||
		    r->ppr_len > amap->am_nslot - r->ppr_start)
			usrvm_panic("amap %p: ppref run %zu [%zu, +%zu) does "
			    "not continue at %zu within %zu slots",
			    (void *)amap, i, r->ppr_start, r->ppr_len, next,
			    amap->am_nslot);
		if (i > 0 && r->ppr_ref == runs[i - 1].ppr_ref)
			usrvm_panic("amap %p: ppref runs %zu and %zu both "
			    "count %u (not merged)", (void *)amap, i - 1, i,
			    r->ppr_ref);
		if (r->ppr_ref > amap->am_ref)
			usrvm_panic("amap %p: ppref run %zu [%zu, +%zu) count "
			    "%u > am_ref %u", (void *)amap, i, r->ppr_start,
			    r->ppr_len, r->ppr_ref, amap->am_ref);
		if (r->ppr_ref == 0) {
			size_t s = amap_next_abs(amap, r->ppr_start,
			    r->ppr_len);

			if (s != SIZE_MAX)
				usrvm_panic("amap %p: slot %zu holds an anon "
				    "in unreferenced ppref run [%zu, +%zu)",
				    (void *)amap, s, r->ppr_start,
				    r->ppr_len);
		}
		next = r->ppr_start + r->ppr_len;
	}
	if (next != amap->am_nslot)
		usrvm_panic("amap %p: ppref covers %zu of %zu slots",
		    (void *)amap, next, amap->am_nslot);
}

/*
 * amap_validate: check every invariant of the amap; panic on violation.
 * => amap unlocked (we lock).  Cost proportional to the storage.
 * => returns 0.
 */
int
amap_validate(struct vm_amap *amap)
{
	size_t n = 0;

	amap_lock(amap);
	if (amap->am_ref == 0)
		usrvm_panic("amap %p: no reference", (void *)amap);
	if ((amap->am_flags & AMAP_SHARED) && amap->am_ref < 2)
		usrvm_panic("amap %p: shared with am_ref %u", (void *)amap,
		    amap->am_ref);
	if (amap->am_nslot == 0 || amap->am_nslot > AMAP_MAXSLOTS ||
	    amap->am_depth != amap_depth_for(amap->am_nslot))
		usrvm_panic("amap %p: nslot %zu with depth %u", (void *)amap,
		    amap->am_nslot, amap->am_depth);
	if (atomic_load(&container_of(amap->am_lock, struct amap_mutex,
	    amx_mutex)->amx_refs) == 0)
		usrvm_panic("amap %p: lock object without reference",
		    (void *)amap);
	if ((amap->am_root == NULL) != (amap->am_rootmask == 0))
		usrvm_panic("amap %p: root %p with mask %#llx", (void *)amap,
		    amap->am_root, (unsigned long long)amap->am_rootmask);
	if (amap->am_root != NULL)
		n = amap_validate_sub(amap, amap->am_root, amap->am_rootmask,
		    amap->am_depth, 0);
	if (n != amap->am_nused)
		usrvm_panic("amap %p: am_nused %zu but %zu anons found",
		    (void *)amap, amap->am_nused, n);
	if (amap_pp_active(amap))
		amap_validate_pp(amap);
	else if (amap->am_ppref == NULL && amap->am_nppref != 0)
		usrvm_panic("amap %p: no ppref but %zu runs", (void *)amap,
		    amap->am_nppref);
	amap_unlock(amap);
	return 0;
}
