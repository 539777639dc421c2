/*
 * anon_pager.h: bringing anons' contents in (UVM's uvmfault_anonget and
 * the zero fill of uvm_fault, as one service).
 *
 * The fault routine decides which anons a fault needs and marks their
 * pages busy; the anon pager puts their contents at the addresses where
 * they live.  Today every anon it is given is new, so its contents are
 * zeros; with the swap device, an anon with a swap slot is read in.
 */
#ifndef USRVM_ANON_PAGER_H
#define USRVM_ANON_PAGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vm_anon;

/* Largest run the pager installs in one call, in pages. */
#define ANON_PAGER_MAXRUN	1024

int anon_pager_init(void);
void anon_pager_fini(void);

/*
 * anon_pager_fill: install the contents of anons[i] at start + i pages,
 * for every non-NULL anons[i] (i < n), in one request per run of
 * consecutive anons; installed[i] tells which went in.
 * => no lock held (the pages are busy); never sleeps on memory.
 * => a page that did not go in: already present (EEXIST: skipped), or
 *    the rest of its run was given up because the kernel refused
 *    (EAGAIN while an application event is unread, the range gone, no
 *    memory).  The caller takes those slots back and the faulting thread
 *    refaults.
 */
void anon_pager_fill(uintptr_t start, struct vm_anon *const *anons, size_t n,
    bool *installed);

/*
 * anon_pager_refill: a resident anon whose page is missing (see
 * fault_upper): put zeros there.  => 0, EEXIST (the page is present after
 * all: a duplicate fault), or another errno (refault).
 */
int anon_pager_refill(uintptr_t va);

#endif /* USRVM_ANON_PAGER_H */
