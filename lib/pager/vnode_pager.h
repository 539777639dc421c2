/*
 * vnode_pager.h: the vnode pager, files mapped through the runtime
 * (UVM's uvm_vnode.c).
 *
 * One object per file, found by (device, inode): every mapping of a file,
 * in any space, shares its object and so its pages (object.h, PART 2).
 * Pages are read in by the fault that needs them, with read-ahead that
 * grows on sequential faults and collapses on random ones
 * (vnode_pager.c), and ahead of a stream by the read-ahead threads
 * (vnode_ra.c), and written back by the flusher (vnode_flush.c): when
 * they have been dirty for USRVM_DIRTY_AGE, when the page daemon wants
 * them clean, on usrvm_sync, when the last mapping goes, and at
 * shutdown.  An object no mapping references stays cached until the page
 * daemon has taken its pages or too many such objects hold descriptors
 * open; it is found again by the next mapping of its file, unless the
 * file changed meanwhile (size or modification time).
 *
 * I/O goes through io_uring, with O_DIRECT where the file system has it
 * (the kernel's own page cache would hold a second copy of every page,
 * outside the budget), and never past the file's size as it was when the
 * object was made.
 */
#ifndef USRVM_VNODE_PAGER_H
#define USRVM_VNODE_PAGER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "object.h"

/*
 * A reader going through an object in order (vo_lock): the fault at its
 * next page grows its window.  An object follows a few at once, so that
 * neither a second stream nor random faults between a stream's faults
 * break it.
 */
#define UVN_STREAMS	4
struct uvn_stream {
	uint64_t s_next;		/* where the reader is next */
	uint64_t s_ahead;		/* read ahead of it up to here */
	uint64_t s_used;		/* u_stream_tick when last followed */
	unsigned s_ra;			/* its read window, pages */
};

struct uvm_vnode {
	struct vm_object u_obj;		/* first */
	dev_t u_dev;
	ino_t u_ino;
	uint64_t u_fsize;		/* file size when made: constant */
	struct timespec u_mtime;	/* modification time then */
	int u_fd;			/* whole pages (O_DIRECT if it can) */
	int u_tailfd;			/* the last, partial page (buffered) */
	bool u_writable;		/* opened for writing: constant */
	/* vo_lock */
	struct uvn_stream u_streams[UVN_STREAMS];
	uint64_t u_stream_tick;		/* their clock */
	int u_error;			/* a write-back failed: usrvm_sync */
	/* uvn_lock (vnode_pager.c) */
	struct uvm_vnode *u_next;	/* every object */
	uint64_t u_unused_ns;		/* when its last reference went */
	bool u_flushing;		/* the flusher has it */
	uint64_t u_round;		/* the flusher's round that had it */
	_Atomic bool u_flush;		/* the flusher should clean it (any
					   lock, or none) */
};

int uvn_sys_init(void);
/* Write every dirty page back and free every object (usrvm_shutdown). */
void uvn_sys_fini(void);
/* In a fork(2) child, views handed to the kernel: the objects forgotten. */
void uvn_fork_child(void);
/* Write every dirty page back, and wait (process exit, fork(2)). */
void uvn_flush_all(void);

/*
 * Read-ahead (vnode_ra.c): threads that read the windows a sequential
 * stream will want next.  uvn_ra_queue asks for the window at off (the
 * caller holds a reference on uvn, and no object lock); uvn_ra_read, on
 * a read-ahead thread, reads the window's missing pages as a fault
 * would, and leaves them unbusy on the inactive queue.  With the budget
 * full it waits for the page daemon a few times (it holds nothing
 * meanwhile), then gives up: the stream's faults read what it did not.
 */
int uvn_ra_start(void);
void uvn_ra_stop(void);
/* In a fork(2) child (the threads stopped before the fork): new locks. */
void uvn_ra_fork_child(void);
void uvn_ra_queue(struct uvm_vnode *uvn, uint64_t off);
void uvn_ra_read(struct uvm_vnode *uvn, uint64_t off);

/*
 * uvn_attach: the object of the file open on fd, referenced, for a
 * mapping of [off, off + len) with protection prot, shared or private.
 * => 0; EBADF (fd not open), ENODEV (not a regular file), EACCES (fd
 *    not opened for the access prot needs), EINVAL (a shared writable
 *    mapping past the end of the file), ENOMEM or another errno.
 * *writablep: whether the mapping may ever write the file (fd open for
 * writing, the mapping inside the file): the caller lowers the maximum
 * protection of a shared mapping if not, as UVM does.
 */
int uvn_attach(int fd, uint64_t off, size_t len, int prot, bool shared,
    struct vm_object **objp, bool *writablep);

/*
 * The flusher (vnode_flush.c).
 *
 * uvn_flush: write the dirty pages of [start, end) of obj back.  wait:
 * also wait for pages already being written there, and fdatasync.  The
 * caller holds a reference.  => 0 or EIO (some page could not be
 * written: it stays dirty; the error is reported once).
 */
int uvn_flush(struct uvm_vnode *uvn, uint64_t start, uint64_t end,
    bool wait);
/* Ask the flusher to clean uvn soon (never sleeps; any lock may be held). */
void uvn_flush_async(struct uvm_vnode *uvn);
/* The flusher's round (flusher.c): objects asked for, or dirty for age_ns. */
void uvn_flush_round(uint64_t age_ns, uint64_t round);

/* vnode_pager.c, for the flusher: every object, in turn (uvn_lock). */
struct uvm_vnode *uvn_next_to_flush(uint64_t age_ns, uint64_t round);
void uvn_flush_done(struct uvm_vnode *uvn);

#endif /* USRVM_VNODE_PAGER_H */
