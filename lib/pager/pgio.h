/*
 * pgio.h: paging I/O through io_uring: every page-in and page-out.
 *
 * Reads are synchronous for the fault thread that needs the page: it
 * submits on its own small ring and waits for that completion while the
 * other fault threads go on serving faults (the map stays read-locked,
 * so nothing the fault looked at can change).  Writes are asynchronous,
 * on the page daemon's ring: it keeps several clusters in flight.
 *
 * The swap file is registered with each ring (a fixed file: no file
 * table lookup per request).  Frames are not registered buffers: a
 * pinned page cannot be moved with UFFDIO_MOVE, and frames are moved in
 * and out all the time.
 *
 * Fault injection (usrvm_inject): an injected error replaces the result
 * of a request that really ran, so the caller's error path is exactly
 * the one a failing device would take.
 */
#ifndef USRVM_PGIO_H
#define USRVM_PGIO_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#define PGIO_MAXRUN	64	/* pages per request */

/*
 * pgio_swapv: read slots [slot, slot + n) into iov[] (one page each), or
 * write them from it, on the calling thread's ring (page-ins; the aobj's
 * page-outs).  => 0 or an errno (EIO for a short transfer).
 */
int pgio_swapv(bool write, uint32_t slot, const struct iovec *iov,
    unsigned n);
/*
 * pgio_file: write a file at off from buf[0..len), on the calling
 * thread's ring (the vnode pager's write-back).  => bytes written or
 * -errno.
 */
ssize_t pgio_file(int fd, const void *buf, size_t len, uint64_t off);

#define PGIO_FILE_MAXREAD 256	/* pages: the largest file read */
/*
 * pgio_file_read: read n pages of a file at off into the calling
 * thread's bounce buffer (*bufp, registered with its ring, valid until
 * the thread's next read), from which the vnode pager copies them into
 * its page cache: filling that cache by a copy costs a third of letting
 * the device write into it through a mapping, whose every page would
 * fault.  => bytes read (short at end of file) or -errno.
 */
ssize_t pgio_file_read(int fd, uint64_t off, unsigned n, char **bufp);
/* fdatasync(fd) through the ring.  => 0 or an errno. */
int pgio_datasync(int fd);
/* Free the calling thread's ring (a fault thread that stops). */
void pgio_thread_exit(void);
/* In a fork(2) child: every thread's ring (shared with the parent) goes. */
void pgio_fork_child(void);

/*
 * Copying between two files (a fork child's swap device, swap.c): start,
 * add runs (byte offsets and lengths, page multiples: each is read from
 * one file and written at the same offset of the other), finish (waits
 * for all; frees c).  => NULL (*errorp), or 0 or the first error.
 */
struct pgio_copy;
struct pgio_copy *pgio_copy_start(int from, int to, int *errorp);
int pgio_copy_add(struct pgio_copy *c, uint64_t off, size_t len);
int pgio_copy_finish(struct pgio_copy *c, int error);

/* A write request: wr_n pages from wr_iov[] to slots from wr_slot. */
struct pgio_wreq {
	uint32_t wr_slot;
	unsigned wr_n;
	int wr_error;			/* result: 0 or an errno */
	struct iovec wr_iov[PGIO_MAXRUN];
};

/* The writer's ring (the page daemon's). */
int pgio_ring_init(struct io_uring *ring, unsigned depth);
/* Submit a write.  => 0 or an errno (the ring is full: EBUSY). */
int pgio_write(struct io_uring *ring, struct pgio_wreq *wr);
/*
 * pgio_reap: one completed write, wr_error set.  wait: block until there
 * is one.  => NULL if none.
 */
struct pgio_wreq *pgio_reap(struct io_uring *ring, bool wait);

#endif /* USRVM_PGIO_H */
