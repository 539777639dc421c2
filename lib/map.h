/*
 * map.h: address maps and their entries (UVM's uvm_map.h).
 *
 * A map covers one space's reserved range.  Each entry maps [start, end)
 * to a lower layer (an object at an offset, or none: zero fill) and an
 * upper layer (an amap slice, created lazily for copy-on-write memory).
 *
 * Invariants (asserted in map_validate):
 *   - entries are page aligned, non-empty, sorted, non-overlapping;
 *   - protection & max_protection == protection;
 *   - NEEDSCOPY implies COPYONWRITE;
 *   - an entry without object and without amap is zero-fill private memory
 *     (COPYONWRITE|NEEDSCOPY, the amap comes on the first fault).
 *
 * Locking: m_lock (rwlock) guards the tree and every entry field.
 * m_version is bumped on every write unlock;
 * the fault path compares it after sleeping to know whether to refault.
 */
#ifndef USRVM_MAP_H
#define USRVM_MAP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "amap.h"
#include "map_tree.h"

struct vm_object;		/* object.h */
struct usrvm_space;

/* e_etype flags (UVM_ET_*) */
#define UVM_ET_COPYONWRITE	0x01	/* private: writes promote to anons */
#define UVM_ET_NEEDSCOPY	0x02	/* amap must be copied before write */
#define UVM_ET_FOREIGN		0x04	/* the application unmapped this range
					   and another mapping took it: keep
					   out, never touch it through pmap */
#define UVM_ET_COMMITTED	0x08	/* its size is committed against
					   budget + swap (page_commit) */

/* protections are USRVM_PROT_*; inheritance USRVM_INH_*; advice
 * USRVM_ADV_NORMAL/RANDOM/SEQUENTIAL (the only ones stored). */

struct vm_map_entry {
	struct map_tree_node tnode;	/* owned by map_tree.c */
	struct vm_map_entry *prev;	/* sorted list, owned by map_tree.c */
	struct vm_map_entry *next;
	uintptr_t start;		/* page aligned */
	uintptr_t end;			/* page aligned, exclusive */
	struct vm_object *object;	/* lower layer, or NULL */
	uint64_t offset;		/* byte offset of start in object */
	struct vm_aref aref;		/* upper layer (ar_amap may be NULL) */
	uint8_t protection;
	uint8_t max_protection;
	uint8_t inheritance;
	uint8_t advice;
	uint16_t wired_count;
	uint16_t etype;			/* UVM_ET_* */
	struct vm_map_entry *e_dead_next; /* dead-entry queue (two-phase) */
};

/*
 * Kinds of entry: private memory (COPYONWRITE, no object: zero fill
 * below the amap); a shared view of an object (object, no COPYONWRITE,
 * never an amap); a private view of an object (object and COPYONWRITE:
 * reads show the object's pages, writes promote them into anons of the
 * entry's amap, UVM's case 2B).
 */
static inline bool
entry_shares_object(const struct vm_map_entry *e)
{
	return e->object != NULL && !(e->etype & UVM_ET_COPYONWRITE);
}

struct vm_map {
	pthread_rwlock_t m_lock;
	struct map_tree m_tree;		/* m_lock */
	_Atomic uint64_t m_version;	/* bumped on every write unlock */
	struct vm_map_entry *_Atomic m_hint; /* last entry found */
};

int map_sys_init(void);		/* the entry pool */
void map_sys_fini(void);
int map_init(struct vm_map *map, uintptr_t min, uintptr_t max);
/* Remove every entry and release the reservation, except the ranges
 * another mapping took (the space is being destroyed). */
void map_fini(struct usrvm_space *vs);

void map_lock_read(struct vm_map *map);
void map_unlock_read(struct vm_map *map);
void map_lock_write(struct vm_map *map);
void map_unlock_write(struct vm_map *map);	/* bumps m_version */

/* Entry containing addr (uses and updates the hint), or NULL.  Locked. */
struct vm_map_entry *map_lookup(struct vm_map *map, uintptr_t addr);

/* The API operations (space.c validates the arguments first).  Positive
 * errno on failure, no side effect. */
int map_enter(struct usrvm_space *vs, uintptr_t *addrp, size_t len, int prot,
    int maxprot, bool fixed, struct vm_object *obj, uint64_t off,
    bool private);
int map_remove(struct usrvm_space *vs, uintptr_t start, uintptr_t end);
int map_protect(struct usrvm_space *vs, uintptr_t start, uintptr_t end,
    int prot, int maxprot);	/* maxprot -1: keep */
int map_check_covered(struct usrvm_space *vs, uintptr_t start, uintptr_t end);
/* usrvm_sync: 0, ENOMEM (a hole) or EIO.  No lock held. */
int map_sync(struct usrvm_space *vs, uintptr_t start, uintptr_t end,
    bool wait);
/*
 * usrvm_fork: a new space whose contents equal vs's now, per inheritance.
 * 0 or ENOTSUP/ENOMEM/EAGAIN, no child on failure.
 */
int map_fork(struct usrvm_space *vs, struct usrvm_space **childp);
/* Clear needs-copy on e: its own amap (copied if shared).  Map
 * write-locked.  0 or ENOMEM. */
int map_amap_copy(struct vm_map_entry *e);
/* Before [start, end) of e loses its pages: pages there that other
 * spaces' anons need move to frames (map.c).  => map write-locked. */
void map_rehome(struct vm_map_entry *e, uintptr_t start, uintptr_t end);
/* Open e's range in the pmap (map.c).  => 0 or the pmap's error. */
int pmap_enter_entry(struct vm_map_entry *e);
/* Private memory e becomes shared anonymous memory with the same bytes
 * (map_share.c).  => map write-locked.  0, ENOMEM, EIO or EAGAIN. */
int map_share_private(struct vm_map_entry *e);
/* Drop the pages of [start, end) (advice DONTNEED/FREE).  Application
 * threads only, no lock held: the kernel reports it with an event. */
int map_dontneed(struct usrvm_space *vs, uintptr_t start, uintptr_t end);
int map_advise(struct usrvm_space *vs, uintptr_t start, uintptr_t end, int adv);
int map_inherit(struct usrvm_space *vs, uintptr_t start, uintptr_t end, int inh);

/*
 * The application itself discarded [start, end) (madvise DONTNEED/REMOVE,
 * or munmap/mremap away): drop the anons there so nothing stale remains.
 * Called from the fault threads on userfaultfd events.
 */
void map_discard(struct usrvm_space *vs, uintptr_t start, uintptr_t end);

/*
 * The application unmapped [start, end) itself (munmap, mremap): forget
 * the entries there and take the range back; if another mapping took it,
 * a FOREIGN entry keeps the runtime away from it.  Fault threads.
 */
void map_forget(struct usrvm_space *vs, uintptr_t start, uintptr_t end);

/* In a fork(2) child (fork.c): the map's and its amaps' locks made new;
 * an entry whose range the kernel maps now, made FOREIGN. */
void map_fork_child(struct vm_map *map);
void map_fork_foreign(struct vm_map_entry *e);

/* Whole-map validation (expensive, for tests and debug builds). */
int map_validate(struct vm_map *map);

#endif /* USRVM_MAP_H */
