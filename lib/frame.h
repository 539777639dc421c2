/*
 * frame.h: frames, the runtime's own page-sized places for page contents
 * the application cannot reach (the staging area of ARCHITECTURE.md; our
 * version of the kernel's direct map).
 *
 * A page taken away from the application (deactivated) is moved into a
 * frame with no copy (UFFDIO_MOVE); it is written to swap from there, and
 * a page read from swap lands in one before it is installed.  A frame is
 * identified by its index; frame_va() is where the runtime reads and
 * writes it.  Frames hold resident pages only, so there are never more in
 * use than the budget: the area has that many and a margin.
 *
 * Thread safe (one lock, leaf).
 */
#ifndef USRVM_FRAME_H
#define USRVM_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

int frame_sys_init(size_t nframes);
void frame_sys_fini(void);
/* In a fork(2) child: a new lock; the frames registered with its new
 * userfaultfd context (0 or an errno). */
void frame_fork_child(void);
int frame_fork_adopt(void);

/* One frame, empty; FRAME_NONE if there is none. */
uint32_t frame_alloc(void);
/* The same, but FRAME_NONE unless more than `keep` frames are free. */
uint32_t frame_alloc_above(size_t keep);
/* One frame for a read to overwrite whole: full of an old page's bytes
 * (warm) or empty; FRAME_NONE if there is none. */
uint32_t frame_alloc_warm(void);
/*
 * Give a frame back.  full: it still holds a page (kept for
 * frame_alloc_warm, or emptied, giving the memory back to the kernel);
 * otherwise its page was moved out.
 */
void frame_free(uint32_t f, bool full);
/* Give back n full frames (emptied in as few calls as runs allow). */
void frame_free_many(uint32_t *f, unsigned n);
uintptr_t frame_va(uint32_t f);
size_t frame_inuse(void);
size_t frame_avail(void);		/* free, empty or warm */

#endif /* USRVM_FRAME_H */
