/*
 * flusher.h: the flusher thread, which cleans the dirty pages of objects
 * in the background: file pages go back to their files (vnode_flush.c),
 * pages of shared anonymous memory out to swap (aobj.c).  A pager asks
 * for it with flusher_kick (the page daemon wants an object's pages
 * clean, the last mapping of a file went); the thread also wakes every
 * quarter of USRVM_DIRTY_AGE (at most a second) for the files whose pages
 * have been dirty that long.
 */
#ifndef USRVM_FLUSHER_H
#define USRVM_FLUSHER_H

#include <stdint.h>

/* dirty_age_ms: USRVM_DIRTY_AGE (0: the default, 30 s).  => 0 or an errno. */
int flusher_start(unsigned dirty_age_ms);
void flusher_stop(void);
/* In a fork(2) child (the thread stopped before the fork): a new lock. */
void flusher_fork_child(void);
/* Wake the thread: a pager has work for it.  Never sleeps (a leaf lock). */
void flusher_kick(void);

#endif /* USRVM_FLUSHER_H */
