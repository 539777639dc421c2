/*
 * usrvm.h: the public interface of usrvm, a userland UVM-style virtual
 * memory system for Linux.
 *
 * A vmspace ("space") is a range of address space reserved with
 * mmap(PROT_NONE).  usrvm_map() opens ranges inside it as UVM map entries;
 * every page fault in them is trapped with userfaultfd and resolved by the
 * runtime's fault threads (zero fill, anon, object, copy-on-write).
 *
 * Conventions (liburing's): functions returning int return 0 on success and
 * a negative errno value on failure, and never rely on the global errno.
 * The two functions that return pointers (usrvm_map, usrvm_space_create)
 * return NULL and set errno.
 */
#ifndef USRVM_H
#define USRVM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ----------------------------------------------------------------------
 * Runtime
 * ---------------------------------------------------------------------- */

struct usrvm_config {
	unsigned fault_threads;	/* fault threads; 0: one per online core */
	size_t default_reserve;	/* bytes reserved by the default space */
	unsigned verbose;	/* 0: errors only, 1: notices, 2: debug */
	/*
	 * The memory budget: the most managed pages resident at once, in
	 * bytes (rounded down to pages).  0: no budget, no paging.  With a
	 * budget, the page daemon evicts to the swap device, and usrvm_map
	 * refuses (ENOMEM) what would commit more than budget + swap.
	 */
	size_t mem_limit;
	/*
	 * The swap device: a file (created if missing, mode 0600) or a
	 * directory (an unlinked file is made there).  NULL: an unlinked
	 * file in $TMPDIR, else /tmp.  Only used with a budget.
	 */
	const char *swap_path;
	size_t swap_size;	/* bytes of swap; 0: 8 x mem_limit */
	/*
	 * The longest a page of a mapped file stays dirty before the
	 * flusher writes it back, in milliseconds; 0: 30 s.
	 */
	unsigned dirty_age_ms;
	/*
	 * A file to record the faults that bring anonymous pages in or back
	 * (lib/trace.h), written when the runtime stops or, preloaded, at
	 * exit: for replaying the page daemon's policy (tests/traces).
	 * NULL: none.
	 */
	const char *trace_path;
};

/*
 * Fill *cfg with the defaults, then apply the USRVM_* environment
 * variables (USRVM_FAULT_THREADS, USRVM_RESERVE, USRVM_VERBOSE,
 * USRVM_MEM, USRVM_SWAP, USRVM_SWAP_SIZE, USRVM_TRACE, USRVM_DIRTY_AGE:
 * seconds, or milliseconds with an "ms" suffix).
 * A malformed variable makes it fail with -EINVAL after printing one line
 * naming the variable and the accepted form.
 */
int usrvm_config_load(struct usrvm_config *cfg);

/*
 * Parse a size: decimal digits, then optionally a binary unit K, M, G or T
 * (case-insensitive), then optionally "B" ("iB" after a unit): "4096",
 * "64K", "256M", "1G", "2T", "2TiB", "64KB".  No sign, no white space.
 * Returns 0 with the byte count in *out, or -EINVAL (*out untouched) if s
 * is NULL or malformed or the size does not fit in a size_t.
 */
int usrvm_parse_size(const char *s, size_t *out);

/*
 * Start the runtime.  cfg == NULL: usrvm_config_load().  Fails with
 * -EINVAL (bad configuration), -EPERM (userfaultfd not permitted: the
 * message says which setting would allow it), -EBUSY (already running),
 * -ENOSYS (kernel lacks a required feature) or -ENOMEM.
 */
int usrvm_init(const struct usrvm_config *cfg);

/* Stop the fault threads and destroy every space.  Safe to call twice. */
void usrvm_shutdown(void);

/* ----------------------------------------------------------------------
 * Spaces
 * ---------------------------------------------------------------------- */

struct usrvm_space;

/* Reserve a new space of at least `reserve` bytes (rounded up). */
struct usrvm_space *usrvm_space_create(size_t reserve);
/* Unmap everything in the space and release its reservation. */
int usrvm_space_destroy(struct usrvm_space *space);
/* The space created by usrvm_init (config default_reserve bytes). */
struct usrvm_space *usrvm_default_space(void);
/* First address of the space's reserved range, and its size. */
void *usrvm_space_base(struct usrvm_space *space);
size_t usrvm_space_size(struct usrvm_space *space);

/* ----------------------------------------------------------------------
 * Mappings
 * ---------------------------------------------------------------------- */

#define USRVM_PROT_NONE		0x0
#define USRVM_PROT_READ		0x1
#define USRVM_PROT_WRITE	0x2
#define USRVM_PROT_ALL		(USRVM_PROT_READ | USRVM_PROT_WRITE)
/*
 * Maximum protection, as FreeBSD's PROT_MAX(): or it into `prot` of
 * usrvm_map() or usrvm_protect() to set the entry's ceiling.  Without it,
 * usrvm_map() sets the maximum to READ|WRITE and usrvm_protect() keeps it.
 * A maximum can be lowered, never raised.  (It carries a presence bit so
 * that USRVM_PROT_MAX(USRVM_PROT_NONE) is not 0.)
 */
#define USRVM_PROT_MAX_SET	0x1000000
#define USRVM_PROT_MAX(p)	(USRVM_PROT_MAX_SET | ((p) << 16))

#define USRVM_MAP_PRIVATE	0x01	/* copy-on-write */
#define USRVM_MAP_SHARED	0x02	/* writes reach the object */
#define USRVM_MAP_ANON		0x04	/* zero-fill memory, fd must be -1 */
#define USRVM_MAP_FIXED		0x08	/* exactly at hint; fails if in use */

/*
 * Map len bytes into space.  hint: NULL (the runtime chooses), a preferred
 * address, or with USRVM_MAP_FIXED the exact address.  Returns the address,
 * or NULL with errno: EINVAL (bad flags, alignment, zero length, range
 * outside the space), ENOMEM (no room), EEXIST (FIXED over a mapping),
 * EACCES (prot beyond the maximum), ENOTSUP (a kernel that cannot trap
 * shared memory, which files and shared anonymous memory need).
 *
 * Shared anonymous memory: USRVM_MAP_SHARED|USRVM_MAP_ANON.  Zero-fill
 * memory that every mapping of it shows at once: the entries usrvm_fork
 * gives children (SHARE is its default inheritance), and the parts of
 * the mapping itself.  It pages to swap under the budget like private
 * memory and commits its size the same way (ENOMEM when budget + swap
 * cannot hold it); it lives until its last mapping goes.  A fork(2) child
 * gets a private copy of it.  See docs/DESIGN.md, "Shared anonymous
 * memory".
 *
 * A file: USRVM_MAP_SHARED with fd open for reading (and writing, for
 * PROT_WRITE) and off page aligned.  Its pages are read and written back
 * by the runtime (io_uring), under the same budget as anonymous memory,
 * and every shared mapping of the file, in any space, shows the same
 * pages: a write through one is in the others at once.  fd may be closed
 * after the call.  Past the end of the file, the rest of the last page
 * reads zeros and later pages give SIGBUS (as mmap).  Dirty pages go back
 * to the file within USRVM_DIRTY_AGE, on usrvm_sync, when the last
 * mapping goes, and at usrvm_shutdown or exit.  Errors: EBADF (fd not
 * open), ENODEV (not a regular file), EACCES (fd not open for the access
 * prot needs), EINVAL (a shared writable mapping past the end of the
 * file).  A mapping whose fd is not open for writing, or that reaches
 * past the end of the file, can never be made writable (its maximum
 * protection loses PROT_WRITE).
 *
 * A private file mapping: USRVM_MAP_PRIVATE with fd open for reading.
 * Copy-on-write over the file's pages: until a page is written, the
 * mapping shows the file's page (the one every mapping of the file
 * shares, so a write through a shared mapping shows here too, as with
 * mmap); the first write gives the mapping its own copy, which pages to
 * swap like private memory and never reaches the file.  A mapping that
 * may be written commits its size, as private memory does (ENOMEM).
 * usrvm_sync skips it; usrvm_advise DONTNEED gives the file's pages back.
 * See docs/DESIGN.md, "Mapped files".
 */
void *usrvm_map(struct usrvm_space *space, void *hint, size_t len, int prot,
		int flags, int fd, off_t off);

#define USRVM_SYNC_ASYNC	0x1	/* start the write-back, return */
#define USRVM_SYNC_SYNC		0x2	/* return once it is on the device */

/*
 * Write back the dirty file pages of [addr, addr+len) (msync): with
 * USRVM_SYNC_SYNC, wait until they are written and the file's data
 * synced (fdatasync).  Anonymous memory in the range is skipped.
 * Returns 0, -EINVAL (flags: exactly one of the two; addr not page
 * aligned), -ENOMEM (part of the range is not mapped) or -EIO (a page
 * could not be written, now or by an earlier write-back since the last
 * call: it is still dirty, and will be tried again).
 */
int usrvm_sync(void *addr, size_t len, int flags);

/* Remove [addr, addr+len): the pages are freed, the range reads as hole. */
int usrvm_unmap(struct usrvm_space *space, void *addr, size_t len);

/* Change protection (EACCES if beyond the maximum, ENOMEM on a hole). */
int usrvm_protect(struct usrvm_space *space, void *addr, size_t len, int prot);

#define USRVM_ADV_NORMAL	0	/* fault-around 3 back, 4 forward */
#define USRVM_ADV_RANDOM	1	/* no fault-around */
#define USRVM_ADV_SEQUENTIAL	2	/* large forward fault-around */
#define USRVM_ADV_WILLNEED	3	/* action: make resident now */
#define USRVM_ADV_DONTNEED	4	/* action: free pages (refault zero) */
#define USRVM_ADV_FREE		5	/* action: contents may be discarded */

int usrvm_advise(struct usrvm_space *space, void *addr, size_t len, int advice);

#define USRVM_INH_SHARE		0
#define USRVM_INH_COPY		1	/* default */
#define USRVM_INH_NONE		2
#define USRVM_INH_ZERO		3

int usrvm_inherit(struct usrvm_space *space, void *addr, size_t len, int inh);

/*
 * usrvm_fork: a new space, at another address range, whose contents equal
 * space's at the moment of the call, entry by entry per inheritance
 * (usrvm_inherit): COPY (the default) is copy-on-write, NONE leaves a
 * hole, ZERO gives fresh zero-fill memory, SHARE (the default of a
 * shared mapping: a file, or shared anonymous memory) maps the same
 * pages in the child.  COPY of a shared mapping gives the child a
 * private mapping of the same object: its pages are the object's until
 * the child writes them (so it sees the parent's later writes to pages it
 * has not written, as a private file mapping does).  SHARE of private
 * memory makes it shared anonymous memory first, in the space too (the
 * same bytes; this costs a copy of its resident pages, once).  Every
 * entry keeps its offset from the space's base: base(child) + (addr -
 * base(space)).  No page is
 * copied: the cost is O(entries); afterwards the first write to a page on
 * either side copies that page (UVM's amap/anon copy-on-write, so the
 * cost of a fault does not grow with generations of forks).  Both spaces
 * page under the one budget; a page shared by several is swapped once.
 * Discard shared memory with usrvm_advise/usrvm_unmap, not with the
 * system's madvise/munmap: usrvm moves what another space still needs
 * away first.  Destroy the child with usrvm_space_destroy.
 * => the child, or NULL with errno: EINVAL (not a space; called from a
 *    fault handler), ENOTSUP (a private file mapping with SHARE: set it
 *    to COPY, NONE or ZERO; or no memory budget: the copy-on-write
 *    stages pages in the page daemon's frames), ENOMEM (commit: the
 *    child's private memory counts against budget + swap), EIO (a swap
 *    read for a page of private memory to share failed), EAGAIN (the
 *    application kept changing its mappings meanwhile).
 */
struct usrvm_space *usrvm_fork(struct usrvm_space *space);

/*
 * Page loaning (UVM's uvm_loan): lend the pages of [addr, addr+len) of
 * private memory, read-only and with no copy, to an I/O consumer, e.g.
 * an io_uring write of them to a file or socket.  Each page moves (the
 * physical page itself) out of the application's address into the
 * runtime's own memory, where the consumer reads it; nothing changes it
 * until usrvm_unloan.  The application goes on using the range: its next
 * access to a lent page copies it first (a fault), so the consumer still
 * reads the bytes of the moment of the loan.  Pages never written are
 * lent as a shared page of zeros.  A page lent stays resident until the
 * loan ends; a copy made meanwhile is one more page of the budget.
 * => 0 and *loanp; -EINVAL (arguments; called from a fault handler),
 *    -ENOMEM (part of the range unmapped, more than half the budget
 *    lent at once, or no memory), -EACCES (the
 *    range is not readable), -ENOTSUP (a shared mapping in the range, or
 *    no memory budget: pages are lent from the page daemon's frames),
 *    -EBUSY (a page is lent already), -EIO (a page's contents were lost
 *    to a swap read error), -EAGAIN (the range kept changing).
 */
struct usrvm_loan;
int usrvm_loan(struct usrvm_space *space, void *addr, size_t len,
	       struct usrvm_loan **loanp);
/* The lent bytes: *niov iovecs, one per page, valid until usrvm_unloan. */
const struct iovec *usrvm_loan_iov(const struct usrvm_loan *loan,
				   size_t *niov);
/* End the loan (the consumer is done with the iovecs).  0 or -EINVAL. */
int usrvm_unloan(struct usrvm_loan *loan);

/* ----------------------------------------------------------------------
 * Statistics
 * ---------------------------------------------------------------------- */

#define USRVM_LAT_BUCKETS	32	/* bucket i: [2^i, 2^(i+1)) ns */

struct usrvm_stats {
	/* faults, by how they were resolved */
	uint64_t faults;		/* fault messages served */
	uint64_t faults_zero;		/* zero fill (no anon, no object) */
	uint64_t faults_upper;		/* from an existing anon */
	uint64_t faults_lower;		/* from an object page */
	uint64_t faults_cow;		/* copy-on-write promotions */
	uint64_t faults_cow_move;	/* a shared page moved to the reader */
	uint64_t faults_wp;		/* write-protect faults */
	uint64_t faults_dup;		/* duplicates of a fault being served, and
					   stale ones (protection since lowered) */
	uint64_t faults_error;		/* faults answered with SIGBUS/SIGSEGV */
	uint64_t pages_zero_mapped;	/* shared zero page installs */
	uint64_t pages_filled;		/* pages installed with data */
	/* memory */
	uint64_t resident;		/* managed pages resident now */
	uint64_t resident_peak;
	uint64_t pages_dup;		/* besides them: write-protected copies
					   the kernel would not move away */
	uint64_t anons;			/* anons alive */
	uint64_t aobjs;			/* shared anonymous objects alive */
	uint64_t pages_loaned;		/* pages lent now (usrvm_loan) */
	uint64_t loan_copies;		/* ... copied by a fault during a loan */
	uint64_t map_entries;		/* map entries alive, all spaces */
	uint64_t spaces;
	uint64_t forks;			/* usrvm_fork calls that succeeded */
	uint64_t amap_copies;		/* amaps copied on a first write */
	/* the budget and paging (all 0 without a budget) */
	uint64_t mem_limit;		/* the budget, pages */
	uint64_t committed;		/* pages committed by mappings */
	uint64_t commit_limit;		/* budget + swap, pages */
	uint64_t pages_active;		/* mapped, on the active queue */
	uint64_t pages_inactive;	/* taken away, on the inactive queue */
	uint64_t pageins;		/* pages read from swap */
	uint64_t pageouts;		/* pages written to swap */
	uint64_t swap_slots;		/* slots on the device */
	uint64_t swap_slots_used;
	uint64_t swap_slots_bad;	/* failed a write: never reused */
	uint64_t swap_reads;		/* read requests (one or more pages) */
	uint64_t swap_writes;		/* write requests (clusters) */
	uint64_t swap_write_max;	/* largest cluster, pages */
	uint64_t pd_scans;		/* page daemon passes */
	uint64_t pd_deactivations;	/* pages taken away */
	uint64_t pd_reactivations;	/* ... and used again */
	uint64_t evict_clean;		/* dropped: swap copy current */
	uint64_t evict_zero;		/* dropped: all zeros */
	uint64_t evict_dirty;		/* written to swap, then dropped */
	uint64_t pageout_kept;		/* faulted on while being written: the
					   fault waited, the page stayed */
	uint64_t pd_unmovable;		/* pages the kernel would not move */
	uint64_t pd_swapfull;		/* page-outs refused: device full */
	uint64_t pd_grace;		/* pages allowed over the budget */
	uint64_t evict_file;		/* clean file pages dropped */
	uint64_t stalls;		/* faults parked for memory */
	uint64_t stall_ns;		/* time they waited, in total */
	uint64_t io_errors_read;
	uint64_t io_errors_write;
	uint64_t pages_lost;		/* contents lost to a read error */
	/* mapped files (the vnode pager) */
	uint64_t objects;		/* file objects alive (some cached) */
	uint64_t object_hits;		/* mappings that found their object */
	uint64_t object_misses;		/* ... that made it */
	uint64_t file_pageins;		/* pages read from files */
	uint64_t file_reads;		/* read requests (read-ahead included) */
	uint64_t file_read_max;		/* largest read, pages */
	uint64_t file_ra_pages;		/* read ahead of a stream, pages */
	uint64_t file_pageouts;		/* pages written back */
	uint64_t file_writes;		/* write-back requests */
	uint64_t file_write_ns;		/* time in write-back requests */
	uint64_t file_errors_read;
	uint64_t file_errors_write;
	/* events from the application's own madvise/munmap/mremap */
	uint64_t events_remove;
	uint64_t events_unmap;
	uint64_t events_remap;
	/* fault service time: from reading the message to waking the thread */
	uint64_t fault_lat_ns[USRVM_LAT_BUCKETS];
	uint64_t fault_lat_p50_ns;
	uint64_t fault_lat_p99_ns;
	uint64_t fault_lat_max_ns;
};

int usrvm_stats(struct usrvm_stats *st);

/* ----------------------------------------------------------------------
 * Fault injection (tests and stress harnesses)
 * ---------------------------------------------------------------------- */

#define USRVM_INJECT_SWAP_READ	1	/* a swap read fails */
#define USRVM_INJECT_SWAP_WRITE	2	/* a swap write fails */
#define USRVM_INJECT_SWAP_FULL	3	/* the swap device has no free slot */
#define USRVM_INJECT_FILE_READ	4	/* a read of a mapped file fails */
#define USRVM_INJECT_FILE_WRITE	5	/* a write-back to a mapped file fails */

/*
 * Make the next `count` operations of kind `what` fail with `error`
 * (EIO, say; for SWAP_FULL the error is not reported anywhere, the
 * device just looks full).  count 0 stops injecting.  What the runtime
 * does then: a failed write marks its slots bad and the pages are
 * written elsewhere later (nothing is lost); a failed read loses that
 * page: the thread that faulted on it gets SIGBUS, and so does every
 * later access to it; a full device leaves pages resident.  A failed
 * file read gives the faulting thread SIGBUS and caches nothing (the
 * next access reads again); a failed write-back leaves the pages dirty,
 * to be written again, and usrvm_sync reports EIO.
 * => 0 or -EINVAL.
 */
int usrvm_inject(int what, int error, unsigned count);

/* Print a human-readable summary of usrvm_stats() to fd. */
int usrvm_stats_print(int fd);

#ifdef __cplusplus
}
#endif

#endif /* USRVM_H */
