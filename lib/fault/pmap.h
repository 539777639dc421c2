/*
 * pmap.h: the machine-dependent mapping layer (UVM's pmap(9)), as a small
 * primitive contract.
 *
 * The core (map, fault) changes what the application sees only through
 * these operations.  The real implementation (uffd.c) uses mmap, mprotect
 * and userfaultfd; tests substitute a model that records the calls, so
 * the core can be tested with no kernel in the loop.
 *
 * Every operation: addresses and lengths page aligned, len > 0.  Returns
 * 0 or a positive errno.  None of them raises a userfaultfd event that
 * the runtime must handle, so the map lock may be held across them; the
 * two that raise one at all (dontneed, stage_copy) say what they need.
 */
#ifndef USRVM_PMAP_H
#define USRVM_PMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pmap_ops {
	const char *name;
	/* Reserve len bytes aligned to align, inaccessible: *vap. */
	int (*reserve)(size_t len, size_t align, uintptr_t *vap);
	/* Give a reservation back. */
	void (*release)(uintptr_t va, size_t len);
	/* Open [va, va+len) with prot and trap its faults (map entry). */
	int (*enter)(uintptr_t va, size_t len, int prot);
	/*
	 * Open [va, va+len) as a view of an object's pages: the memfd fd
	 * from byte off, shared with every other view of it.  Missing
	 * pages (not in the object) and minor faults (in the object, not
	 * mapped here) are trapped, and write protection works as for
	 * enter.  With PMAP_PRIVATE, a copy-on-write view: the object's
	 * pages are mapped read-only, and the view's own pages (copy, or
	 * the kernel's copy of an object page after unprotect) are private
	 * anonymous pages, which the kernel will not move (stage_out:
	 * EINVAL; see stage_copy).  ENOTSUP: the kernel cannot trap shared
	 * memory.
	 */
	int (*enter_object)(uintptr_t va, size_t len, int prot, int fd,
	    uint64_t off, int flags);
	/*
	 * Close: make inaccessible, stop trapping, discard every page, with
	 * no userfaultfd event; faulting threads waiting there are woken
	 * (and then see an inaccessible range).
	 */
	int (*remove)(uintptr_t va, size_t len);
	/* Change the access of an open range. */
	int (*protect)(uintptr_t va, size_t len, int prot);
	/*
	 * Map the shared zero page, write-protected so that the first write
	 * raises a write-protect fault.  Does not wake.  *done: bytes
	 * mapped before an error; EEXIST: the page at va + *done is present.
	 * The protection may be applied late (see update).
	 */
	int (*zero)(uintptr_t va, size_t len, size_t *done);
	/*
	 * Finish work the pmap had to defer (BSD's pmap_update): the
	 * write protection of zero pages, which the kernel refuses while an
	 * application event is queued and unread.  Called by fault threads
	 * holding no lock; returns how much is still pending (call again
	 * after reading the userfaultfd).
	 */
	unsigned (*update)(void);
	/*
	 * Install copies of src, writable, or write-protected with
	 * PMAP_WP (the first write raises a write-protect fault); otherwise
	 * as zero.
	 */
	int (*copy)(uintptr_t va, const void *src, size_t len, int flags,
	    size_t *done);
	/*
	 * Map the object's pages that back a view at [va, va+len) (they
	 * are in the object already), write-protected with PMAP_WP.  Does
	 * not wake.  *done and EEXIST as for zero.
	 */
	int (*map_object)(uintptr_t va, size_t len, int flags, size_t *done);
	/* Clear write protection.  Does not wake: the caller wakes once its
	 * own state is final (a woken thread may look at it at once). */
	int (*unprotect)(uintptr_t va, size_t len);
	/*
	 * Write-protect whatever is present in [va, va+len) (usrvm_fork:
	 * the parent's pages become copy-on-write).  Holes stay holes.
	 * EAGAIN: an application event stayed unread for a second.
	 */
	int (*wprotect)(uintptr_t va, size_t len);
	/* Wake threads waiting on faults in [va, va+len). */
	int (*wake)(uintptr_t va, size_t len);
	/*
	 * The application unmapped [va, va+len) itself: take the address
	 * range back, inaccessible.  EEXIST: something else is there now.
	 */
	int (*reclaim)(uintptr_t va, size_t len);
	/*
	 * Drop the pages of an open range, keeping it open (they refault as
	 * zeros).  Raises a REMOVE event: only with no lock held and never
	 * from a fault thread.
	 */
	int (*dontneed)(uintptr_t va, size_t len);
	/*
	 * Stop trapping a range that left the runtime (mremap moved it out
	 * of a space): it becomes ordinary kernel memory.
	 */
	int (*disown)(uintptr_t va, size_t len);
	/* Make the next access to a page raise SIGBUS (data lost). */
	int (*poison)(uintptr_t va, size_t len);
	/*
	 * Copy the bytes mapped at [va, va+len) to buf, without faulting:
	 * ENOENT where no page is mapped (the application dropped it).
	 */
	int (*peek)(uintptr_t va, void *buf, size_t len);

	/*
	 * Frames: the runtime's own staging area, where pages taken away
	 * from the application wait (inactive, or being written to swap)
	 * and where pages read from swap land before they are installed.
	 * The runtime reads and writes frames freely (I/O goes to and from
	 * them); the application never sees them.  See frame.h.
	 */
	/* Reserve len bytes of frames, empty.  *vap. */
	int (*frames_reserve)(size_t len, uintptr_t *vap);
	void (*frames_release)(uintptr_t va, size_t len);
	/* Frames reserved before: usable again (a fork child's copy). */
	int (*frames_adopt)(uintptr_t va, size_t len);
	/*
	 * Move the pages at [va, va+len) into the empty frames at frame,
	 * with no copy; the application's range is left empty (its next
	 * access faults).  *done as for zero.  ENOENT: no page at va +
	 * *done (discarded by the application); EBUSY: a page the kernel
	 * will not move (shared with another process, or pinned); EINVAL:
	 * the range is not writable.
	 */
	int (*stage_out)(uintptr_t va, uintptr_t frame, size_t len,
	    size_t *done);
	/*
	 * Move the pages of frames back in at [va, va+len), writable, with
	 * no copy (copied, where the kernel will not move pages in: a
	 * private view of an object, a read-only entry).  Does not wake.
	 * The frames are left empty.  Errors as copy.
	 */
	int (*stage_in)(uintptr_t va, uintptr_t frame, size_t len,
	    size_t *done);
	/*
	 * stage_out for a range the kernel will not move pages out of
	 * (stage_out said EINVAL): write-protect the pages, copy them into
	 * the frames, and drop them from the application's range, which
	 * raises a REMOVE event the runtime recognises as its own and
	 * ignores.  At most 64 pages.  *done and ENOENT as for stage_out.  The pages must be
	 * busy (a write meanwhile faults and waits); only with no lock held
	 * that a fault thread needs, and never from a fault thread (it may
	 * be the only reader of the event).
	 */
	int (*stage_copy)(uintptr_t va, uintptr_t frame, size_t len,
	    size_t *done);
	/* Empty frames (their memory goes back to the kernel). */
	int (*frames_free)(uintptr_t frame, size_t len);
};

#define PMAP_WP		0x1	/* copy: install write-protected */
#define PMAP_PRIVATE	0x2	/* enter_object: a copy-on-write view */

/* The implementation in use (set by usrvm_init or by a test). */
extern const struct pmap_ops *pmap;

extern const struct pmap_ops pmap_uffd_ops;

/*
 * The runtime's userfaultfd (uffd.c).  uffd_open performs the API
 * handshake with the features the runtime needs; on failure it says what
 * to change on the machine.  Negative errno.
 */
int uffd_open(void);
void uffd_close(void);
/* Can this kernel move pages (UFFDIO_MOVE), which paging needs? */
bool uffd_can_page(void);
/*
 * Did stage_copy raise the REMOVE event for [start, end)?  Asked by the
 * fault thread that read it (trap.c).  true: *appmask has a bit per page
 * of the range (at most 64) that the application dropped too, at the
 * same moment; the rest is the runtime's to ignore.
 */
bool uffd_own_remove(uintptr_t start, uintptr_t end, uint64_t *appmask);
extern int uffd_fd;
/* In a fork(2) child: new contexts, nothing registered.  Negative errno. */
int uffd_fork_child(void);
/*
 * The calling fault thread's wakes wait until uffd_wakes_release: for a
 * thread whose fault it serves under that thread's lock across fork(2),
 * which may fork as soon as it is woken (trap.c).
 */
void uffd_wakes_hold(void);
void uffd_wakes_release(void);

#endif /* USRVM_PMAP_H */
