/*
 * test_map_model.c: a randomized model test of the map layer and the fault
 * routine, with no kernel in the loop.
 *
 * The pmap (lib/fault/pmap.h) is replaced by a fake that only records, per
 * page of a fake address range (no real memory is ever touched there),
 * whether the page is open (inside a map entry), its protection, and what
 * is present: nothing, the shared zero page (write protected) or data.
 * Every fake operation checks its preconditions (alignment, range, state):
 * a violation is a bug in the core.
 *
 * The test drives the public API (usrvm_map/unmap/protect/advise/inherit)
 * on a space made with space_create, and calls uvm_fault directly, as a
 * fault thread would, with the fault type the kernel would raise given the
 * fake's page state; sometimes also stale or duplicate fault messages as
 * they arrive from racing threads.  It also plays the kernel's part in
 * the application's own munmap (UNMAP event: map_forget) and in
 * usrvm_advise DONTNEED (REMOVE event: map_discard).
 *
 * A per-page model {mapped, prot, maxprot, advice, inheritance, contents}
 * predicts every return code.  After every step the map, the amaps, the
 * fake pmap and the counters are compared with the model (see
 * check_all).  Fault-around fills neighbours, so after a fault the model
 * takes the new contents from the fake, having checked that the fault
 * changed nothing outside its entry and its window, and only allowed
 * transitions (none -> zero on a read, none -> data on a write, zero ->
 * data on the faulting page of a write-protect fault).
 *
 * Cases: "model" (the application's munmap always gives the range back);
 * "model_foreign" (sometimes another mapping takes the range before the
 * runtime can, leaving a FOREIGN entry: the runtime must keep out of it
 * for good, no pmap operation may touch it again) and "foreign_scripted"
 * (the same, three steps that show each way it is touched today: DONTNEED
 * over it, unmap then map over it, space_destroy).  The fake records those
 * touches and the case fails at its end listing every kind.
 *
 * Semantics pinned here that a reader may not expect: a read of a
 * write-only page raises a read fault on x86 (PROT_WRITE implies
 * PROT_READ there) and uvm_fault serves it, as the kernel would.
 *
 * USRVM_TEST_SEED=n replays a seed (printed on failure, with the step and
 * the last operations); USRVM_TEST_STEPS=n changes the number of steps.
 */
#define _GNU_SOURCE
#include <check.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "amap.h"
#include "anon.h"
#include "fault.h"
#include "fault/pmap.h"
#include "map.h"
#include "page.h"
#include "space.h"
#include "stats.h"
#include "usrvm_internal.h"

#include "helpers.h"

#define FIXED_SEED	0x6d6f64656cull
#define DEFAULT_STEPS	4000

#define FAKE_BASE	((uintptr_t)0x100000000000)	/* 2^44, < 2^47 */
#define SPACE_BYTES	SPACE_GRANULE			/* 64 MiB */
#define NP		(SPACE_BYTES / PAGE_SIZE)	/* 16384 pages */
#define ARENA		2048		/* most operations fall in here */

/* fault-around bounds (fault.c) */
#define FA_CLUSTER	16
#define FA_MAX_NORMAL	512
#define FA_MAX		1024

#define R	USRVM_PROT_READ
#define W	USRVM_PROT_WRITE
#define RW	USRVM_PROT_ALL

/* ------------------------------------------------------------------ */
/* failure reporting                                                   */
/* ------------------------------------------------------------------ */

static uint64_t cur_seed, cur_step;
static bool in_run, scripted;

/* "seed N step M (rerun with ...)", or "scripted step M" */
static const char *
where(void)
{
	static char buf[160];

	if (scripted)
		snprintf(buf, sizeof(buf), "scripted step %" PRIu64, cur_step);
	else
		snprintf(buf, sizeof(buf), "seed %" PRIu64 " step %" PRIu64
		    " (rerun with USRVM_TEST_SEED=%" PRIu64 ")", cur_seed,
		    cur_step, cur_seed);
	return buf;
}

#define OPLOG	24
static char oplog[OPLOG][200];
static uint64_t oplog_n;

static void
logop(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(oplog[oplog_n % OPLOG], sizeof(oplog[0]), fmt, ap);
	va_end(ap);
	oplog_n++;
}

static void
dump_context(void)
{
	uint64_t i = oplog_n > OPLOG ? oplog_n - OPLOG : 0;

	if (!in_run)
		return;
	fprintf(stderr, "test_map_model: %s; last operations:\n", where());
	for (; i < oplog_n; i++)
		fprintf(stderr, "  %s\n", oplog[i % OPLOG]);
	fflush(stderr);
}

__attribute__((noreturn, format(printf, 1, 2)))
static void
model_fail(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	dump_context();
	in_run = false;
	ck_abort_msg("%s: %s", where(), buf);
	abort();	/* not reached */
}

/* Hot-loop assertion: ck_assert records every pass, far too slow. */
#define CHECK(cond, ...) do {						\
	if (!(cond))							\
		model_fail(__VA_ARGS__);					\
} while (0)

/* usrvm_panic (a KASSERT in the core) aborts: say where we were. */
static void
on_abort(int sig)
{
	(void)sig;
	dump_context();
	signal(SIGABRT, SIG_DFL);
}

/* ------------------------------------------------------------------ */
/* random numbers                                                      */
/* ------------------------------------------------------------------ */

static uint64_t rng;

static size_t
rnd(size_t n)
{
	return n == 0 ? 0 : (size_t)(t_rand(&rng) % n);
}

static bool
chance(unsigned pct)
{
	return rnd(100) < pct;
}

/* ------------------------------------------------------------------ */
/* the fake pmap                                                       */
/* ------------------------------------------------------------------ */

enum { FS_CLOSED, FS_OPEN, FS_GONE, FS_FOREIGN };	/* fpage.st */
enum { C_NONE, C_ZERO, C_DATA };			/* presence */

static const char *const cname[] = { "none", "zero", "data" };

struct fpage {
	uint8_t st;
	uint8_t prot;
	uint8_t present;	/* C_*, FS_OPEN only */
};

/* Ways the core touched memory it had given up (FOREIGN ranges). */
enum { V_ENTER, V_DONTNEED, V_RELEASE, V_NKINDS };
static const char *const vname[V_NKINDS] = {
	"pmap enter (usrvm_map) over a foreign mapping",
	"pmap dontneed (usrvm_advise DONTNEED/FREE) over a foreign mapping",
	"pmap release (space_destroy) over a foreign mapping",
};

static struct {
	bool reserved;
	uintptr_t base;
	struct fpage pg[NP];
	uint64_t rng;
	bool inject;		/* inject install/unprotect failures */
	bool take_foreign;	/* next reclaim: another mapping is there */
	/* during one uvm_fault */
	bool in_fault;
	size_t lo, hi;		/* pages whose presence changed */
	size_t target;		/* the faulting page */
	bool woke;		/* the faulting page was woken */
	bool injected;		/* a failure was injected */
	/* the REMOVE event raised by dontneed */
	bool ev;
	uintptr_t ev_start, ev_end;
	/* foreign violations: count and first step of each kind */
	unsigned long viol[V_NKINDS];
	uint64_t viol_step[V_NKINDS];
	uintptr_t viol_va[V_NKINDS];
	unsigned long ncalls;
} fk;

static size_t
fk_index(const char *op, uintptr_t va, size_t len)
{
	CHECK(fk.reserved, "pmap %s [%#lx, +%#zx): no reservation", op,
	    (unsigned long)va, len);
	CHECK(page_aligned(va) && page_aligned(len) && len > 0,
	    "pmap %s [%#lx, +%#zx): not page aligned or empty", op,
	    (unsigned long)va, len);
	CHECK(va >= fk.base && len <= SPACE_BYTES &&
	    va - fk.base <= SPACE_BYTES - len,
	    "pmap %s [%#lx, +%#zx): outside the reservation [%#lx, +%#zx)",
	    op, (unsigned long)va, len, (unsigned long)fk.base,
	    (size_t)SPACE_BYTES);
	fk.ncalls++;
	return atop(va - fk.base);
}

static void
fk_violation(int kind, size_t p)
{
	if (fk.viol[kind]++ == 0) {
		fk.viol_step[kind] = cur_step;
		fk.viol_va[kind] = fk.base + ptoa(p);
		fprintf(stderr, "test_map_model: step %" PRIu64 ": %s at "
		    "%#lx\n", cur_step, vname[kind],
		    (unsigned long)fk.viol_va[kind]);
		dump_context();
	}
}

static void
fk_not_in_fault(const char *op)
{
	CHECK(!fk.in_fault, "pmap %s called by uvm_fault", op);
}

static void
fk_changed(size_t p)
{
	if (p < fk.lo)
		fk.lo = p;
	if (p + 1 > fk.hi)
		fk.hi = p + 1;
}

static int
fk_reserve(size_t len, size_t align, uintptr_t *vap)
{
	CHECK(!fk.reserved, "pmap reserve: one space at a time here");
	CHECK(len == SPACE_BYTES && align == SPACE_GRANULE,
	    "pmap reserve(%#zx, %#zx): unexpected", len, align);
	fk.reserved = true;
	fk.base = FAKE_BASE;
	memset(fk.pg, 0, sizeof(fk.pg));	/* FS_CLOSED, C_NONE */
	*vap = FAKE_BASE;
	return 0;
}

static void
fk_release(uintptr_t va, size_t len)
{
	size_t p0 = fk_index("release", va, len);

	size_t left = 0;

	fk_not_in_fault("release");
	/* Released in pieces around what another mapping took. */
	for (size_t p = p0; p < p0 + atop(len); p++) {
		if (fk.pg[p].st == FS_FOREIGN) {
			fk_violation(V_RELEASE, p);
			continue;
		}
		CHECK(fk.pg[p].st == FS_CLOSED, "pmap release: page %#lx is "
		    "still %s", (unsigned long)(fk.base + ptoa(p)),
		    fk.pg[p].st == FS_OPEN ? "open" : "gone or released");
		fk.pg[p].st = FS_GONE;
		fk.pg[p].prot = 1;	/* marks "released" */
	}
	for (size_t p = 0; p < NP; p++)
		left += !(fk.pg[p].st == FS_FOREIGN ||
		    (fk.pg[p].st == FS_GONE && fk.pg[p].prot == 1));
	if (left == 0)
		fk.reserved = false;
}

static int
fk_enter(uintptr_t va, size_t len, int prot)
{
	size_t p0 = fk_index("enter", va, len), n = atop(len);

	fk_not_in_fault("enter");
	CHECK((prot & ~RW) == 0, "pmap enter: prot %#x", prot);
	for (size_t p = p0; p < p0 + n; p++) {
		if (fk.pg[p].st == FS_FOREIGN)
			fk_violation(V_ENTER, p);
		else
			CHECK(fk.pg[p].st == FS_CLOSED, "pmap enter [%#lx, "
			    "+%#zx): page %#lx is not closed (state %d)",
			    (unsigned long)va, len,
			    (unsigned long)(fk.base + ptoa(p)), fk.pg[p].st);
		fk.pg[p] = (struct fpage){ FS_OPEN, (uint8_t)prot, C_NONE };
	}
	return 0;
}

static int
fk_remove(uintptr_t va, size_t len)
{
	size_t p0 = fk_index("remove", va, len), n = atop(len);

	fk_not_in_fault("remove");
	for (size_t p = p0; p < p0 + n; p++) {
		CHECK(fk.pg[p].st == FS_OPEN, "pmap remove [%#lx, +%#zx): "
		    "page %#lx is not open (state %d)", (unsigned long)va,
		    len, (unsigned long)(fk.base + ptoa(p)), fk.pg[p].st);
		fk.pg[p] = (struct fpage){ FS_CLOSED, 0, C_NONE };
	}
	return 0;
}

static int
fk_protect(uintptr_t va, size_t len, int prot)
{
	size_t p0 = fk_index("protect", va, len), n = atop(len);

	fk_not_in_fault("protect");
	CHECK((prot & ~RW) == 0, "pmap protect: prot %#x", prot);
	for (size_t p = p0; p < p0 + n; p++) {
		CHECK(fk.pg[p].st == FS_OPEN, "pmap protect [%#lx, +%#zx): "
		    "page %#lx is not open (state %d)", (unsigned long)va,
		    len, (unsigned long)(fk.base + ptoa(p)), fk.pg[p].st);
		fk.pg[p].prot = (uint8_t)prot;
	}
	return 0;
}

/* Install zero pages or data (as UFFDIO_ZEROPAGE / UFFDIO_COPY). */
static int
fk_install(const char *op, uintptr_t va, size_t len, size_t *done,
    uint8_t what)
{
	size_t p0 = fk_index(op, va, len), n = atop(len), i;

	CHECK(fk.in_fault, "pmap %s outside a fault", op);
	*done = 0;
	/* Injected: the kernel is in the middle of a change (EAGAIN). */
	if (fk.inject && t_rand(&fk.rng) % 100 < 3) {
		fk.injected = true;
		return EAGAIN;
	}
	for (i = 0; i < n; i++) {
		struct fpage *f = &fk.pg[p0 + i];
		CHECK(f->st == FS_OPEN, "pmap %s [%#lx, +%#zx): page %#lx is "
		    "not open (state %d)", op, (unsigned long)va, len,
		    (unsigned long)(va + ptoa(i)), f->st);
		CHECK(f->prot != 0, "pmap %s [%#lx, +%#zx): page %#lx is "
		    "PROT_NONE", op, (unsigned long)va, len,
		    (unsigned long)(va + ptoa(i)));
		if (f->present != C_NONE)
			break;
		f->present = what;
		fk_changed(p0 + i);
	}
	*done = ptoa(i);
	if (i == n)
		return 0;
	/*
	 * A page is present.  The contract: EEXIST with *done before it.
	 * The kernel: -EAGAIN with the progress when some pages went in.
	 */
	return i > 0 && t_rand(&fk.rng) % 2 ? EAGAIN : EEXIST;
}

static int
fk_zero(uintptr_t va, size_t len, size_t *done)
{
	return fk_install("zero", va, len, done, C_ZERO);
}

static int
fk_copy(uintptr_t va, const void *src, size_t len, int flags, size_t *done)
{
	const volatile unsigned char *s = src;

	(void)flags;
	CHECK(src != NULL && s[0] == 0 && s[len - 1] == 0,
	    "pmap copy: source is not zeros");
	return fk_install("copy", va, len, done, C_DATA);
}

static void
fk_woken(size_t p0, size_t n)
{
	if (fk.target >= p0 && fk.target < p0 + n)
		fk.woke = true;
}

static int
fk_unprotect(uintptr_t va, size_t len)
{
	size_t p0 = fk_index("unprotect", va, len), n = atop(len);

	CHECK(fk.in_fault, "pmap unprotect outside a fault");
	if (fk.inject && t_rand(&fk.rng) % 100 < 5) {
		fk.injected = true;
		return ENOENT;	/* the range went away (application munmap) */
	}
	for (size_t p = p0; p < p0 + n; p++) {
		CHECK(fk.pg[p].st == FS_OPEN, "pmap unprotect: page %#lx is "
		    "not open", (unsigned long)(fk.base + ptoa(p)));
		CHECK(fk.pg[p].prot & W, "pmap unprotect: page %#lx is not "
		    "writable (prot %d)", (unsigned long)(fk.base + ptoa(p)),
		    fk.pg[p].prot);
		/* The faulting thread's retry copies the zero page. */
		if (fk.pg[p].present == C_ZERO) {
			fk.pg[p].present = C_DATA;
			fk_changed(p);
		}
	}
	fk_woken(p0, n);
	return 0;
}

static int
fk_wake(uintptr_t va, size_t len)
{
	size_t p0 = fk_index("wake", va, len);

	fk_woken(p0, atop(len));
	return 0;
}

static int
fk_reclaim(uintptr_t va, size_t len)
{
	size_t p0 = fk_index("reclaim", va, len), n = atop(len);

	fk_not_in_fault("reclaim");
	/* Retried by unmap: the other mapping is still there. */
	if (fk.pg[p0].st == FS_FOREIGN) {
		for (size_t p = p0; p < p0 + n; p++)
			CHECK(fk.pg[p].st == FS_FOREIGN, "pmap reclaim: a "
			    "range partly foreign (page %#lx)",
			    (unsigned long)(fk.base + ptoa(p)));
		return EEXIST;
	}
	for (size_t p = p0; p < p0 + n; p++)
		CHECK(fk.pg[p].st == FS_GONE, "pmap reclaim: page %#lx was "
		    "not unmapped by the application (state %d)",
		    (unsigned long)(fk.base + ptoa(p)), fk.pg[p].st);
	for (size_t p = p0; p < p0 + n; p++)
		fk.pg[p] = (struct fpage){ fk.take_foreign ? FS_FOREIGN :
		    FS_CLOSED, 0, C_NONE };
	return fk.take_foreign ? EEXIST : 0;
}

static int
fk_dontneed(uintptr_t va, size_t len)
{
	size_t p0 = fk_index("dontneed", va, len), n = atop(len);

	fk_not_in_fault("dontneed");
	CHECK(!fk.ev, "pmap dontneed: a REMOVE event is already pending");
	for (size_t p = p0; p < p0 + n; p++) {
		if (fk.pg[p].st == FS_FOREIGN) {
			fk_violation(V_DONTNEED, p);
			continue;
		}
		CHECK(fk.pg[p].st == FS_OPEN, "pmap dontneed: page %#lx is "
		    "not open (state %d)", (unsigned long)(fk.base + ptoa(p)),
		    fk.pg[p].st);
		fk.pg[p].present = C_NONE;
	}
	fk.ev = true;
	fk.ev_start = va;
	fk.ev_end = va + len;
	return 0;
}

static int
fk_disown(uintptr_t va, size_t len)
{
	model_fail("pmap disown [%#lx, +%#zx): no mremap here", (unsigned long)va,
	    len);
}

static int
fk_poison(uintptr_t va, size_t len)
{
	model_fail("pmap poison [%#lx, +%#zx): only the trap layer poisons",
	    (unsigned long)va, len);
}

static const struct pmap_ops fake_ops = {
	.name = "model",
	.reserve = fk_reserve,
	.release = fk_release,
	.enter = fk_enter,
	.remove = fk_remove,
	.protect = fk_protect,
	.zero = fk_zero,
	.copy = fk_copy,
	.unprotect = fk_unprotect,
	.wake = fk_wake,
	.reclaim = fk_reclaim,
	.dontneed = fk_dontneed,
	.disown = fk_disown,
	.poison = fk_poison,
};

/* ------------------------------------------------------------------ */
/* the model                                                           */
/* ------------------------------------------------------------------ */

enum { M_FREE, M_MAPPED, M_FOREIGN };	/* mpage.mapped */

struct mpage {
	uint8_t mapped;
	uint8_t prot, maxprot, advice, inh;
	uint8_t contents;		/* C_* */
	bool fforeign;			/* another mapping holds the page */
	bool has_origin;
	uintptr_t origin;		/* e->start - e->offset, once seen */
	struct vm_amap *amap;		/* once seen: stable while mapped */
	intptr_t adelta;		/* slot (absolute) - page index */
	struct vm_anon *anon;		/* once seen: stable while data */
};

static struct mpage m[NP];
static struct usrvm_space *vs;
static uintptr_t base;
static const struct pmap_ops *saved_pmap;

/* statistics of one run, printed at the end */
static struct {
	unsigned long ops[16];
	unsigned long faults, faults_stale, segv, eexist, eacces, enomem;
	unsigned long zero_to_data, filled_zero, filled_data, foreign;
	unsigned long max_entries, max_window, split_amaps, max_amap_refs;
	unsigned long extends;	/* maps merged into an entry with an amap */
} st;

static uintptr_t
pva(size_t p)
{
	return base + ptoa(p);
}

static void
model_unmap_page(size_t p)
{
	bool ff = m[p].fforeign;

	if (m[p].mapped == M_FOREIGN)
		return;		/* not ours: unmap leaves it */
	memset(&m[p], 0, sizeof(m[p]));
	m[p].fforeign = ff;
}

/* ------------------------------------------------------------------ */
/* checking everything                                                 */
/* ------------------------------------------------------------------ */

struct amap_use {
	struct vm_amap *amap;
	size_t refs, anons;
};

static struct amap_use uses[NP];

static int
use_cmp(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)((const struct amap_use *)a)->amap;
	uintptr_t y = (uintptr_t)((const struct amap_use *)b)->amap;

	return x < y ? -1 : x > y;
}

static void
check_entry(struct vm_map_entry *e, size_t *nuses)
{
	size_t ps = atop(e->start - base), pe = atop(e->end - base), nd = 0;
	bool foreign = (e->etype & UVM_ET_FOREIGN) != 0;
	struct vm_amap *amap = e->aref.ar_amap;

	CHECK(e->object == NULL && e->wired_count == 0,
	    "entry [%#lx, %#lx): object or wired", (unsigned long)e->start,
	    (unsigned long)e->end);
	if (foreign)
		CHECK(e->etype == UVM_ET_FOREIGN && amap == NULL,
		    "foreign entry [%#lx, %#lx): etype %#x amap %p",
		    (unsigned long)e->start, (unsigned long)e->end, e->etype,
		    (void *)amap);
	else
		CHECK((e->etype & ~(UVM_ET_COPYONWRITE | UVM_ET_NEEDSCOPY)) ==
		    UVM_ET_COMMITTED && (e->etype & UVM_ET_COPYONWRITE) &&
		    !(e->etype & UVM_ET_NEEDSCOPY) == (amap != NULL),
		    "entry [%#lx, %#lx): etype %#x with amap %p",
		    (unsigned long)e->start, (unsigned long)e->end, e->etype,
		    (void *)amap);

	for (size_t p = ps; p < pe; p++) {
		struct mpage *mp = &m[p];

		CHECK(mp->mapped == (foreign ? M_FOREIGN : M_MAPPED),
		    "page %#lx: in a%s entry [%#lx, %#lx), model says %s",
		    (unsigned long)pva(p), foreign ? " foreign" : "n",
		    (unsigned long)e->start, (unsigned long)e->end,
		    mp->mapped == M_FREE ? "free" : mp->mapped == M_MAPPED ?
		    "mapped" : "foreign");
		CHECK(e->protection == mp->prot &&
		    e->max_protection == mp->maxprot &&
		    e->advice == mp->advice && e->inheritance == mp->inh,
		    "page %#lx: entry [%#lx, %#lx) has prot %d/%d advice %d "
		    "inherit %d, model %d/%d %d %d", (unsigned long)pva(p),
		    (unsigned long)e->start, (unsigned long)e->end,
		    e->protection, e->max_protection, e->advice,
		    e->inheritance, mp->prot, mp->maxprot, mp->advice,
		    mp->inh);
		if (foreign)
			continue;
		/* The offset of a page in its mapping never changes. */
		if (!mp->has_origin) {
			mp->has_origin = true;
			mp->origin = e->start - (uintptr_t)e->offset;
		}
		CHECK(mp->origin == e->start - (uintptr_t)e->offset,
		    "page %#lx: entry [%#lx, %#lx) offset %#llx moves it in "
		    "its mapping (origin %#lx, was %#lx)",
		    (unsigned long)pva(p), (unsigned long)e->start,
		    (unsigned long)e->end, (unsigned long long)e->offset,
		    (unsigned long)(e->start - e->offset),
		    (unsigned long)mp->origin);
		/* Nor its amap slot, once it has one. */
		if (amap != NULL) {
			intptr_t d = (intptr_t)e->aref.ar_pageoff -
			    (intptr_t)ps;
			if (mp->amap == NULL) {
				mp->amap = amap;
				mp->adelta = d;
			}
			CHECK(mp->amap == amap && mp->adelta == d,
			    "page %#lx: entry [%#lx, %#lx) maps it to amap %p "
			    "slot %zu, it was amap %p slot %zd",
			    (unsigned long)pva(p), (unsigned long)e->start,
			    (unsigned long)e->end, (void *)amap,
			    e->aref.ar_pageoff + (p - ps), (void *)mp->amap,
			    (ssize_t)((intptr_t)p + mp->adelta));
		} else {
			CHECK(mp->amap == NULL, "page %#lx: its entry lost "
			    "its amap %p", (unsigned long)pva(p),
			    (void *)mp->amap);
		}
		if (mp->contents == C_DATA)
			nd++;
	}
	if (amap == NULL) {
		CHECK(nd == 0, "entry [%#lx, %#lx): %zu data pages but no "
		    "amap", (unsigned long)e->start, (unsigned long)e->end,
		    nd);
		return;
	}

	/* The anons: exactly the data pages, each once and in place. */
	size_t n = pe - ps, slot = 0, found = 0, s;
	amap_lock(amap);
	while (slot < n &&
	    (s = amap_next_used(&e->aref, slot, n - slot)) != SIZE_MAX) {
		struct vm_anon *anon = amap_lookup(&e->aref, s);
		struct mpage *mp = &m[ps + s];
		struct vm_page *pg;

		CHECK(s >= slot && s < n && anon != NULL,
		    "amap_next_used(%zu, %zu) = %zu, anon %p", slot,
		    n - slot, s, (void *)anon);
		CHECK(mp->contents == C_DATA, "page %#lx: an anon but the "
		    "page holds %s", (unsigned long)pva(ps + s),
		    cname[mp->contents]);
		if (mp->anon == NULL)
			mp->anon = anon;
		CHECK(mp->anon == anon, "page %#lx: anon %p replaced by %p",
		    (unsigned long)pva(ps + s), (void *)mp->anon,
		    (void *)anon);
		pg = anon->an_page;
		CHECK(anon->an_ref == 1 && anon->an_swslot == 0 && pg != NULL &&
		    pg->pg_anon == anon && pg->pg_va == pva(ps + s) &&
		    !(pg->pg_flags & (PG_BUSY | PG_WANTED | PG_RELEASED)),
		    "page %#lx: anon %p ref %u page %p (anon %p va %#lx "
		    "flags %#x)", (unsigned long)pva(ps + s), (void *)anon,
		    anon->an_ref, (void *)pg, pg ? (void *)pg->pg_anon : NULL,
		    pg ? (unsigned long)pg->pg_va : 0UL,
		    pg ? pg->pg_flags : 0);
		found++;
		slot = s + 1;
	}
	amap_unlock(amap);
	CHECK(found == nd, "entry [%#lx, %#lx): %zu anons, %zu data pages",
	    (unsigned long)e->start, (unsigned long)e->end, found, nd);
	uses[*nuses].amap = amap;
	uses[*nuses].refs = 1;
	uses[*nuses].anons = found;
	(*nuses)++;
}

static void
check_all(void)
{
	struct vm_map *map = &vs->vs_map;
	struct vm_map_entry *e;
	size_t next = 0, nentries = 0, nuses = 0, ndata = 0;

	map_validate(map);
	map_lock_read(map);
	for (e = map->m_tree.mt_first; e != NULL; e = e->next) {
		CHECK(e->start >= base && e->end <= base + SPACE_BYTES &&
		    e->start < e->end && page_aligned(e->start) &&
		    page_aligned(e->end), "entry [%#lx, %#lx) outside the "
		    "space", (unsigned long)e->start, (unsigned long)e->end);
		for (size_t p = next; p < atop(e->start - base); p++)
			CHECK(m[p].mapped == M_FREE, "page %#lx: no entry, "
			    "model says mapped", (unsigned long)pva(p));
		check_entry(e, &nuses);
		next = atop(e->end - base);
		nentries++;
	}
	map_unlock_read(map);
	for (size_t p = next; p < NP; p++)
		CHECK(m[p].mapped == M_FREE, "page %#lx: no entry, model says "
		    "mapped", (unsigned long)pva(p));
	st.max_entries = MAX(st.max_entries, nentries);
	CHECK(map->m_tree.mt_nentries == nentries &&
	    atomic_load(&usrvm_cnt.map_entries) == (int64_t)nentries,
	    "%zu entries, tree says %zu, counter %lld", nentries,
	    map->m_tree.mt_nentries,
	    (long long)atomic_load(&usrvm_cnt.map_entries));

	/* Each amap: one reference per entry using it, anons only where an
	 * entry still maps them (partial unref freed the others). */
	qsort(uses, nuses, sizeof(uses[0]), use_cmp);
	for (size_t i = 0; i < nuses;) {
		struct vm_amap *amap = uses[i].amap;
		size_t refs = 0, anons = 0;
		for (; i < nuses && uses[i].amap == amap; i++) {
			refs += uses[i].refs;
			anons += uses[i].anons;
		}
		amap_validate(amap);
		if (refs > 1)
			st.split_amaps++;
		st.max_amap_refs = MAX(st.max_amap_refs, refs);
		amap_lock(amap);
		CHECK(amap_refs(amap) == refs && amap_nused(amap) == anons &&
		    !amap_shared(amap), "amap %p: am_ref %u (entries using "
		    "it: %zu), %zu anons (entries map %zu), shared %d",
		    (void *)amap, amap_refs(amap), refs, amap_nused(amap),
		    anons, amap_shared(amap));
		amap_unlock(amap);
	}

	/* The fake's view: open pages exactly where the model maps them. */
	for (size_t p = 0; p < NP; p++) {
		const struct fpage *f = &fk.pg[p];
		const struct mpage *mp = &m[p];

		if (mp->mapped == M_MAPPED) {
			CHECK(f->st == FS_OPEN && f->prot == mp->prot &&
			    f->present == mp->contents, "page %#lx: pmap "
			    "state %d prot %d %s, model mapped prot %d %s",
			    (unsigned long)pva(p), f->st, f->prot,
			    cname[f->present], mp->prot,
			    cname[mp->contents]);
			if (mp->contents == C_DATA)
				ndata++;
		} else {
			CHECK(mp->contents == C_NONE && mp->anon == NULL &&
			    mp->amap == NULL, "page %#lx: unmapped with "
			    "contents", (unsigned long)pva(p));
			CHECK(f->st == (mp->fforeign ? FS_FOREIGN : FS_CLOSED),
			    "page %#lx: pmap state %d, model %s%s",
			    (unsigned long)pva(p), f->st,
			    mp->mapped == M_FOREIGN ? "foreign entry" :
			    "free", mp->fforeign ? " (foreign mapping)" : "");
		}
	}
	CHECK(atomic_load(&usrvm_cnt.resident) == (int64_t)ndata &&
	    atomic_load(&usrvm_cnt.anons) == (int64_t)ndata,
	    "resident %lld, anons %lld, data pages %zu",
	    (long long)atomic_load(&usrvm_cnt.resident),
	    (long long)atomic_load(&usrvm_cnt.anons), ndata);
	CHECK(!fk.ev, "a REMOVE event is pending");
}

/* ------------------------------------------------------------------ */
/* choosing ranges                                                     */
/* ------------------------------------------------------------------ */

static size_t
gen_len(void)
{
	size_t r = rnd(100);

	if (r < 55)
		return 1 + rnd(16);
	if (r < 85)
		return 1 + rnd(256);
	if (r < 97)
		return 1 + rnd(2048);
	return 1 + rnd(NP);
}

/* A random entry (NULL if the map is empty). */
static struct vm_map_entry *
random_entry(void)
{
	struct vm_map_entry *e;
	size_t n = vs->vs_map.m_tree.mt_nentries, k;

	if (n == 0)
		return NULL;
	k = rnd(n);
	for (e = vs->vs_map.m_tree.mt_first; k > 0; k--)
		e = e->next;
	return e;
}

/* [*sp, *sp + *np): anywhere, or around what is mapped. */
static void
gen_range(size_t *sp, size_t *np)
{
	struct vm_map_entry *e;
	size_t s, n = gen_len();

	if (chance(50) && (e = random_entry()) != NULL) {
		size_t es = atop(e->start - base), ee = atop(e->end - base);
		s = es + rnd(ee - es);
		if (chance(30))
			s = s >= 8 ? s - rnd(8) : 0;
		if (chance(50))
			n = 1 + rnd(ee - s + 4);
	} else {
		s = chance(80) ? rnd(ARENA) : rnd(NP);
	}
	if (s >= NP)
		s = NP - 1;
	if (n > NP - s)
		n = NP - s;
	*sp = s;
	*np = n;
}

/* Page range arguments that the API refuses with EINVAL. */
static bool
gen_bad_range(void **addrp, size_t *lenp)
{
	size_t s = rnd(ARENA);

	if (!chance(3))
		return false;
	switch (rnd(4)) {
	case 0:
		*addrp = (void *)(pva(s) + 1 + rnd(PAGE_SIZE - 1));
		*lenp = PAGE_SIZE;
		break;
	case 1:
		*addrp = (void *)pva(s);
		*lenp = 0;
		break;
	case 2:
		*addrp = (void *)pva(s);
		*lenp = PAGE_SIZE + 1 + rnd(PAGE_SIZE - 1);
		break;
	default:
		*addrp = (void *)(base + SPACE_BYTES - PAGE_SIZE);
		*lenp = 2 * PAGE_SIZE;
		break;
	}
	return true;
}

static int
gen_prot(void)
{
	static const int p[] = { 0, R, R, W, RW, RW, RW };

	return p[rnd(sizeof(p) / sizeof(p[0]))];
}

/* A hole, for protect and advise: unmapped, or another mapping's. */
static int
range_holes(size_t s, size_t n)
{
	for (size_t p = s; p < s + n; p++)
		if (m[p].mapped != M_MAPPED)
			return 1;
	return 0;
}

/* ------------------------------------------------------------------ */
/* operations                                                          */
/* ------------------------------------------------------------------ */

enum {
	OP_MAP, OP_UNMAP, OP_PROTECT, OP_ADVISE, OP_INHERIT, OP_FAULT,
	OP_STALE, OP_STREAM, OP_APP_MUNMAP, OP_NOPS
};

static void
op_map(void)
{
	size_t s, n;
	bool fixed = chance(50), bad = false;
	int prot = gen_prot(), pr, maxp = RW, flags, expect = 0, fd = -1;
	bool has_max = chance(40);
	void *hint, *ret;
	uintptr_t got;
	size_t at = SIZE_MAX, badkind = SIZE_MAX;
	struct vm_map_entry *e;

	gen_range(&s, &n);
	if (has_max) {
		maxp = gen_prot();
		if (chance(70))
			maxp |= prot;	/* mostly valid */
	}
	e = chance(15) ? random_entry() : NULL;
	if (e != NULL && e->end < base + SPACE_BYTES) {
		/* Just after an entry, alike: exercises the merge. */
		s = atop(e->end - base);
		n = MIN(n, NP - s);
		fixed = true;
		prot = e->protection;
		maxp = e->max_protection;
		has_max = maxp != RW || chance(50);
	}
	pr = prot | (has_max ? USRVM_PROT_MAX(maxp) : 0);
	flags = USRVM_MAP_PRIVATE | USRVM_MAP_ANON |
	    (fixed ? USRVM_MAP_FIXED : 0);
	hint = fixed || chance(50) ? (void *)pva(s) : NULL;
	if (chance(3)) {
		bad = true;
		switch ((badkind = rnd(4))) {
		case 0:
			pr |= 0x80;	/* unknown prot bit */
			expect = EINVAL;
			break;
		case 1:		/* shared and private at once */
			flags = USRVM_MAP_SHARED | USRVM_MAP_PRIVATE |
			    USRVM_MAP_ANON;
			expect = EINVAL;
			break;
		case 2:
			flags = USRVM_MAP_PRIVATE;
			expect = EBADF;
			break;
		default:
			fd = 3;
			expect = EINVAL;
			break;
		}
	}
	if (has_max && (prot & maxp) != prot && badkind != 0 &&
	    badkind != 1) {
		expect = EACCES;	/* check_prot comes before these */
	} else if (bad) {
		/* expect is set */
	} else if (fixed) {
		for (size_t p = s; p < s + n; p++)
			if (m[p].mapped != M_FREE)
				expect = EEXIST;
		at = s;
	} else {
		/* The lowest fit at or above the hint, else the lowest. */
		size_t h = hint != NULL ? s : 0, run = 0;
		if (h + n > NP)
			h = 0;
		for (size_t pass = 0; pass < 2 && at == SIZE_MAX; pass++) {
			run = 0;
			for (size_t p = pass ? 0 : h; p < NP; p++) {
				run = m[p].mapped == M_FREE ? run + 1 : 0;
				if (run == n) {
					at = p + 1 - n;
					break;
				}
			}
		}
		if (at == SIZE_MAX)
			expect = ENOMEM;
	}
	logop("map %s [%#lx, +%zu pages) prot %d max %d%s -> expect %d",
	    fixed ? "fixed" : "hint", (unsigned long)(hint ? (uintptr_t)hint :
	    0), n, prot, has_max ? maxp : -1, bad ? " (bad args)" : "",
	    expect);
	errno = 0;
	ret = usrvm_map(vs, hint, ptoa(n), pr, flags, fd, 0);
	if (expect != 0) {
		CHECK(ret == NULL && errno == expect, "usrvm_map: %p errno %d, "
		    "expected error %d", ret, errno, expect);
		if (expect == EEXIST)
			st.eexist++;
		if (expect == EACCES)
			st.eacces++;
		if (expect == ENOMEM)
			st.enomem++;
		return;
	}
	got = (uintptr_t)ret;
	CHECK(ret != NULL && got == pva(at), "usrvm_map: %p errno %d, "
	    "expected %#lx", ret, errno, (unsigned long)pva(at));
	map_lock_read(&vs->vs_map);
	e = map_tree_lookup_le(&vs->vs_map.m_tree, got);
	if (e != NULL && e->start < got && e->aref.ar_amap != NULL)
		st.extends++;
	map_unlock_read(&vs->vs_map);
	for (size_t p = at; p < at + n; p++) {
		model_unmap_page(p);
		m[p].mapped = M_MAPPED;
		m[p].prot = (uint8_t)prot;
		m[p].maxprot = (uint8_t)maxp;
		m[p].advice = USRVM_ADV_NORMAL;
		m[p].inh = USRVM_INH_COPY;
		m[p].fforeign = false;	/* (the pmap took it: a violation) */
	}
}

static void
op_unmap(void)
{
	size_t s, n;
	void *addr;
	size_t len;
	int r;

	if (gen_bad_range(&addr, &len)) {
		logop("unmap %p +%#zx (bad range)", addr, len);
		r = usrvm_unmap(vs, addr, len);
		CHECK(r == -EINVAL, "usrvm_unmap(%p, %#zx) = %d, expected "
		    "-EINVAL", addr, len, r);
		return;
	}
	gen_range(&s, &n);
	if (chance(3)) {
		s = 0;
		n = NP;
	}
	logop("unmap [%#lx, +%zu pages)", (unsigned long)pva(s), n);
	r = usrvm_unmap(vs, (void *)pva(s), ptoa(n));
	CHECK(r == 0, "usrvm_unmap = %d", r);
	for (size_t p = s; p < s + n; p++)
		model_unmap_page(p);
}

static void
op_protect(void)
{
	size_t s, n;
	int prot = gen_prot(), maxp = -1, pr = prot, expect = 0, r;
	void *addr;
	size_t len;

	if (gen_bad_range(&addr, &len)) {
		logop("protect %p +%#zx (bad range)", addr, len);
		r = usrvm_protect(vs, addr, len, prot);
		CHECK(r == -EINVAL, "usrvm_protect(%p, %#zx) = %d, expected "
		    "-EINVAL", addr, len, r);
		return;
	}
	gen_range(&s, &n);
	if (chance(30)) {
		maxp = gen_prot();
		if (chance(60))
			maxp |= prot;
		if (chance(25))
			maxp = RW;	/* try to raise it */
		pr |= USRVM_PROT_MAX(maxp);
	}
	if (maxp >= 0 && (prot & maxp) != prot)
		expect = EACCES;		/* check_prot, first */
	else if (range_holes(s, n))
		expect = ENOMEM;
	else
		for (size_t p = s; p < s + n; p++) {
			int mx = maxp >= 0 ? maxp : m[p].maxprot;
			if ((prot & mx) != prot || (mx & m[p].maxprot) != mx)
				expect = EACCES;
		}
	logop("protect [%#lx, +%zu pages) prot %d max %d -> expect %d",
	    (unsigned long)pva(s), n, prot, maxp, expect);
	r = usrvm_protect(vs, (void *)pva(s), ptoa(n), pr);
	CHECK(r == -expect, "usrvm_protect = %d, expected %d", r, -expect);
	if (expect == EACCES)
		st.eacces++;
	if (expect != 0)
		return;
	for (size_t p = s; p < s + n; p++) {
		m[p].prot = (uint8_t)prot;
		if (maxp >= 0)
			m[p].maxprot = (uint8_t)maxp;
	}
}

static void
op_advise(void)
{
	static const int adv[] = {
		USRVM_ADV_NORMAL, USRVM_ADV_RANDOM, USRVM_ADV_SEQUENTIAL,
		USRVM_ADV_SEQUENTIAL, USRVM_ADV_WILLNEED, USRVM_ADV_DONTNEED,
		USRVM_ADV_DONTNEED, USRVM_ADV_FREE, 99,
	};
	int a = adv[rnd(sizeof(adv) / sizeof(adv[0]))], expect = 0, r;
	size_t s, n;
	void *addr;
	size_t len;

	if (gen_bad_range(&addr, &len)) {
		logop("advise %p +%#zx (bad range)", addr, len);
		r = usrvm_advise(vs, addr, len, a);
		CHECK(r == -EINVAL, "usrvm_advise(%p, %#zx) = %d, expected "
		    "-EINVAL", addr, len, r);
		return;
	}
	gen_range(&s, &n);
	if (a == 99)
		expect = EINVAL;
	else if (range_holes(s, n))
		expect = ENOMEM;
	logop("advise [%#lx, +%zu pages) %d -> expect %d",
	    (unsigned long)pva(s), n, a, expect);
	fk.ev = false;
	r = usrvm_advise(vs, (void *)pva(s), ptoa(n), a);
	CHECK(r == -expect, "usrvm_advise(%d) = %d, expected %d", a, r,
	    -expect);
	if (expect != 0) {
		CHECK(!fk.ev, "usrvm_advise failed but dropped pages");
		return;
	}
	switch (a) {
	case USRVM_ADV_DONTNEED:
	case USRVM_ADV_FREE:
		CHECK(fk.ev && fk.ev_start == pva(s) &&
		    fk.ev_end == pva(s + n), "usrvm_advise(%d): pages "
		    "dropped [%#lx, %#lx), expected [%#lx, %#lx)", a,
		    (unsigned long)fk.ev_start, (unsigned long)fk.ev_end,
		    (unsigned long)pva(s), (unsigned long)pva(s + n));
		/* The REMOVE event, read by a fault thread. */
		fk.ev = false;
		map_discard(vs, fk.ev_start, fk.ev_end);
		for (size_t p = s; p < s + n; p++) {
			m[p].contents = C_NONE;
			m[p].anon = NULL;
		}
		break;
	case USRVM_ADV_WILLNEED:
		CHECK(!fk.ev, "WILLNEED dropped pages");
		break;
	default:
		CHECK(!fk.ev, "advice %d dropped pages", a);
		for (size_t p = s; p < s + n; p++)
			m[p].advice = (uint8_t)a;
		break;
	}
}

static void
op_inherit(void)
{
	static const int inh[] = {
		USRVM_INH_SHARE, USRVM_INH_COPY, USRVM_INH_NONE,
		USRVM_INH_ZERO, 7,
	};
	int i = inh[rnd(sizeof(inh) / sizeof(inh[0]))], expect = 0, r;
	size_t s, n;
	void *addr;
	size_t len;

	if (gen_bad_range(&addr, &len)) {
		logop("inherit %p +%#zx (bad range)", addr, len);
		r = usrvm_inherit(vs, addr, len, i);
		CHECK(r == -EINVAL, "usrvm_inherit(%p, %#zx) = %d, expected "
		    "-EINVAL", addr, len, r);
		return;
	}
	gen_range(&s, &n);
	if (i == 7)
		expect = EINVAL;
	logop("inherit [%#lx, +%zu pages) %d -> expect %d",
	    (unsigned long)pva(s), n, i, expect);
	r = usrvm_inherit(vs, (void *)pva(s), ptoa(n), i);
	CHECK(r == -expect, "usrvm_inherit(%d) = %d, expected %d", i, r,
	    -expect);
	if (expect != 0)
		return;
	for (size_t p = s; p < s + n; p++)
		if (m[p].mapped == M_MAPPED)	/* foreign: not ours */
			m[p].inh = (uint8_t)i;
}

/*
 * One call of uvm_fault at page p, checked: its return value, that it
 * woke the faulting thread, that it changed presence only inside its
 * entry and window and only in the allowed ways; the model then takes
 * the new contents from the fake.
 */
static int
do_fault(size_t p, int access, int ftype)
{
	const struct mpage *mp = &m[p];
	struct vm_map_entry *e;
	size_t es = 0, ee = 0, lo, hi;
	int expect, r, advice = mp->advice;
	uintptr_t va = pva(p) + (chance(30) ? rnd(PAGE_SIZE) : 0);

	if (mp->mapped == M_FREE)
		expect = EFAULT;
	else if (((mp->prot & W ? (R | W) : mp->prot) & access) != access)
		expect = EACCES;	/* foreign entries: prot 0 */
	else
		expect = 0;

	map_lock_read(&vs->vs_map);
	e = map_lookup(&vs->vs_map, pva(p));
	if (e != NULL) {
		es = atop(e->start - base);
		ee = atop(e->end - base);
	}
	map_unlock_read(&vs->vs_map);

	logop("fault %s %s at %#lx (%s, prot %d, advice %d) -> expect %d",
	    access == W ? "write" : "read", ftype == FAULT_WP ? "WP" :
	    "missing", (unsigned long)va, cname[fk.pg[p].present], mp->prot,
	    advice, expect);
	fk.in_fault = true;
	fk.lo = SIZE_MAX;
	fk.hi = 0;
	fk.target = p;
	fk.woke = false;
	fk.injected = false;
	r = uvm_fault(vs, va, access, ftype);
	fk.in_fault = false;
	st.faults++;

	CHECK(r == expect, "uvm_fault = %d, expected %d", r, expect);
	lo = fk.lo;
	hi = fk.hi;
	if (r != 0) {
		CHECK(lo == SIZE_MAX, "uvm_fault failed (%d) but installed "
		    "pages at %#lx", r, (unsigned long)pva(lo));
		return r;
	}
	CHECK(fk.woke, "uvm_fault returned 0 without waking the faulting "
	    "thread");
	if (lo == SIZE_MAX)
		return r;

	/* Inside the entry, inside the window the advice allows. */
	CHECK(lo >= es && hi <= ee, "fault at %#lx in entry [%#lx, %#lx) "
	    "changed pages [%#lx, %#lx)", (unsigned long)pva(p),
	    (unsigned long)pva(es), (unsigned long)pva(ee),
	    (unsigned long)pva(lo), (unsigned long)pva(hi));
	switch (advice) {
	case USRVM_ADV_RANDOM:
		CHECK(lo == p && hi == p + 1, "RANDOM fault at %#lx changed "
		    "[%#lx, %#lx)", (unsigned long)pva(p),
		    (unsigned long)pva(lo), (unsigned long)pva(hi));
		break;
	case USRVM_ADV_SEQUENTIAL:
		CHECK(lo >= p && hi <= p + FA_MAX, "SEQUENTIAL fault at %#lx "
		    "changed [%#lx, %#lx)", (unsigned long)pva(p),
		    (unsigned long)pva(lo), (unsigned long)pva(hi));
		break;
	default:
		CHECK(lo >= (p & ~(size_t)(FA_CLUSTER - 1)) &&
		    hi <= p + FA_MAX_NORMAL, "NORMAL fault at %#lx changed "
		    "[%#lx, %#lx)", (unsigned long)pva(p),
		    (unsigned long)pva(lo), (unsigned long)pva(hi));
		break;
	}

	st.max_window = MAX(st.max_window, hi - lo);

	/* The transitions. */
	for (size_t q = lo; q < hi; q++) {
		uint8_t before = m[q].contents, after = fk.pg[q].present;
		bool ok;

		if (after == before)
			continue;
		if (before == C_NONE && after == C_ZERO)
			ok = access == R && ftype == FAULT_MISSING;
		else if (before == C_NONE && after == C_DATA)
			ok = access == W && ftype == FAULT_MISSING;
		else if (before == C_ZERO && after == C_DATA)
			ok = q == p && ftype == FAULT_WP;
		else
			ok = false;
		CHECK(ok, "%s %s fault at %#lx: page %#lx went from %s to %s",
		    access == W ? "write" : "read", ftype == FAULT_WP ? "WP" :
		    "missing", (unsigned long)pva(p), (unsigned long)pva(q),
		    cname[before], cname[after]);
		if (after == C_ZERO)
			st.filled_zero++;
		else if (before == C_ZERO)
			st.zero_to_data++;
		else
			st.filled_data++;
		m[q].contents = after;
	}
	return r;
}

/* Did the fault resolve?  (Unless a failure was injected.) */
static void
check_resolved(size_t p, int access, int ftype, uint8_t before)
{
	uint8_t now = fk.pg[p].present;

	if (fk.injected)
		return;
	if (ftype == FAULT_WP)
		CHECK(now == C_DATA, "WP fault at %#lx: page is %s",
		    (unsigned long)pva(p), cname[now]);
	else if (access == R || before == C_ZERO)
		CHECK(now != C_NONE, "missing fault at %#lx: page is %s",
		    (unsigned long)pva(p), cname[now]);
	else
		CHECK(now == C_DATA, "write fault at %#lx: page is %s",
		    (unsigned long)pva(p), cname[now]);
}

/*
 * The application touches page p: the fault the kernel raises, if any.
 * Returns false if the access raises no userfaultfd fault.
 */
static bool
kernel_fault(size_t p, int access)
{
	const struct mpage *mp = &m[p];
	uint8_t present = fk.pg[p].present;
	int ftype;

	if (mp->mapped != M_MAPPED)
		return false;		/* SIGSEGV (or not ours) */
	/* x86: a writable page is readable too. */
	if (access == W ? !(mp->prot & W) : mp->prot == 0) {
		st.segv++;
		return false;		/* SIGSEGV */
	}
	if (present == C_NONE)
		ftype = FAULT_MISSING;
	else if (present == C_ZERO && access == W)
		ftype = FAULT_WP;
	else
		return false;		/* the access just works */
	/*
	 * A read of a write-only page: x86 lets it through (PROT_WRITE
	 * implies PROT_READ) and the kernel raises a read fault, which
	 * uvm_fault serves -- see do_fault's expectation.
	 */
	if (do_fault(p, access, ftype) != 0)
		return false;
	check_resolved(p, access, ftype, present);
	return true;
}

static void
op_fault(void)
{
	struct vm_map_entry *e = random_entry();
	size_t p;

	if (e == NULL)
		return;
	p = atop(e->start - base) + rnd(atop(e->end - e->start));
	kernel_fault(p, chance(50) ? W : R);
}

/* A fault message that is stale or a duplicate by the time it is read. */
static void
op_stale(void)
{
	struct vm_map_entry *e;
	size_t p;
	int access = chance(50) ? W : R, ftype = FAULT_MISSING;

	if (chance(70) && (e = random_entry()) != NULL)
		p = atop(e->start - base) + rnd(atop(e->end - e->start));
	else
		p = rnd(ARENA);
	/* A write-protect fault needs a page that was present. */
	if (access == W && fk.pg[p].st == FS_OPEN &&
	    fk.pg[p].present != C_NONE && chance(50))
		ftype = FAULT_WP;
	st.faults_stale++;
	do_fault(p, access, ftype);
}

/* Faults walking forward through an entry (the streak detector). */
static void
op_stream(void)
{
	struct vm_map_entry *e = random_entry(), *f;
	int access = chance(60) ? W : R;
	size_t p, ee, k = 4 + rnd(40);

	if (e == NULL)
		return;
	/* Prefer large entries: windows grow to hundreds of pages. */
	for (int i = 0; i < 4; i++) {
		f = random_entry();
		if ((e->etype & UVM_ET_FOREIGN) ||
		    (!(f->etype & UVM_ET_FOREIGN) &&
		    f->end - f->start > e->end - e->start))
			e = f;
	}
	if (e->etype & UVM_ET_FOREIGN)
		return;		/* nothing of ours to stream through */
	p = atop(e->start - base) + (chance(50) ? 0 :
	    rnd(atop(e->end - e->start)));
	ee = atop(e->end - base);
	if (chance(25)) {
		/* SEQUENTIAL: the largest windows. */
		size_t es = atop(e->start - base);
		int r;

		logop("advise [%#lx, +%zu pages) SEQUENTIAL for a stream",
		    (unsigned long)pva(es), ee - es);
		r = usrvm_advise(vs, (void *)pva(es), ptoa(ee - es),
		    USRVM_ADV_SEQUENTIAL);
		CHECK(r == 0, "usrvm_advise(SEQUENTIAL) of an entry = %d", r);
		for (size_t q = es; q < ee; q++)
			m[q].advice = USRVM_ADV_SEQUENTIAL;
	}
	logop("stream %s from %#lx, %zu faults", access == W ? "write" :
	    "read", (unsigned long)pva(p), k);
	while (k-- > 0 && p < ee) {
		size_t lim = MIN(ee, p + FA_MAX + 64);
		while (p < lim && fk.pg[p].present != C_NONE)
			p++;
		if (p == lim || !kernel_fault(p, access))
			break;
	}
}

/*
 * The application munmaps part of the space itself: the kernel drops the
 * range (and, in the foreign case, another mmap takes it at once), then
 * a fault thread reads the UNMAP event.
 */
static void
app_munmap(size_t s, size_t n, bool foreign)
{
	uintptr_t end;

	logop("application munmap [%#lx, +%zu pages)%s",
	    (unsigned long)pva(s), n, foreign ? ", another mapping takes it" :
	    "");
	for (size_t p = s; p < s + n; p++)
		fk.pg[p] = (struct fpage){ FS_GONE, 0, C_NONE };
	fk.take_foreign = foreign;
	/* munmap's length need not be page aligned. */
	end = pva(s + n) - (chance(30) ? rnd(PAGE_SIZE) : 0);
	map_forget(vs, pva(s), end);
	fk.take_foreign = false;
	for (size_t p = s; p < s + n; p++) {
		model_unmap_page(p);
		if (foreign) {
			m[p].mapped = M_FOREIGN;
			m[p].inh = USRVM_INH_NONE;
			m[p].fforeign = true;
		}
	}
	st.foreign += foreign;
}

static void
op_app_munmap(bool foreign_ok)
{
	size_t s, n, mapped = 0;

	gen_range(&s, &n);
	for (size_t p = s; p < s + n; p++) {
		if (m[p].mapped == M_FOREIGN || m[p].fforeign)
			return;		/* not ours to munmap */
		mapped += m[p].mapped == M_MAPPED;
	}
	if (mapped == 0)
		return;			/* no event for us */
	app_munmap(s, n, foreign_ok && chance(40));
}

/* ------------------------------------------------------------------ */
/* the run                                                             */
/* ------------------------------------------------------------------ */

/* Touching a range another mapping owns is a bug: report every kind. */
static void
check_violations(void)
{
	char msg[1024];
	size_t len = 0;

	for (int k = 0; k < V_NKINDS; k++)
		if (fk.viol[k] != 0)
			len += snprintf(msg + len, sizeof(msg) - len, "%s%s (%lu "
			    "pages; first at step %" PRIu64 ", %#lx)",
			    len ? "; " : "", vname[k], fk.viol[k],
			    fk.viol_step[k], (unsigned long)fk.viol_va[k]);
	CHECK(len == 0, "the runtime touched memory it gave up: %s", msg);
}

static uint64_t
env_steps(void)
{
	const char *s = getenv("USRVM_TEST_STEPS");

	return s != NULL && *s != '\0' ? strtoull(s, NULL, 0) : DEFAULT_STEPS;
}

static void
setup(void)
{
	int error;

	stats_reset();
	memset(&fk, 0, sizeof(fk));
	memset(m, 0, sizeof(m));
	memset(&st, 0, sizeof(st));
	ck_assert_int_eq(page_sys_init(), 0);
	ck_assert_int_eq(anon_sys_init(), 0);
	ck_assert_int_eq(amap_sys_init(), 0);
	ck_assert_int_eq(map_sys_init(), 0);
	ck_assert_int_eq(fault_sys_init(), 0);
	ck_assert_int_eq(space_sys_init(), 0);
	saved_pmap = pmap;
	pmap = &fake_ops;
	vs = space_create(SPACE_BYTES, &error);
	ck_assert_msg(vs != NULL, "space_create: %d", error);
	ck_assert(space_valid(vs));
	base = vs->vs_base;
	ck_assert_uint_eq(base, FAKE_BASE);
	ck_assert_uint_eq(vs->vs_size, SPACE_BYTES);
	signal(SIGABRT, on_abort);
}

static void
teardown(void)
{
	signal(SIGABRT, SIG_DFL);
	space_sys_fini();
	fault_sys_fini();
	map_sys_fini();
	amap_sys_fini();
	anon_sys_fini();
	page_sys_fini();
	pmap = saved_pmap;
}

static void
model_run(uint64_t seed, uint64_t steps, bool foreign)
{
	int r;

	cur_seed = seed;
	rng = seed;
	fk.rng = seed ^ 0x9e3779b97f4a7c15ull;
	fk.inject = true;
	in_run = true;
	oplog_n = 0;
	check_all();
	for (cur_step = 1; cur_step <= steps; cur_step++) {
		size_t r100 = rnd(100);
		int op;

		if (r100 < 16)
			op = OP_MAP;
		else if (r100 < 26)
			op = OP_UNMAP;
		else if (r100 < 35)
			op = OP_PROTECT;
		else if (r100 < 43)
			op = OP_ADVISE;
		else if (r100 < 47)
			op = OP_INHERIT;
		else if (r100 < 80)
			op = OP_FAULT;
		else if (r100 < 88)
			op = OP_STALE;
		else if (r100 < 95)
			op = OP_STREAM;
		else
			op = OP_APP_MUNMAP;
		st.ops[op]++;
		switch (op) {
		case OP_MAP:		op_map(); break;
		case OP_UNMAP:		op_unmap(); break;
		case OP_PROTECT:	op_protect(); break;
		case OP_ADVISE:		op_advise(); break;
		case OP_INHERIT:	op_inherit(); break;
		case OP_FAULT:		op_fault(); break;
		case OP_STALE:		op_stale(); break;
		case OP_STREAM:		op_stream(); break;
		default:		op_app_munmap(foreign); break;
		}
		check_all();
	}

	/* Unmap everything: nothing may be left behind but the ranges
	 * other mappings took (FOREIGN entries stay: not ours to free). */
	logop("unmap the whole space");
	r = usrvm_unmap(vs, (void *)base, SPACE_BYTES);
	CHECK(r == 0, "usrvm_unmap(everything) = %d", r);
	for (size_t p = 0; p < NP; p++)
		model_unmap_page(p);
	check_all();
	long long nforeign = 0;
	for (struct vm_map_entry *e = vs->vs_map.m_tree.mt_first; e != NULL;
	    e = e->next)
		nforeign += (e->etype & UVM_ET_FOREIGN) != 0;
	CHECK(atomic_load(&usrvm_cnt.resident) == 0 &&
	    atomic_load(&usrvm_cnt.anons) == 0 &&
	    atomic_load(&usrvm_cnt.map_entries) == nforeign,
	    "after unmapping everything: resident %lld anons %lld entries "
	    "%lld", (long long)atomic_load(&usrvm_cnt.resident),
	    (long long)atomic_load(&usrvm_cnt.anons),
	    (long long)atomic_load(&usrvm_cnt.map_entries));
	logop("destroy the space");
	CHECK(space_destroy(vs) == 0, "space_destroy failed");
	CHECK(!fk.reserved, "space_destroy kept the reservation");
	vs = NULL;

	fprintf(stderr, "test_map_model: %s seed %" PRIu64 ": %" PRIu64
	    " steps: map %lu unmap %lu protect %lu advise %lu inherit %lu "
	    "fault %lu stale %lu stream %lu app-munmap %lu; %lu uvm_fault "
	    "calls (%lu stale), %lu SIGSEGV; filled %lu zero %lu data, %lu "
	    "zero->data; EEXIST %lu EACCES %lu ENOMEM %lu; %lu foreign; "
	    "%lu pmap calls; up to %lu entries, %lu-page windows; %lu "
	    "amap checks with split references (up to %lu); %lu amaps "
	    "extended\n", foreign ? "model_foreign" : "model", seed,
	    steps, st.ops[OP_MAP], st.ops[OP_UNMAP], st.ops[OP_PROTECT],
	    st.ops[OP_ADVISE], st.ops[OP_INHERIT], st.ops[OP_FAULT],
	    st.ops[OP_STALE], st.ops[OP_STREAM], st.ops[OP_APP_MUNMAP],
	    st.faults, st.faults_stale, st.segv, st.filled_zero,
	    st.filled_data, st.zero_to_data, st.eexist, st.eacces, st.enomem,
	    st.foreign, fk.ncalls, st.max_entries, st.max_window,
	    st.split_amaps, st.max_amap_refs, st.extends);

	/* Maps just after an entry with an amap (op_map) grow it. */
	CHECK(foreign || steps < 1000 || st.extends > 0, "no amap extended "
	    "in %" PRIu64 " steps", steps);
	check_violations();
	in_run = false;
}

START_TEST(test_model)
{
	model_run(t_seed(FIXED_SEED), env_steps(), false);
}
END_TEST

/*
 * The same, scripted: the application munmaps the middle of a mapping
 * and another mapping takes the range before the runtime can: a FOREIGN
 * entry.  The runtime must never touch that range again.
 */
static void
map_fixed(size_t s, size_t n, int prot)
{
	void *p;

	logop("map fixed [%#lx, +%zu pages) prot %d", (unsigned long)pva(s),
	    n, prot);
	p = usrvm_map(vs, (void *)pva(s), ptoa(n), prot, USRVM_MAP_PRIVATE |
	    USRVM_MAP_ANON | USRVM_MAP_FIXED, -1, 0);
	CHECK(p == (void *)pva(s), "usrvm_map fixed: %p errno %d", p, errno);
	for (size_t q = s; q < s + n; q++) {
		model_unmap_page(q);
		m[q].mapped = M_MAPPED;
		m[q].prot = (uint8_t)prot;
		m[q].maxprot = RW;
		m[q].advice = USRVM_ADV_NORMAL;
		m[q].inh = USRVM_INH_COPY;
		m[q].fforeign = false;
	}
	check_all();
}

static void
unmap(size_t s, size_t n)
{
	int r;

	logop("unmap [%#lx, +%zu pages)", (unsigned long)pva(s), n);
	r = usrvm_unmap(vs, (void *)pva(s), ptoa(n));
	CHECK(r == 0, "usrvm_unmap = %d", r);
	for (size_t q = s; q < s + n; q++)
		model_unmap_page(q);
	check_all();
}

START_TEST(test_foreign_scripted)
{
	int r;

	scripted = true;
	in_run = true;
	map_fixed(0, 16, RW);
	CHECK(do_fault(0, W, FAULT_MISSING) == 0, "write fault");
	check_all();
	app_munmap(4, 4, true);			/* pages 4-7: foreign */
	check_all();

	/* 1. DONTNEED over the whole mapping: the foreign part is a hole. */
	cur_step = 1;
	logop("advise [%#lx, +16 pages) DONTNEED", (unsigned long)pva(0));
	r = usrvm_advise(vs, (void *)pva(0), ptoa(16), USRVM_ADV_DONTNEED);
	CHECK(r == -ENOMEM, "usrvm_advise(DONTNEED) = %d", r);
	check_all();

	/* 2. Unmap it all: the foreign part stays, and cannot be mapped. */
	cur_step = 2;
	unmap(0, 16);
	errno = 0;
	CHECK(usrvm_map(vs, (void *)pva(0), ptoa(16), RW, USRVM_MAP_PRIVATE |
	    USRVM_MAP_ANON | USRVM_MAP_FIXED, -1, 0) == NULL && errno == EEXIST,
	    "usrvm_map fixed over a foreign range: errno %d", errno);
	map_fixed(0, 4, RW);
	map_fixed(8, 8, RW);
	unmap(0, 16);

	/* 3. Destroy the space with a foreign range in it. */
	cur_step = 3;
	map_fixed(8, 8, RW);
	app_munmap(10, 4, true);
	check_all();
	logop("destroy the space");
	CHECK(space_destroy(vs) == 0, "space_destroy failed");
	vs = NULL;
	check_violations();
	in_run = false;
}
END_TEST

START_TEST(test_model_foreign)
{
	model_run(t_seed(FIXED_SEED + 1), env_steps(), true);
}
END_TEST

static Suite *
map_model_suite(void)
{
	Suite *s = suite_create("map_model");
	TCase *tc;

	tc = tcase_create("model");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_model);
	suite_add_tcase(s, tc);

	tc = tcase_create("foreign_scripted");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_foreign_scripted);
	suite_add_tcase(s, tc);

	tc = tcase_create("model_foreign");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_model_foreign);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return t_run(map_model_suite(), 120);
}
