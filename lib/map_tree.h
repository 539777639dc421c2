/*
 * map_tree.h: the sorted tree of map entries of one map (the tree half of
 * UVM's uvm_map.c).
 *
 * An AVL tree of vm_map_entry keyed by start address, augmented with the
 * largest free gap in each subtree, so the free-space search is
 * O(log n); entries are also on a sorted doubly linked list (e->prev,
 * e->next) for O(1) neighbours, as UVM keeps both.
 *
 * The gap of an entry is the free space just before it:
 *	gap(e) = e->start - (e->prev ? e->prev->end : t->min)
 * The space after the last entry (t->max - last->end) is not stored in any
 * node; the search checks it separately.
 *
 * Locking: the caller holds the map lock (write for changes, read for
 * lookups).  Nothing here allocates: the entry carries its own node.
 */
#ifndef USRVM_MAP_TREE_H
#define USRVM_MAP_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm_map_entry;

struct map_tree {
	struct vm_map_entry *mt_root;
	struct vm_map_entry *mt_first;	/* lowest entry, or NULL */
	struct vm_map_entry *mt_last;	/* highest entry, or NULL */
	uintptr_t mt_min;		/* managed range [mt_min, mt_max) */
	uintptr_t mt_max;
	size_t mt_nentries;
};

/* The per-entry node; embedded in struct vm_map_entry as e->tnode. */
struct map_tree_node {
	struct vm_map_entry *tn_left;
	struct vm_map_entry *tn_right;
	struct vm_map_entry *tn_parent;
	int tn_height;			/* AVL height, leaf = 1 */
	uintptr_t tn_maxgap;		/* max gap(x) over x in this subtree */
};

void map_tree_init(struct map_tree *t, uintptr_t min, uintptr_t max);

/*
 * Insert e (its start/end set, page aligned, within [min, max), not
 * overlapping any entry).  Links e->prev/e->next.
 */
void map_tree_insert(struct map_tree *t, struct vm_map_entry *e);

/* Remove e; its successor's gap grows.  e->prev/e->next are cleared. */
void map_tree_remove(struct map_tree *t, struct vm_map_entry *e);

/*
 * After e->start or e->end changed in place without changing the order
 * (clip, merge, extend), recompute the gaps of e and its successor.
 */
void map_tree_fixup(struct map_tree *t, struct vm_map_entry *e);

/* The entry containing addr, or NULL. */
struct vm_map_entry *map_tree_lookup(const struct map_tree *t, uintptr_t addr);

/* The last entry with start <= addr, or NULL (UVM's "prev entry"). */
struct vm_map_entry *map_tree_lookup_le(const struct map_tree *t,
    uintptr_t addr);

/*
 * Free-space search: the lowest address a >= hint, a aligned to align (a
 * power of two >= PAGE_SIZE), with [a, a+len) inside [min, max) and free.
 * If there is none at or above hint, the lowest such address at all.
 * Returns true and sets *out, or false if nothing fits.
 */
bool map_tree_findspace(const struct map_tree *t, uintptr_t hint, size_t len,
    size_t align, uintptr_t *out);

/*
 * Check every invariant (order, no overlap, list = in-order walk, AVL
 * balance and heights, parent links, maxgap, first/last, count).
 * Returns 0, or panics with a description.  O(n).
 */
int map_tree_validate(const struct map_tree *t);

#endif /* USRVM_MAP_TREE_H */
