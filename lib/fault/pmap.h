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
 * 0 or a positive errno.  None of them may be called with a lock held
 * that a fault thread needs in order to read userfaultfd messages (none of
 * them raise userfaultfd events, so the map lock is fine).
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
	 * enter.  ENOTSUP: the kernel cannot trap shared memory.
	 */
	int (*enter_object)(uintptr_t va, size_t len, int prot, int fd,
	    uint64_t off);
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
	 * Frames: the runtime's own staging area, where pages taken away
	 * from the application wait (inactive, or being written to swap)
	 * and where pages read from swap land before they are installed.
	 * The runtime reads and writes frames freely (I/O goes to and from
	 * them); the application never sees them.  See frame.h.
	 */
	/* Reserve len bytes of frames, empty.  *vap. */
	int (*frames_reserve)(size_t len, uintptr_t *vap);
	void (*frames_release)(uintptr_t va, size_t len);
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
	 * no copy.  Does not wake.  The frames are left empty.  Errors as
	 * copy.
	 */
	int (*stage_in)(uintptr_t va, uintptr_t frame, size_t len,
	    size_t *done);
	/* Empty frames (their memory goes back to the kernel). */
	int (*frames_free)(uintptr_t frame, size_t len);
};

#define PMAP_WP		0x1	/* copy: install write-protected */

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
extern int uffd_fd;

#endif /* USRVM_PMAP_H */
