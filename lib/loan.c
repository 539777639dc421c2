/*
 * loan.c: page loaning (UVM's uvm_loan.c): usrvm_loan lends the anon
 * pages of a range, read-only and with no copy, to an I/O consumer.
 *
 * Lending a page moves it out of the application's address into a frame
 * (UFFDIO_MOVE: the physical page itself, no copy) and takes it off the
 * page queues, so the page daemon leaves it alone; the consumer reads it
 * there, and nothing writes it until the loan ends.  The anon keeps the
 * page meanwhile (PG_LOANED).  The application's next access to the
 * address is a fault that copies first (fault_loan_break in fault.c):
 * the anon gets a new page with the same bytes, installed at its address
 * (writable for a write), and the loaned page is the loan's alone.  An
 * anon freed during the loan (unmap, discard, destroyed space) leaves its
 * page to the loan too (anon_page_free).  usrvm_unloan gives pages still
 * owned by an anon back to the page daemon, staged, and frees the others.
 *
 * Pages that read as zeros (nothing written there, or zeros evicted) are
 * lent as one shared zero page.  A loaned page stays resident and
 * counted; a copy made during the loan is one more page of the budget.
 * What is lent at once is at most half the budget: the page daemon
 * cannot take lent pages, and the rest must still page.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/uio.h>

#include "amap.h"
#include "anon.h"
#include "fault/trap.h"
#include "frame.h"
#include "kmem.h"
#include "map.h"
#include "page.h"
#include "pager/swap.h"
#include "space.h"
#include "stats.h"
#include "usrvm_internal.h"

#define LOAN_TRIES	1000	/* the page went away again before lent */

struct usrvm_loan {
	size_t l_npages;
	struct iovec *l_iov;		/* what the consumer reads */
	struct vm_page **l_pages;	/* lent pages; NULL: zeros */
	pthread_mutex_t **l_locks;	/* their owners' locks, held */
};

static const char loan_zero[PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));
/* Pages of the ranges lent now: at most half the budget. */
static _Atomic size_t loan_npages;

/* Free the loan (its pages given back) and its share of the bound. */
static void
loan_free(struct usrvm_loan *loan)
{
	atomic_fetch_sub(&loan_npages, loan->l_npages);
	kmem_free(loan->l_iov, loan->l_npages * sizeof(*loan->l_iov));
	kmem_free(loan->l_pages, loan->l_npages * sizeof(*loan->l_pages));
	kmem_free(loan->l_locks, loan->l_npages * sizeof(*loan->l_locks));
	kmem_free(loan, sizeof(*loan));
}

/* The range is private memory the application may read: the loan's. */
static int
loan_check(struct usrvm_space *vs, uintptr_t start, uintptr_t end)
{
	struct vm_map *map = &vs->vs_map;
	int error;

	if ((error = map_check_covered(vs, start, end)) != 0)
		return error;
	map_lock_read(map);
	for (uintptr_t va = start; va < end && error == 0;) {
		struct vm_map_entry *e = map_lookup(map, va);
		if (e == NULL)
			error = ENOMEM;
		else if (e->object != NULL || (e->etype & UVM_ET_FOREIGN))
			error = ENOTSUP;
		else if (!(e->protection & USRVM_PROT_READ))
			error = EACCES;
		else
			va = e->end;
	}
	map_unlock_read(map);
	return error;
}

/*
 * loan_page: lend the page at va as page i of the loan.
 * => 0, EAGAIN (try again: the page was busy, away, or on swap, and va
 *    was read to bring it back), or an errno.
 */
static int
loan_page(struct usrvm_space *vs, struct usrvm_loan *loan, size_t i,
    uintptr_t va)
{
	struct vm_map *map = &vs->vs_map;
	struct vm_map_entry *e;
	struct vm_amap *amap;
	struct vm_anon *anon = NULL;
	struct vm_page *pg;
	pthread_mutex_t *lock;
	int error = 0;

	map_lock_read(map);
	if ((e = map_lookup(map, va)) == NULL || e->object != NULL) {
		map_unlock_read(map);
		return ENOMEM;	/* unmapped since loan_check */
	}
	if ((amap = e->aref.ar_amap) != NULL) {
		amap_lock(amap);
		anon = amap_lookup(&e->aref, atop(va - e->start));
	}
	if (anon != NULL && anon->an_page == NULL &&
	    anon->an_swslot == SWSLOT_LOST) {
		error = EIO;		/* its bytes were lost */
		goto out;
	}
	if (anon == NULL || (anon->an_page == NULL && anon->an_swslot == 0)) {
		loan->l_iov[i].iov_base = (void *)loan_zero;	/* zeros */
		goto out;
	}
	if ((pg = anon->an_page) == NULL || (pg->pg_flags & PG_BUSY)) {
		error = EAGAIN;		/* on swap, or on its way */
		goto out;
	}
	if (pg->pg_flags & PG_LOANED) {
		error = EBUSY;		/* another loan has it */
		goto out;
	}
	if (!(pg->pg_flags & PG_STAGED) &&
	    (error = anon_stage_copy(anon)) != 0) {
		error = error == ENOMEM || error == ENOENT ? EAGAIN : error;
		goto out;
	}
	lock = amap_lockptr(amap);
	page_dequeue(pg);
	pg->pg_flags |= PG_LOANED;
	amap_lock_hold(lock);
	loan->l_pages[i] = pg;
	loan->l_locks[i] = lock;
	loan->l_iov[i].iov_base = (void *)frame_va(pg->pg_frame);
	CNT_INC(pages_loaned);
out:
	loan->l_iov[i].iov_len = PAGE_SIZE;
	if (amap != NULL)
		amap_unlock(amap);
	map_unlock_read(map);
	return error;
}

/* Give back pages [0, n) of the loan. */
static void
loan_return(struct usrvm_loan *loan, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct vm_page *pg = loan->l_pages[i];
		pthread_mutex_t *lock = loan->l_locks[i];

		if (pg == NULL)
			continue;
		pthread_mutex_lock(lock);
		pg->pg_flags &= ~PG_LOANED;
		if (pg->pg_anon != NULL) {
			page_deactivate(pg);	/* staged: the daemon's again */
		} else {
			frame_free(pg->pg_frame, true);
			pg->pg_frame = FRAME_NONE;
			pg->pg_flags = 0;
			page_free(pg);
			page_resident_add(-1);
		}
		pthread_mutex_unlock(lock);
		amap_lock_rele(lock);
		CNT_ADD(pages_loaned, -1);
	}
}

int
usrvm_loan(struct usrvm_space *vs, void *addr, size_t len,
    struct usrvm_loan **loanp)
{
	uintptr_t start = (uintptr_t)addr;
	struct usrvm_loan *loan;
	size_t n = atop(len), i;
	int error = 0;

	if (!space_valid(vs) || loanp == NULL || !page_aligned(start) ||
	    !page_aligned(len) || len == 0 || !space_contains(vs, start, len) ||
	    trap_self())
		return -EINVAL;
	if (page_budget() == 0)
		return -ENOTSUP;	/* no frames to lend from */
	if ((error = loan_check(vs, start, start + len)) != 0)
		return -error;
	/* Lent pages cannot be evicted: half the budget at most, so that
	 * the rest can still page. */
	if (atomic_fetch_add(&loan_npages, n) + n > page_budget() / 2) {
		atomic_fetch_sub(&loan_npages, n);
		return -ENOMEM;
	}
	if ((loan = kmem_zalloc(sizeof(*loan))) == NULL) {
		atomic_fetch_sub(&loan_npages, n);
		return -ENOMEM;
	}
	loan->l_npages = n;
	loan->l_iov = kmem_zalloc(n * sizeof(*loan->l_iov));
	loan->l_pages = kmem_zalloc(n * sizeof(*loan->l_pages));
	loan->l_locks = kmem_zalloc(n * sizeof(*loan->l_locks));
	if (loan->l_iov == NULL || loan->l_pages == NULL ||
	    loan->l_locks == NULL) {
		loan_free(loan);
		return -ENOMEM;
	}
	for (i = 0; i < n && error == 0; i++) {
		uintptr_t va = start + ptoa(i);
		for (int tries = 0; (error = loan_page(vs, loan, i, va)) ==
		    EAGAIN && tries < LOAN_TRIES; tries++) {
			/* Bring it back: a read of it is a fault. */
			(void)*(volatile const char *)va;
			sched_yield();
		}
	}
	if (error != 0) {
		loan_return(loan, n);
		loan_free(loan);
		return -error;
	}
	*loanp = loan;
	return 0;
}

const struct iovec *
usrvm_loan_iov(const struct usrvm_loan *loan, size_t *niovp)
{
	*niovp = loan->l_npages;
	return loan->l_iov;
}

int
usrvm_unloan(struct usrvm_loan *loan)
{
	if (loan == NULL)
		return -EINVAL;
	loan_return(loan, loan->l_npages);
	loan_free(loan);
	return 0;
}
