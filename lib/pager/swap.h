/*
 * swap.h: the swap device (UVM's uvm_swap.c): one file, its slots, and
 * their allocation.
 *
 * A slot is one page of the file; slot s lives at byte offset s pages.
 * Slot 0 is never used (an_swslot 0 means "no slot").  Slots are
 * assigned when the page daemon decides to write (UVM's swap clustering):
 * the pages it evicts together get one contiguous run and go out in one
 * write.  A slot whose write failed is marked bad and never used again.
 *
 * The file: O_DIRECT (the kernel's page cache would only keep a second
 * copy of what we evict), unlinked at creation when the runtime makes it
 * (O_TMPFILE), mode 0600.
 *
 * Thread safe (one lock, leaf).
 */
#ifndef USRVM_SWAP_H
#define USRVM_SWAP_H

#include <stddef.h>
#include <stdint.h>

#include "usrvm.h"

/* an_swslot of an anon whose contents were lost (a read failed). */
#define SWSLOT_LOST	UINT32_MAX

/*
 * swap_init: open or create the device for a budget of `budget` pages.
 * Names the setting at fault on failure.  => 0 or an errno.
 */
int swap_init(const struct usrvm_config *cfg, size_t budget);
void swap_fini(void);

int swap_fd(void);
size_t swap_nslots(void);		/* usable slots */
size_t swap_used(void);
size_t swap_bad(void);

/*
 * swap_alloc: up to n contiguous free slots: the first in *first, the
 * count returned (0: the device is full).
 */
unsigned swap_alloc(unsigned n, uint32_t *first);
void swap_free(uint32_t first, unsigned n);
/* The slots failed I/O: never use them again (they stay allocated). */
void swap_markbad(uint32_t first, unsigned n);

/*
 * In a fork(2) child (fork.c): open a device of its own; free every slot;
 * keep those it refers to; copy them there and switch (0 or an errno:
 * the old device stays).  swap_fork_abort: the new device is not wanted.
 */
int swap_fork_open(void);
void swap_fork_abort(void);
/* A child the parent does not wait for reads none of its slots. */
void swap_fork_lose(void);
void swap_fork_clear(void);
void swap_fork_keep(uint32_t slot);
int swap_fork_switch(void);

#endif /* USRVM_SWAP_H */
