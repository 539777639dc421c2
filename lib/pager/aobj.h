/*
 * aobj.h: the anonymous object, shared anonymous memory (UVM's
 * uvm_aobj.c).
 *
 * usrvm_map(USRVM_MAP_SHARED | USRVM_MAP_ANON) makes one: zero-fill
 * memory whose pages every mapping of it shares (the mapping's own
 * entries after a clip, and the entries usrvm_fork gives children with
 * SHARE inheritance).  Its pages live in the object's page cache like a
 * file's (object.h, PART 2), so a write through one mapping is in every
 * other at once; its backing store is the swap device.  Each page of the
 * object has at most one swap slot (the aobj's slot index):
 *   - a page never written reads as zeros, and is clean: the page daemon
 *     drops it with no I/O;
 *   - the first write through any view makes it dirty, and frees the slot
 *     it had (its bytes there are stale: UVM's uao_dropswap);
 *   - the page daemon wants dirty pages clean: the flusher writes them to
 *     new slots, clustered (runs of consecutive dirty pages get
 *     consecutive slots, one write each), and the daemon then drops them;
 *   - a fault on a page with a slot reads it back, with the pages after
 *     it whose slots follow (the cluster it went out with).
 * The object commits its size against budget + swap when made, as
 * private memory does, and gives its pages, slots and commit back when
 * its last mapping goes.
 */
#ifndef USRVM_AOBJ_H
#define USRVM_AOBJ_H

#include <stdbool.h>
#include <stdint.h>

#include "object.h"

/*
 * aobj_create: a new object of len bytes (a page multiple), referenced
 * once, its size committed.  => 0, ENOMEM (commit, memory) or an errno.
 */
int aobj_create(uint64_t len, struct vm_object **objp);

/* Is obj an anonymous object? */
bool aobj_is(const struct vm_object *obj);

/* The flusher's round (flusher.c): clean the objects the daemon asked. */
void aobj_clean_round(uint64_t round);
/* In a fork(2) child, views given their copies: the aobjs forgotten. */
void aobj_fork_child(void);

/*
 * aobj_adopt: the page at off of a new aobj (no view yet) takes over
 * what private memory held there: its bytes src, as a resident dirty
 * page (counted resident: the caller frees the page it replaces), or,
 * with src NULL, its swap slot (SWSLOT_LOST: lost; 0: none, taking back
 * a slot handed over, which the aobj then does not free).  => 0 or
 * ENOMEM.
 */
int aobj_adopt(struct vm_object *obj, uint64_t off, const void *src,
    uint32_t slot);

#endif /* USRVM_AOBJ_H */
