/*
 * anon_pager.c: filling anons' pages (see anon_pager.h).
 *
 * Zeros are installed with UFFDIO_COPY from a read-only source of zeros
 * (every page of it is the shared zero page, so the copy reads one cached
 * page).  Measured on this machine: 1.1 us a page, against 1.4-1.7 us for
 * MADV_POPULATE_WRITE of fresh pages and 1.6 us for the kernel's own
 * first-touch fault; moving pre-zeroed frames in with UFFDIO_MOVE costs
 * 0.1 us a page but their zeroing costs as much as the copy, so a frame
 * pool would only move the work to another thread (docs/DESIGN.md).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sys/mman.h>

#include "fault/pmap.h"
#include "pager/anon_pager.h"
#include "usrvm_internal.h"

static void *anon_pager_zero_src;	/* ANON_PAGER_MAXRUN pages of zeros */

int
anon_pager_init(void)
{
	void *p = mmap(NULL, ptoa(ANON_PAGER_MAXRUN), PROT_READ,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);

	if (p == MAP_FAILED)
		return ENOMEM;
	anon_pager_zero_src = p;
	return 0;
}

void
anon_pager_fini(void)
{
	if (anon_pager_zero_src != NULL)
		munmap(anon_pager_zero_src, ptoa(ANON_PAGER_MAXRUN));
	anon_pager_zero_src = NULL;
}

void
anon_pager_fill(uintptr_t start, struct vm_anon *const *anons, size_t n,
    bool *installed)
{
	KASSERT(n <= ANON_PAGER_MAXRUN);
	for (size_t i = 0; i < n; i++)
		installed[i] = false;
	for (size_t i = 0; i < n;) {
		size_t j = i, done;
		if (anons[i] == NULL) {
			i++;
			continue;
		}
		while (j < n && anons[j] != NULL)
			j++;
		while (i < j) {
			int error = pmap->copy(start + ptoa(i),
			    anon_pager_zero_src, ptoa(j - i), 0, &done);
			for (size_t k = 0; k < atop(done); k++)
				installed[i + k] = true;
			i += atop(done);
			if (error == EEXIST)
				i++;		/* present: skip it */
			else if (error != 0 && (error != EAGAIN || done == 0))
				i = j;		/* give the run up */
		}
	}
}

int
anon_pager_refill(uintptr_t va)
{
	size_t done;

	return pmap->copy(va, anon_pager_zero_src, PAGE_SIZE, 0, &done);
}
