/*
 * amap.h: anonymous maps, the upper layer (UVM's uvm_amap.h).
 *
 * PART 1: INTERFACE.  struct vm_amap is opaque outside amap.c: its
 * representation can change (NetBSD uses flat arrays, OpenBSD hashed
 * chunks of 16 slots) without touching map or fault code.
 *
 * An amap is an array of anon slots (one per page) with a reference count
 * (am_ref: how many arefs point at it).  A map entry points into it with an
 * aref: (amap, first slot).  When only part of an amap is referenced (an
 * entry was split, or partly unmapped) per-slot partial reference counts
 * ("ppref") decide when a range of slots loses its last reference, and the
 * anons there are freed at once.
 *
 * Slots are page indices relative to the amap's start.  Storage is sparse:
 * an amap of 2^36 slots with three anons costs a few hundred bytes.
 *
 * Locking: functions marked "locked" need amap_lock held by the caller.
 * The others take it themselves.  Nothing here sleeps; allocations that
 * can happen on the fault path (amap_add) come from pools and may fail
 * with ENOMEM.
 */
#ifndef USRVM_AMAP_H
#define USRVM_AMAP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

struct vm_amap;
struct vm_anon;

struct vm_aref {
	size_t ar_pageoff;		/* first slot used by the entry */
	struct vm_amap *ar_amap;	/* NULL: no upper layer yet */
};

/* amap_ref/amap_unref flags */
#define AMAP_SHARED	0x1	/* the new reference shares the amap */
#define AMAP_REFALL	0x2	/* the reference covers the whole amap */
#define AMAP_COW	0x4	/* amap_ref: from another space (usrvm_fork) */

int amap_sys_init(void);
void amap_sys_fini(void);

/* A new amap of nslots empty slots, am_ref = 1.  NULL on ENOMEM. */
struct vm_amap *amap_alloc(size_t nslots);

void amap_lock(struct vm_amap *amap);
void amap_unlock(struct vm_amap *amap);
pthread_mutex_t *amap_lockptr(struct vm_amap *amap);
/*
 * Keep an amap lock (an_lock) alive while its amap may be freed, and let
 * it go (not held).  The page daemon holds one per page it keeps busy
 * without the lock.
 */
void amap_lock_hold(pthread_mutex_t *lock);
void amap_lock_rele(pthread_mutex_t *lock);

size_t amap_nslots(const struct vm_amap *amap);
unsigned amap_refs(const struct vm_amap *amap);	/* locked */
bool amap_shared(const struct vm_amap *amap);	/* locked */
size_t amap_nused(const struct vm_amap *amap);	/* locked: anons held */
/*
 * locked: may the amap's anons be seen from another space too (it was
 * referenced with AMAP_COW, made by amap_copy or copied)?  When false,
 * every anon in it is seen at exactly one address.  Sticky.
 */
bool amap_cow(const struct vm_amap *amap);
/* locked: arefs referencing aref slot `slot` (>= 1) */
unsigned amap_slot_refs(const struct vm_aref *aref, size_t slot);

/* locked: the anon at aref slot `slot` (relative to ar_pageoff), or NULL */
struct vm_anon *amap_lookup(const struct vm_aref *aref, size_t slot);
/* locked: anons[i] = amap_lookup(aref, slot + i) for i < n */
void amap_lookups(const struct vm_aref *aref, size_t slot,
    struct vm_anon **anons, size_t n);
/*
 * locked: put anon in the slot.  replace: the slot holds an anon that is
 * being replaced (its reference is the caller's to drop); otherwise the
 * slot must be empty.  0 or ENOMEM (storage for the slot could not be
 * allocated; the amap is unchanged).
 */
int amap_add(const struct vm_aref *aref, size_t slot, struct vm_anon *anon,
    bool replace);
/* locked: empty the slot (it must hold an anon); no reference dropped */
void amap_unadd(const struct vm_aref *aref, size_t slot);
/*
 * locked: empty every slot in [slot, slot + n) and drop one reference of
 * each anon found (anon_unref).  Cost proportional to the anons present,
 * not to n.  Returns how many anons were removed.
 */
size_t amap_wipe_range(const struct vm_aref *aref, size_t slot, size_t n);
/*
 * locked: the first used slot s with slot <= s < slot + n (relative to
 * ar_pageoff), or SIZE_MAX if there is none.  Cost proportional to the
 * storage skipped, not to n.
 */
size_t amap_next_used(const struct vm_aref *aref, size_t slot, size_t n);

/*
 * Add a reference to slots [offset, offset + len) of amap (offset absolute
 * in the amap).  AMAP_REFALL: the reference covers the whole amap.
 * AMAP_SHARED: mark the amap shared.
 */
void amap_ref(struct vm_amap *amap, size_t offset, size_t len, int flags);
/*
 * Drop a reference to [offset, offset + len).  Slots whose partial
 * reference count reaches zero lose their anons.  When am_ref reaches zero
 * every anon is dropped and the amap freed.  Takes and releases the lock
 * (the amap may be gone on return).
 */
void amap_unref(struct vm_amap *amap, size_t offset, size_t len, int flags);
/*
 * A new amap (am_ref 1, sharing src's lock) holding the anons of slots
 * [offset, offset + len) of src (absolute), each with one more
 * reference: copy-on-write after usrvm_fork.  NULL on ENOMEM.  Takes the
 * lock.
 */
struct vm_amap *amap_copy(struct vm_amap *src, size_t offset, size_t len);
/*
 * Split one reference in two at `offset` slots from origref's start (map
 * entry clipping): splitref gets (amap, origref->ar_pageoff + offset) and
 * am_ref grows by one; partial reference counting is established if it
 * was not.  Takes the lock.
 */
void amap_splitref(struct vm_aref *origref, struct vm_aref *splitref,
    size_t offset);
/*
 * Grow the amap by `slots` empty slots at its end (an entry merging the
 * new memory just after it).  0, EBUSY (am_ref is not 1) or ENOMEM.
 * Takes the lock.
 */
int amap_extend(struct vm_amap *amap, size_t slots);

/* Check every invariant; 0 or panic.  Takes the lock. */
int amap_validate(struct vm_amap *amap);

#endif /* USRVM_AMAP_H */
