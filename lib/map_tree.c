/*
 * map_tree.c: the sorted tree of map entries (the tree half of UVM's
 * uvm_map.c).  See map_tree.h for the contract.
 *
 * THE AUGMENTATION
 *
 * Entries sit in an AVL tree keyed by start address, with parent pointers,
 * and on a sorted doubly linked list (e->prev, e->next).  Every node also
 * stores
 *
 *	tn_maxgap = max { gap(x) : x in the subtree rooted at the node }
 *	gap(x)    = x->start - (x->prev ? x->prev->end : t->mt_min)
 *
 * i.e. the size of the largest free hole that ends at the start of some
 * entry of the subtree (NetBSD's uvm_map.c keeps the same kind of
 * augmentation in its red-black tree: ownspace/space).  A node's tn_height
 * and tn_maxgap depend only on its own gap and its children's fields, so
 * after a change they are recomputed bottom-up (map_tree_update) along:
 *
 *   - the path of the nodes whose links changed (insert, remove,
 *     rotations), and
 *   - the path of every node whose gap changed: inserting or removing e
 *     changes the gap of e's successor; changing e->start/e->end in place
 *     changes the gaps of e and of its successor (map_tree_fixup).
 *
 * Gaps depend on the list only, never on the tree shape, so rotations
 * keep every gap and only need to recompute the two rotated nodes.
 *
 * THE FREE-SPACE SEARCH
 *
 * map_tree_findspace wants the lowest aligned address >= hint where len
 * bytes are free.  Free space is exactly the holes before each entry (in
 * address order, i.e. in-order) plus the trailing hole after the last
 * entry.  The search walks the tree in order but prunes:
 *
 *   - any subtree whose tn_maxgap < len (no hole in it is big enough, even
 *     before alignment), and
 *   - the left subtree of a node x with x->start - hint < len (every hole
 *     of the left subtree ends at or before x->start, so none has len
 *     bytes at or above hint).
 *
 * At each surviving node the hole before it, clipped to [hint, x->start),
 * is tested with alignment (map_tree_gapfit).  Without alignment failures
 * this visits O(log n) nodes: one path down to hint, then one path to the
 * first big enough hole.  A hole at least len but too small once aligned
 * costs a detour; a search for strongly aligned space over many such holes
 * can visit more nodes, but stays exact (returns the lowest address).  If
 * no hole in the tree fits, the trailing hole is tried; if nothing fits at
 * or above hint, the whole search is repeated from mt_min.
 *
 * The recursion in the search and in validation follows the tree, so its
 * depth is the AVL height (< 1.45 log2 n).  Nothing here allocates.
 */

#include "usrvm_internal.h"
#include "map.h"
#include "map_tree.h"

#define TN(e)		(&(e)->tnode)

/* ---------------------------------------------------------------- */
/* node helpers */

static inline int
map_tree_height(const struct vm_map_entry *e)
{

	return e == NULL ? 0 : TN(e)->tn_height;
}

static inline uintptr_t
map_tree_maxgap(const struct vm_map_entry *e)
{

	return e == NULL ? 0 : TN(e)->tn_maxgap;
}

/*
 * map_tree_gap: the free space just before e.  e must be on the list.
 */
static inline uintptr_t
map_tree_gap(const struct map_tree *t, const struct vm_map_entry *e)
{

	return e->start - (e->prev != NULL ? e->prev->end : t->mt_min);
}

/*
 * map_tree_update: recompute e's height and maxgap from its own gap and
 * its children, which must already be up to date.
 */
static inline void
map_tree_update(const struct map_tree *t, struct vm_map_entry *e)
{
	const struct vm_map_entry *l = TN(e)->tn_left;
	const struct vm_map_entry *r = TN(e)->tn_right;
	uintptr_t g;

	TN(e)->tn_height = 1 + MAX(map_tree_height(l), map_tree_height(r));
	g = map_tree_gap(t, e);
	g = MAX(g, map_tree_maxgap(l));
	g = MAX(g, map_tree_maxgap(r));
	TN(e)->tn_maxgap = g;
}

/*
 * map_tree_update_path: recompute e and all its ancestors, bottom-up.
 * Used after e's gap changed without any change of shape.
 */
static void
map_tree_update_path(const struct map_tree *t, struct vm_map_entry *e)
{

	for (; e != NULL; e = TN(e)->tn_parent)
		map_tree_update(t, e);
}

/*
 * map_tree_replace_child: make `new' take old's place under parent
 * (or at the root).  Does not touch new's own parent link.
 */
static inline void
map_tree_replace_child(struct map_tree *t, struct vm_map_entry *parent,
    struct vm_map_entry *old, struct vm_map_entry *new)
{

	if (parent == NULL)
		t->mt_root = new;
	else if (TN(parent)->tn_left == old)
		TN(parent)->tn_left = new;
	else {
		KASSERT(TN(parent)->tn_right == old);
		TN(parent)->tn_right = new;
	}
}

/* ---------------------------------------------------------------- */
/* rotations and rebalancing */

/*
 * map_tree_rotate_left: x's right child y takes x's place, x becomes y's
 * left child.  Recomputes x then y.  Returns y.
 */
static struct vm_map_entry *
map_tree_rotate_left(struct map_tree *t, struct vm_map_entry *x)
{
	struct vm_map_entry *y = TN(x)->tn_right;
	struct vm_map_entry *b = TN(y)->tn_left;

	TN(x)->tn_right = b;
	if (b != NULL)
		TN(b)->tn_parent = x;
	TN(y)->tn_parent = TN(x)->tn_parent;
	map_tree_replace_child(t, TN(x)->tn_parent, x, y);
	TN(y)->tn_left = x;
	TN(x)->tn_parent = y;
	map_tree_update(t, x);
	map_tree_update(t, y);
	return y;
}

/* map_tree_rotate_right: the mirror image of map_tree_rotate_left. */
static struct vm_map_entry *
map_tree_rotate_right(struct map_tree *t, struct vm_map_entry *x)
{
	struct vm_map_entry *y = TN(x)->tn_left;
	struct vm_map_entry *b = TN(y)->tn_right;

	TN(x)->tn_left = b;
	if (b != NULL)
		TN(b)->tn_parent = x;
	TN(y)->tn_parent = TN(x)->tn_parent;
	map_tree_replace_child(t, TN(x)->tn_parent, x, y);
	TN(y)->tn_right = x;
	TN(x)->tn_parent = y;
	map_tree_update(t, x);
	map_tree_update(t, y);
	return y;
}

/*
 * map_tree_rebalance: walk from e up to the root, recomputing each node
 * and restoring the AVL balance with single or double rotations.  The
 * subtrees below the path must be up to date.
 */
static void
map_tree_rebalance(struct map_tree *t, struct vm_map_entry *e)
{
	struct vm_map_entry *c;
	int bal;

	while (e != NULL) {
		map_tree_update(t, e);
		bal = map_tree_height(TN(e)->tn_left) -
		    map_tree_height(TN(e)->tn_right);
		if (bal > 1) {
			c = TN(e)->tn_left;
			if (map_tree_height(TN(c)->tn_left) <
			    map_tree_height(TN(c)->tn_right))
				map_tree_rotate_left(t, c);
			e = map_tree_rotate_right(t, e);
		} else if (bal < -1) {
			c = TN(e)->tn_right;
			if (map_tree_height(TN(c)->tn_right) <
			    map_tree_height(TN(c)->tn_left))
				map_tree_rotate_right(t, c);
			e = map_tree_rotate_left(t, e);
		}
		e = TN(e)->tn_parent;
	}
}

/* ---------------------------------------------------------------- */
/* the interface */

/*
 * map_tree_init: an empty tree managing [min, max).
 */
void
map_tree_init(struct map_tree *t, uintptr_t min, uintptr_t max)
{

	KASSERT(min <= max);
	KASSERT(page_aligned(min) && page_aligned(max));
	t->mt_root = NULL;
	t->mt_first = NULL;
	t->mt_last = NULL;
	t->mt_min = min;
	t->mt_max = max;
	t->mt_nentries = 0;
}

/*
 * map_tree_insert: link e into the tree and the list.
 *
 * => e->start/e->end page aligned, start < end, inside [mt_min, mt_max),
 *    not overlapping any entry (asserted along the descent).
 * => e's node and list links are overwritten.
 */
void
map_tree_insert(struct map_tree *t, struct vm_map_entry *e)
{
	struct vm_map_entry *parent = NULL, *x = t->mt_root;
	struct vm_map_entry *prev = NULL, *next = NULL;
	bool left = false;

	KASSERT(e->start < e->end);
	KASSERT(page_aligned(e->start) && page_aligned(e->end));
	KASSERT(e->start >= t->mt_min && e->end <= t->mt_max);

	/* descend; the last node we went right at is the predecessor */
	while (x != NULL) {
		parent = x;
		if (e->start < x->start) {
			KASSERT(e->end <= x->start);
			next = x;
			left = true;
			x = TN(x)->tn_left;
		} else {
			KASSERT(x->end <= e->start);
			prev = x;
			left = false;
			x = TN(x)->tn_right;
		}
	}

	/* the list */
	e->prev = prev;
	e->next = next;
	if (prev != NULL)
		prev->next = e;
	else
		t->mt_first = e;
	if (next != NULL)
		next->prev = e;
	else
		t->mt_last = e;
	t->mt_nentries++;

	/* the tree: a new leaf */
	TN(e)->tn_left = NULL;
	TN(e)->tn_right = NULL;
	TN(e)->tn_parent = parent;
	TN(e)->tn_height = 1;
	TN(e)->tn_maxgap = map_tree_gap(t, e);
	if (parent == NULL)
		t->mt_root = e;
	else if (left)
		TN(parent)->tn_left = e;
	else
		TN(parent)->tn_right = e;

	map_tree_rebalance(t, parent);

	/*
	 * next's gap shrank.  (A new leaf's successor is one of its
	 * ancestors, so the rebalance walk has usually seen it already;
	 * recomputing its path keeps this independent of that argument.)
	 */
	if (next != NULL)
		map_tree_update_path(t, next);
}

/*
 * map_tree_remove: unlink e from the tree and the list.
 *
 * => e must be in t.  Its node and list links are cleared.
 */
void
map_tree_remove(struct map_tree *t, struct vm_map_entry *e)
{
	struct vm_map_entry *prev = e->prev, *next = e->next;
	struct vm_map_entry *parent, *child, *s, *from;

	KASSERT(t->mt_nentries > 0);

	/* the list first, so gaps computed below are the new ones */
	if (prev != NULL)
		prev->next = next;
	else {
		KASSERT(t->mt_first == e);
		t->mt_first = next;
	}
	if (next != NULL)
		next->prev = prev;
	else {
		KASSERT(t->mt_last == e);
		t->mt_last = prev;
	}
	t->mt_nentries--;

	parent = TN(e)->tn_parent;
	if (TN(e)->tn_left != NULL && TN(e)->tn_right != NULL) {
		/*
		 * Two children: the successor s (leftmost of the right
		 * subtree, hence next) takes e's place.  Rebalance from
		 * where s was taken out.
		 */
		s = next;
		KASSERT(s != NULL && TN(s)->tn_left == NULL);
		if (TN(s)->tn_parent != e) {
			from = TN(s)->tn_parent;
			TN(from)->tn_left = TN(s)->tn_right;
			if (TN(s)->tn_right != NULL)
				TN(TN(s)->tn_right)->tn_parent = from;
			TN(s)->tn_right = TN(e)->tn_right;
			TN(TN(s)->tn_right)->tn_parent = s;
		} else
			from = s;
		TN(s)->tn_left = TN(e)->tn_left;
		TN(TN(s)->tn_left)->tn_parent = s;
		TN(s)->tn_parent = parent;
		map_tree_replace_child(t, parent, e, s);
	} else {
		/* at most one child: it takes e's place */
		child = TN(e)->tn_left != NULL ?
		    TN(e)->tn_left : TN(e)->tn_right;
		if (child != NULL)
			TN(child)->tn_parent = parent;
		map_tree_replace_child(t, parent, e, child);
		from = parent;
	}
	map_tree_rebalance(t, from);

	/* next's gap grew (next may be a node the walk did not visit) */
	if (next != NULL)
		map_tree_update_path(t, next);

	TN(e)->tn_left = TN(e)->tn_right = TN(e)->tn_parent = NULL;
	TN(e)->tn_height = 0;
	TN(e)->tn_maxgap = 0;
	e->prev = e->next = NULL;
}

/*
 * map_tree_fixup: e->start and/or e->end changed in place (clip, merge,
 * extend) without changing the order; recompute the gaps of e and of its
 * successor along their paths.
 */
void
map_tree_fixup(struct map_tree *t, struct vm_map_entry *e)
{

	KASSERT(e->start < e->end);
	KASSERT(e->start >= (e->prev != NULL ? e->prev->end : t->mt_min));
	KASSERT(e->end <= (e->next != NULL ? e->next->start : t->mt_max));
	map_tree_update_path(t, e);
	if (e->next != NULL)
		map_tree_update_path(t, e->next);
}

/*
 * map_tree_lookup: the entry containing addr, or NULL.  O(log n).
 */
struct vm_map_entry *
map_tree_lookup(const struct map_tree *t, uintptr_t addr)
{
	struct vm_map_entry *x = t->mt_root;

	while (x != NULL) {
		if (addr < x->start)
			x = TN(x)->tn_left;
		else if (addr < x->end)
			return x;
		else
			x = TN(x)->tn_right;
	}
	return NULL;
}

/*
 * map_tree_lookup_le: the last entry with start <= addr, or NULL.
 */
struct vm_map_entry *
map_tree_lookup_le(const struct map_tree *t, uintptr_t addr)
{
	struct vm_map_entry *x = t->mt_root, *best = NULL;

	while (x != NULL) {
		if (addr < x->start)
			x = TN(x)->tn_left;
		else {
			best = x;
			x = TN(x)->tn_right;
		}
	}
	return best;
}

/* ---------------------------------------------------------------- */
/* free-space search */

/*
 * map_tree_gapfit: is there an aligned a in the hole [lo, hi) with
 * a >= hint and [a, a + len) inside the hole?  If so set *out to the
 * lowest one.  Written to never overflow.
 */
static bool
map_tree_gapfit(uintptr_t lo, uintptr_t hi, uintptr_t hint, size_t len,
    size_t align, uintptr_t *out)
{
	uintptr_t a;

	if (lo < hint)
		lo = hint;
	if (lo >= hi)
		return false;
	a = lo & ~((uintptr_t)align - 1);
	if (a < lo) {
		a += align;
		if (a < lo)		/* wrapped past the top */
			return false;
	}
	if (a > hi || hi - a < len)
		return false;
	*out = a;
	return true;
}

/*
 * map_tree_findspace_sub: the in-order, pruned search of the subtree at
 * x for the lowest fitting address >= hint (see the comment at the top).
 */
static bool
map_tree_findspace_sub(const struct map_tree *t, const struct vm_map_entry *x,
    uintptr_t hint, size_t len, size_t align, uintptr_t *out)
{
	uintptr_t lo;

	if (x == NULL || TN(x)->tn_maxgap < len)
		return false;
	if (x->start > hint && x->start - hint >= len &&
	    map_tree_findspace_sub(t, TN(x)->tn_left, hint, len, align, out))
		return true;
	lo = x->prev != NULL ? x->prev->end : t->mt_min;
	if (map_tree_gapfit(lo, x->start, hint, len, align, out))
		return true;
	return map_tree_findspace_sub(t, TN(x)->tn_right, hint, len, align,
	    out);
}

/* map_tree_findspace_from: the lowest fitting address >= hint, if any. */
static bool
map_tree_findspace_from(const struct map_tree *t, uintptr_t hint, size_t len,
    size_t align, uintptr_t *out)
{
	uintptr_t lo;

	if (map_tree_findspace_sub(t, t->mt_root, hint, len, align, out))
		return true;
	lo = t->mt_last != NULL ? t->mt_last->end : t->mt_min;
	return map_tree_gapfit(lo, t->mt_max, hint, len, align, out);
}

/*
 * map_tree_findspace: the lowest aligned a >= hint with [a, a + len) free
 * and inside [mt_min, mt_max); failing that, the lowest one at all.
 *
 * => align is a power of two >= PAGE_SIZE.
 * => returns false if nothing fits (or len == 0).
 */
bool
map_tree_findspace(const struct map_tree *t, uintptr_t hint, size_t len,
    size_t align, uintptr_t *out)
{

	KASSERT(align >= PAGE_SIZE && (align & (align - 1)) == 0);
	if (len == 0 || len > t->mt_max - t->mt_min)
		return false;
	if (hint < t->mt_min)
		hint = t->mt_min;
	if (map_tree_findspace_from(t, hint, len, align, out))
		return true;
	return hint > t->mt_min &&
	    map_tree_findspace_from(t, t->mt_min, len, align, out);
}

/* ---------------------------------------------------------------- */
/* validation */

/*
 * map_tree_validate_sub: check the subtree at x (parent links, order
 * against the list cursor *cur, balance, heights, maxgap) and return its
 * height.  *cur walks the list in step with the in-order walk.
 */
static int
map_tree_validate_sub(const struct map_tree *t, const struct vm_map_entry *x,
    const struct vm_map_entry *parent, const struct vm_map_entry **cur,
    size_t *count)
{
	const struct vm_map_entry *l, *r;
	int hl, hr;
	uintptr_t mg;

	if (x == NULL)
		return 0;
	l = TN(x)->tn_left;
	r = TN(x)->tn_right;
	if (TN(x)->tn_parent != parent)
		usrvm_panic("map_tree %p: entry %p [%#jx, %#jx) has parent "
		    "%p, expected %p", (const void *)t, (const void *)x,
		    (uintmax_t)x->start, (uintmax_t)x->end,
		    (const void *)TN(x)->tn_parent, (const void *)parent);
	if (++*count > t->mt_nentries)
		usrvm_panic("map_tree %p: more tree nodes than mt_nentries "
		    "%zu (cycle?)", (const void *)t, t->mt_nentries);

	hl = map_tree_validate_sub(t, l, x, cur, count);

	if (*cur != x)
		usrvm_panic("map_tree %p: in-order walk reaches %p "
		    "[%#jx, %#jx) but the list has %p", (const void *)t,
		    (const void *)x, (uintmax_t)x->start, (uintmax_t)x->end,
		    (const void *)*cur);
	*cur = x->next;

	hr = map_tree_validate_sub(t, r, x, cur, count);

	if (hl - hr > 1 || hr - hl > 1)
		usrvm_panic("map_tree %p: entry %p [%#jx, %#jx) unbalanced: "
		    "left height %d, right height %d", (const void *)t,
		    (const void *)x, (uintmax_t)x->start, (uintmax_t)x->end,
		    hl, hr);
	if (TN(x)->tn_height != 1 + MAX(hl, hr))
		usrvm_panic("map_tree %p: entry %p [%#jx, %#jx) height %d, "
		    "expected %d", (const void *)t, (const void *)x,
		    (uintmax_t)x->start, (uintmax_t)x->end,
		    TN(x)->tn_height, 1 + MAX(hl, hr));
	mg = map_tree_gap(t, x);
	mg = MAX(mg, map_tree_maxgap(l));
	mg = MAX(mg, map_tree_maxgap(r));
	if (TN(x)->tn_maxgap != mg)
		usrvm_panic("map_tree %p: entry %p [%#jx, %#jx) maxgap %#jx, "
		    "expected %#jx", (const void *)t, (const void *)x,
		    (uintmax_t)x->start, (uintmax_t)x->end,
		    (uintmax_t)TN(x)->tn_maxgap, (uintmax_t)mg);
	return 1 + MAX(hl, hr);
}

/*
 * map_tree_validate: check every invariant of t; panic on the first
 * violation.  Returns 0.  O(n) time, O(log n) stack.
 *
 * => the list: first/last, back links, sorted, page aligned, non-empty,
 *    non-overlapping, inside [mt_min, mt_max), mt_nentries entries;
 * => the tree: root has no parent, parent links, in-order walk is the
 *    list, AVL balance, heights, maxgap.
 */
int
map_tree_validate(const struct map_tree *t)
{
	const struct vm_map_entry *e, *prev, *cur;
	uintptr_t lim;
	size_t n, count;

	if (t->mt_min > t->mt_max)
		usrvm_panic("map_tree %p: min %#jx > max %#jx",
		    (const void *)t, (uintmax_t)t->mt_min,
		    (uintmax_t)t->mt_max);

	/* the list */
	n = 0;
	prev = NULL;
	lim = t->mt_min;
	for (e = t->mt_first; e != NULL; prev = e, e = e->next) {
		if (++n > t->mt_nentries)
			usrvm_panic("map_tree %p: list longer than "
			    "mt_nentries %zu (cycle?)", (const void *)t,
			    t->mt_nentries);
		if (e->prev != prev)
			usrvm_panic("map_tree %p: entry %p [%#jx, %#jx) prev "
			    "%p, expected %p", (const void *)t,
			    (const void *)e, (uintmax_t)e->start,
			    (uintmax_t)e->end, (const void *)e->prev,
			    (const void *)prev);
		if (!page_aligned(e->start) || !page_aligned(e->end) ||
		    e->start >= e->end)
			usrvm_panic("map_tree %p: entry %p [%#jx, %#jx) empty "
			    "or not page aligned", (const void *)t,
			    (const void *)e, (uintmax_t)e->start,
			    (uintmax_t)e->end);
		if (e->start < lim)
			usrvm_panic("map_tree %p: entry %p [%#jx, %#jx) "
			    "overlaps its predecessor or starts below min "
			    "(limit %#jx)", (const void *)t, (const void *)e,
			    (uintmax_t)e->start, (uintmax_t)e->end,
			    (uintmax_t)lim);
		if (e->end > t->mt_max)
			usrvm_panic("map_tree %p: entry %p [%#jx, %#jx) ends "
			    "above max %#jx", (const void *)t,
			    (const void *)e, (uintmax_t)e->start,
			    (uintmax_t)e->end, (uintmax_t)t->mt_max);
		lim = e->end;
	}
	if (t->mt_last != prev)
		usrvm_panic("map_tree %p: mt_last %p, list ends at %p",
		    (const void *)t, (const void *)t->mt_last,
		    (const void *)prev);
	if (n != t->mt_nentries)
		usrvm_panic("map_tree %p: list has %zu entries, mt_nentries "
		    "%zu", (const void *)t, n, t->mt_nentries);

	/* the tree */
	if (t->mt_root != NULL && TN(t->mt_root)->tn_parent != NULL)
		usrvm_panic("map_tree %p: root %p has parent %p",
		    (const void *)t, (const void *)t->mt_root,
		    (const void *)TN(t->mt_root)->tn_parent);
	cur = t->mt_first;
	count = 0;
	(void)map_tree_validate_sub(t, t->mt_root, NULL, &cur, &count);
	if (cur != NULL || count != n)
		usrvm_panic("map_tree %p: tree has %zu nodes, list %zu "
		    "entries", (const void *)t, count, n);
	return 0;
}
