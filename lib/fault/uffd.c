/*
 * uffd.c: the pmap on Linux: mmap, mprotect and userfaultfd.
 *
 * Where a page's bytes live (ARCHITECTURE.md): an exclusive private
 * anonymous page lives at its own address, in the kernel's private
 * anonymous page.  The fault threads install it with UFFDIO_COPY (data)
 * or UFFDIO_ZEROPAGE (the shared zero page, write-protected so the first
 * write comes back to us as a write-protect fault).
 *
 * Events: the runtime's own operations never raise a userfaultfd event
 * (an event blocks the thread that caused it until a fault thread reads
 * it, which is a deadlock if that thread holds a lock a fault thread
 * needs).  So pmap_uffd_remove unregisters a range before it replaces the
 * mapping.  Two exceptions: pmap_uffd_dontneed, called only by
 * application threads holding no lock, whose REMOVE event is handled like
 * the application's own madvise; and pmap_uffd_stage_copy, whose REMOVE
 * event the fault threads recognise and ignore.  Events (trap.c) come
 * from the application's madvise, munmap and mremap, and from those.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "pmap.h"
#include "trap.h"
#include "uffd_compat.h"
#include "usrvm_internal.h"

int uffd_fd = -1;
/*
 * The frames' context: a second userfaultfd, with no events, that only
 * the frames are registered with (write-protect mode, so their missing
 * pages are the kernel's ordinary zero fill).  UFFDIO_MOVE needs its
 * destination registered with the context it is issued on; with the
 * frames on a context of their own, moving a page out of the
 * application needs nothing of the main context, and emptying frames
 * (MADV_DONTNEED) raises no event.
 */
static int uffd_frames_fd = -1;
/* /proc/self/mem, where stage_copy reads pages it cannot move. */
static int uffd_mem_fd = -1;
const struct pmap_ops *pmap = &pmap_uffd_ops;

/* What the runtime cannot work without. */
#define UFFD_REQUIRED	(UFFD_FEATURE_PAGEFAULT_FLAG_WP |		\
			 UFFD_FEATURE_THREAD_ID |			\
			 UFFD_FEATURE_EVENT_REMOVE |			\
			 UFFD_FEATURE_EVENT_UNMAP |			\
			 UFFD_FEATURE_EVENT_REMAP)
/* What it uses when the kernel has it. */
#define UFFD_WANTED	(UFFD_FEATURE_POISON | UFFD_FEATURE_MOVE |	\
			 UFFD_FEATURE_MINOR_SHMEM |			\
			 UFFD_FEATURE_WP_HUGETLBFS_SHMEM)
/* What mapping objects (memfd views) needs. */
#define UFFD_OBJECTS	(UFFD_FEATURE_MINOR_SHMEM | UFFD_FEATURE_WP_HUGETLBFS_SHMEM)
static uint64_t uffd_features;

static int
uffd_create(void)
{
	int fd;

	fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd >= 0)
		return fd;
	if (errno != EPERM && errno != EACCES)
		return -errno;
	/* The device node is the other way in (5.11+). */
	int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev < 0)
		return -EPERM;
	fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
	close(dev);
	return fd >= 0 ? fd : -EPERM;
}

/*
 * uffd_open: create the runtime's userfaultfd and negotiate features.
 * => 0, -EPERM (with a message saying what would allow it), -ENOSYS
 *    (kernel without userfaultfd or a required feature), or -errno.
 */
int
uffd_open(void)
{
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	int fd, error;

	/* Ask what the kernel supports: UFFDIO_API works once per fd. */
	if ((fd = uffd_create()) < 0)
		goto fail;
	if (ioctl(fd, UFFDIO_API, &api) != 0) {
		error = errno;
		close(fd);
		usrvm_log(USRVM_LOG_ERR, "UFFDIO_API failed: %s",
		    strerror(error));
		return -ENOSYS;
	}
	close(fd);
	if ((api.features & UFFD_REQUIRED) != UFFD_REQUIRED) {
		usrvm_log(USRVM_LOG_ERR, "this kernel's userfaultfd lacks "
		    "features usrvm needs (have 0x%llx, need 0x%llx)",
		    (unsigned long long)api.features,
		    (unsigned long long)UFFD_REQUIRED);
		return -ENOSYS;
	}

	if ((fd = uffd_create()) < 0)
		goto fail;
	api.api = UFFD_API;
	api.features = UFFD_REQUIRED | (api.features & UFFD_WANTED);
	if (ioctl(fd, UFFDIO_API, &api) != 0) {
		error = errno;
		close(fd);
		usrvm_log(USRVM_LOG_ERR, "UFFDIO_API failed: %s",
		    strerror(error));
		return -ENOSYS;
	}
	uffd_fd = fd;
	uffd_features = api.features;
	if (api.features & UFFD_FEATURE_MOVE) {
		struct uffdio_api fapi = { .api = UFFD_API,
		    .features = UFFD_FEATURE_MOVE };
		if ((fd = uffd_create()) >= 0 &&
		    ioctl(fd, UFFDIO_API, &fapi) != 0) {
			close(fd);
			fd = -1;
		}
		uffd_frames_fd = fd;
	}
	uffd_mem_fd = open("/proc/self/mem", O_RDONLY | O_CLOEXEC);
	return 0;

fail:
	if (fd == -ENOSYS) {
		usrvm_log(USRVM_LOG_ERR, "this kernel has no userfaultfd");
		return -ENOSYS;
	}
	if (fd == -EPERM) {
		usrvm_log(USRVM_LOG_ERR, "userfaultfd is not permitted for "
		    "this process; any one of these allows it: "
		    "sysctl vm.unprivileged_userfaultfd=1, "
		    "read/write access to /dev/userfaultfd, "
		    "or the CAP_SYS_PTRACE capability");
		return -EPERM;
	}
	usrvm_log(USRVM_LOG_ERR, "cannot create a userfaultfd: %s",
	    strerror(-fd));
	return fd;
}

void
uffd_close(void)
{
	if (uffd_fd >= 0)
		close(uffd_fd);
	if (uffd_frames_fd >= 0)
		close(uffd_frames_fd);
	if (uffd_mem_fd >= 0)
		close(uffd_mem_fd);
	uffd_fd = uffd_frames_fd = uffd_mem_fd = -1;
}

bool
uffd_can_page(void)
{
	return uffd_frames_fd >= 0;
}

static int
prot_to_linux(int prot)
{
	return ((prot & USRVM_PROT_READ) ? PROT_READ : 0) |
	    ((prot & USRVM_PROT_WRITE) ? PROT_WRITE : 0);
}

/* ------------------------------------------------------------------ */
/* address space                                                       */
/* ------------------------------------------------------------------ */

static int
pmap_uffd_reserve(size_t len, size_t align, uintptr_t *vap)
{
	size_t slop = align > PAGE_SIZE ? align : 0;
	uintptr_t va, start;
	void *p;

	if (len + slop < len)
		return ENOMEM;
	p = mmap(NULL, len + slop, PROT_NONE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return ENOMEM;
	va = (uintptr_t)p;
	start = slop ? (va + align - 1) & ~(align - 1) : va;
	if (start > va)
		munmap(p, start - va);
	if (start + len < va + len + slop)
		munmap((void *)(start + len), va + len + slop - start - len);
	/* Managed memory is paged in 4 KiB pages: no transparent huge pages. */
	madvise((void *)start, len, MADV_NOHUGEPAGE);
	*vap = start;
	return 0;
}

static void
pmap_uffd_release(uintptr_t va, size_t len)
{
	munmap((void *)va, len);
}

/* ------------------------------------------------------------------ */
/* entries                                                             */
/* ------------------------------------------------------------------ */

static int
pmap_uffd_enter(uintptr_t va, size_t len, int prot)
{
	struct uffdio_register reg = {
		.range = { .start = va, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP,
	};

	if (ioctl(uffd_fd, UFFDIO_REGISTER, &reg) != 0)
		return errno;
	if (mprotect((void *)va, len, prot_to_linux(prot)) != 0) {
		int error = errno;
		struct uffdio_range r = { .start = va, .len = len };
		(void)ioctl(uffd_fd, UFFDIO_UNREGISTER, &r);
		return error;
	}
	return 0;
}

/*
 * pmap_uffd_enter_object: a view of an object's memfd, MAP_SHARED so
 * that every view and the object's window share its pages, trapping
 * missing pages (not in the object), minor faults (in the object, not
 * yet mapped here: every page table entry is installed by the runtime,
 * write-protected unless it is being written) and write-protect faults.
 */
static int
pmap_uffd_enter_object(uintptr_t va, size_t len, int prot, int fd,
    uint64_t off, int flags)
{
	struct uffdio_register reg = {
		.range = { .start = va, .len = len },
		.mode = UFFDIO_REGISTER_MODE_MISSING |
		    UFFDIO_REGISTER_MODE_MINOR | UFFDIO_REGISTER_MODE_WP,
	};
	void *p;
	int error;

	if ((uffd_features & UFFD_OBJECTS) != UFFD_OBJECTS)
		return ENOTSUP;
	p = mmap((void *)va, len, prot_to_linux(prot), MAP_FIXED |
	    ((flags & PMAP_PRIVATE) ? MAP_PRIVATE : MAP_SHARED), fd, (off_t)off);
	if (p == MAP_FAILED)
		return errno;
	if (ioctl(uffd_fd, UFFDIO_REGISTER, &reg) == 0)
		return 0;
	error = errno;
	(void)mmap((void *)va, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
	    MAP_NORESERVE | MAP_FIXED, -1, 0);
	return error;
}

/*
 * pmap_uffd_remove: close a range.
 * 1. PROT_NONE first, so a thread woken in step 2 faults with SIGSEGV
 *    instead of silently getting a kernel zero page;
 * 2. unregister (wakes waiting faulters; from now on no events);
 * 3. a fresh PROT_NONE mapping over the range discards every page, and
 *    raises no event because the range is no longer registered.
 */
static int
pmap_uffd_remove(uintptr_t va, size_t len)
{
	struct uffdio_range r = { .start = va, .len = len };
	void *p;

	if (mprotect((void *)va, len, PROT_NONE) != 0)
		return errno;
	if (ioctl(uffd_fd, UFFDIO_UNREGISTER, &r) != 0)
		return errno;
	p = mmap((void *)va, len, PROT_NONE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
	if (p == MAP_FAILED)
		return errno;
	madvise(p, len, MADV_NOHUGEPAGE);
	return 0;
}

static int
pmap_uffd_reclaim(uintptr_t va, size_t len)
{
	void *p = mmap((void *)va, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
	    MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);

	if (p == MAP_FAILED)
		return errno;
	if ((uintptr_t)p != va) {	/* a kernel without FIXED_NOREPLACE */
		munmap(p, len);
		return EEXIST;
	}
	madvise(p, len, MADV_NOHUGEPAGE);
	return 0;
}

static int
pmap_uffd_dontneed(uintptr_t va, size_t len)
{
	return madvise((void *)va, len, MADV_DONTNEED) == 0 ? 0 : errno;
}

static int
pmap_uffd_disown(uintptr_t va, size_t len)
{
	struct uffdio_range r = { .start = va, .len = len };

	return ioctl(uffd_fd, UFFDIO_UNREGISTER, &r) == 0 ? 0 : errno;
}

static int
pmap_uffd_protect(uintptr_t va, size_t len, int prot)
{
	return mprotect((void *)va, len, prot_to_linux(prot)) == 0 ? 0 : errno;
}

/* ------------------------------------------------------------------ */
/* installing pages                                                    */
/* ------------------------------------------------------------------ */

/*
 * The resolving ioctls report progress in their own field: a positive
 * byte count, or -errno.  EAGAIN with progress means "stopped part way"
 * (the rest can be retried); EEXIST means a page is already present.
 */
static int
uffd_progress(int64_t field, size_t *done)
{
	if (field > 0) {
		*done = (size_t)field;
		return EAGAIN;
	}
	*done = 0;
	return field < 0 ? (int)-field : EAGAIN;
}

/*
 * Deferred write protection.
 *
 * Installing a zero page and protecting it are two ioctls, and the second
 * fails with EAGAIN while an application event is queued and unread (the
 * kernel's mmap_changing).  The fault thread cannot wait for it there: it
 * holds the map, and the thread that reads the event may need that map to
 * apply it.  So the range is remembered and protected by pmap_uffd_update
 * once the thread has let go of its locks and read the userfaultfd.
 * Meanwhile a write to one of those zero pages is copied by the kernel
 * without a fault; protecting the page later makes its next write come
 * here, and promotion keeps its contents.  Nothing is lost; such a page
 * is only counted resident from that next write on.
 */
#define UFFD_DEFER_MAX	64

static __thread struct uffd_deferred {
	uintptr_t ud_va;
	size_t ud_len;
} uffd_deferred[UFFD_DEFER_MAX];
static __thread unsigned uffd_ndeferred;

static void
uffd_defer_protect(uintptr_t va, size_t len, int error)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = va, .len = len },
		.mode = UFFDIO_WRITEPROTECT_MODE_WP,
	};

	if (error != EAGAIN)
		usrvm_panic("UFFDIO_WRITEPROTECT of zero pages: %s",
		    strerror(error));
	if (uffd_ndeferred < UFFD_DEFER_MAX) {
		uffd_deferred[uffd_ndeferred].ud_va = va;
		uffd_deferred[uffd_ndeferred].ud_len = len;
		uffd_ndeferred++;
		return;
	}
	/* Full (64 windows deferred and not yet applied): rare; try
	 * harder rather than forget. */
	for (int i = 0; i < 1000; i++) {
		if (ioctl(uffd_fd, UFFDIO_WRITEPROTECT, &wp) == 0)
			return;
		sched_yield();
	}
	usrvm_log(USRVM_LOG_ERR, "zero pages at %#lx left unprotected: their "
	    "writes will not be counted resident", (unsigned long)va);
}

static unsigned
pmap_uffd_update(void)
{
	unsigned kept = 0;

	for (unsigned i = 0; i < uffd_ndeferred; i++) {
		struct uffd_deferred *d = &uffd_deferred[i];
		struct uffdio_writeprotect wp = {
			.range = { .start = d->ud_va, .len = d->ud_len },
			.mode = UFFDIO_WRITEPROTECT_MODE_WP,
		};
		/* EAGAIN: still pending.  Any other error: the range went
		 * away (unmapped), nothing left to protect. */
		if (ioctl(uffd_fd, UFFDIO_WRITEPROTECT, &wp) != 0 &&
		    errno == EAGAIN)
			uffd_deferred[kept++] = *d;
	}
	uffd_ndeferred = kept;
	return kept;
}

/*
 * The kernel's VMAs need not match the runtime's entries: one entry can
 * be two VMAs (the kernel does not merge a VMA into one whose pages came
 * from elsewhere, as moved pages do), and an install that spans two VMAs
 * fails with ENOENT before doing anything.  uffd_span retries such an
 * install in halves, so that it goes across the boundary; a genuine
 * ENOENT (nothing registered there) comes back from a single page.
 */
typedef int (*uffd_fill_fn)(uintptr_t va, const void *src, size_t len,
    int flags, size_t *done);

static int
uffd_span(uffd_fill_fn fn, uintptr_t va, const void *src, size_t len,
    int flags, size_t *done)
{
	size_t half, d;
	int error;

	error = fn(va, src, len, flags, done);
	if (error != ENOENT || *done != 0 || len == PAGE_SIZE)
		return error;
	half = (len / 2) & ~PAGE_MASK;
	if (half == 0)
		half = PAGE_SIZE;
	error = uffd_span(fn, va, src, half, flags, done);
	if (error != 0 || *done != half)
		return error;
	error = uffd_span(fn, va + half, src == NULL ? NULL :
	    (const char *)src + half, len - half, flags, &d);
	*done += d;
	return error;
}

static int
uffd_zero_once(uintptr_t va, const void *src, size_t len, int flags,
    size_t *done)
{
	struct uffdio_zeropage zp = {
		.range = { .start = va, .len = len },
		.mode = UFFDIO_ZEROPAGE_MODE_DONTWAKE,
	};
	/* Protecting never wakes (and the kernel refuses DONTWAKE with it). */
	struct uffdio_writeprotect wp = { .mode = UFFDIO_WRITEPROTECT_MODE_WP };
	int error = 0;

	(void)src, (void)flags;
	*done = len;
	if (ioctl(uffd_fd, UFFDIO_ZEROPAGE, &zp) != 0)
		error = uffd_progress(zp.zeropage, done);
	if (*done == 0)
		return error;
	wp.range.start = va;
	wp.range.len = *done;
	if (ioctl(uffd_fd, UFFDIO_WRITEPROTECT, &wp) != 0)
		uffd_defer_protect(va, *done, errno);
	return error;
}

static int
pmap_uffd_zero(uintptr_t va, size_t len, size_t *done)
{
	return uffd_span(uffd_zero_once, va, NULL, len, 0, done);
}

static int
uffd_copy_once(uintptr_t va, const void *src, size_t len, int flags,
    size_t *done)
{
	struct uffdio_copy cp = {
		.dst = va,
		.src = (uintptr_t)src,
		.len = len,
		.mode = UFFDIO_COPY_MODE_DONTWAKE |
		    ((flags & PMAP_WP) ? UFFDIO_COPY_MODE_WP : 0),
	};

	*done = len;
	if (ioctl(uffd_fd, UFFDIO_COPY, &cp) == 0)
		return 0;
	return uffd_progress(cp.copy, done);
}

static int
pmap_uffd_copy(uintptr_t va, const void *src, size_t len, int flags,
    size_t *done)
{
	return uffd_span(uffd_copy_once, va, src, len, flags, done);
}

static int
uffd_continue_once(uintptr_t va, const void *src, size_t len, int flags,
    size_t *done)
{
	struct uffdio_continue co = {
		.range = { .start = va, .len = len },
		.mode = UFFDIO_CONTINUE_MODE_DONTWAKE |
		    ((flags & PMAP_WP) ? UFFDIO_CONTINUE_MODE_WP : 0),
	};

	(void)src;
	*done = len;
	if (ioctl(uffd_fd, UFFDIO_CONTINUE, &co) == 0)
		return 0;
	return uffd_progress(co.mapped, done);
}

static int
pmap_uffd_map_object(uintptr_t va, size_t len, int flags, size_t *done)
{
	return uffd_span(uffd_continue_once, va, NULL, len, flags, done);
}

static int
pmap_uffd_unprotect(uintptr_t va, size_t len)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = va, .len = len },
		.mode = UFFDIO_WRITEPROTECT_MODE_DONTWAKE,
	};

	return ioctl(uffd_fd, UFFDIO_WRITEPROTECT, &wp) == 0 ? 0 : errno;
}

static int
pmap_uffd_wprotect(uintptr_t va, size_t len)
{
	struct uffdio_writeprotect wp = {
		.range = { .start = va, .len = len },
		.mode = UFFDIO_WRITEPROTECT_MODE_WP,
	};
	struct timespec pause = { .tv_nsec = 20000 };

	/* The kernel refuses while an application event is unread; the
	 * fault threads read it in a moment. */
	for (int tries = 0; ioctl(uffd_fd, UFFDIO_WRITEPROTECT, &wp) != 0;
	    tries++) {
		if (errno != EAGAIN || tries == 50000)
			return errno;
		nanosleep(&pause, NULL);
	}
	return 0;
}

/*
 * Wakes held back by a fault thread until it has let go of everything
 * (uffd_wakes_hold): the thread it wakes may fork(2) at once.
 */
#define UFFD_HELD_MAX	8
static __thread bool uffd_holding;
static __thread unsigned uffd_nheld;
static __thread struct uffdio_range uffd_held[UFFD_HELD_MAX];

static int
pmap_uffd_wake(uintptr_t va, size_t len)
{
	struct uffdio_range r = { .start = va, .len = len };

	if (uffd_holding && uffd_nheld < UFFD_HELD_MAX) {
		uffd_held[uffd_nheld++] = r;
		return 0;
	}
	if (uffd_holding) {
		/* Full: the last range grows to cover this one too (a wake
		 * of a page no thread waits on costs nothing). */
		struct uffdio_range *h = &uffd_held[UFFD_HELD_MAX - 1];
		uint64_t end = MAX(h->start + h->len, r.start + r.len);
		h->start = MIN(h->start, r.start);
		h->len = end - h->start;
		return 0;
	}
	return ioctl(uffd_fd, UFFDIO_WAKE, &r) == 0 ? 0 : errno;
}

void
uffd_wakes_hold(void)
{
	uffd_holding = true;
}

void
uffd_wakes_release(void)
{
	uffd_holding = false;
	for (unsigned i = 0; i < uffd_nheld; i++)
		(void)ioctl(uffd_fd, UFFDIO_WAKE, &uffd_held[i]);
	uffd_nheld = 0;
}

static int
pmap_uffd_poison(uintptr_t va, size_t len)
{
	struct uffdio_poison po = {
		.range = { .start = va, .len = len },
		.mode = 0,
	};

	return ioctl(uffd_fd, UFFDIO_POISON, &po) == 0 ? 0 : errno;
}

static int
pmap_uffd_peek(uintptr_t va, void *buf, size_t len)
{
	if (uffd_mem_fd < 0)
		return ENOTSUP;
	return pread(uffd_mem_fd, buf, len, (off_t)va) == (ssize_t)len ? 0 :
	    ENOENT;
}

/* ------------------------------------------------------------------ */
/* frames                                                              */
/* ------------------------------------------------------------------ */

static int
pmap_uffd_frames_adopt(uintptr_t va, size_t len)
{
	struct uffdio_register reg = {
		.range = { .start = va, .len = len },
		.mode = UFFDIO_REGISTER_MODE_WP,
	};

	return ioctl(uffd_frames_fd, UFFDIO_REGISTER, &reg) == 0 ? 0 : errno;
}

static int
pmap_uffd_frames_reserve(size_t len, uintptr_t *vap)
{
	void *p;
	int error;

	p = mmap(NULL, len, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED)
		return ENOMEM;
	madvise(p, len, MADV_NOHUGEPAGE);
	if ((error = pmap_uffd_frames_adopt((uintptr_t)p, len)) != 0) {
		munmap(p, len);
		return error;
	}
	*vap = (uintptr_t)p;
	return 0;
}

static void
pmap_uffd_frames_release(uintptr_t va, size_t len)
{
	munmap((void *)va, len);
}

static int
uffd_move(int fd, uintptr_t dst, uintptr_t src, size_t len, size_t *done)
{
	struct uffdio_move mv = {
		.dst = dst,
		.src = src,
		.len = len,
		.mode = UFFDIO_MOVE_MODE_DONTWAKE,
	};

	*done = len;
	if (ioctl(fd, UFFDIO_MOVE, &mv) == 0)
		return 0;
	return uffd_progress(mv.move, done);
}

static int
pmap_uffd_stage_out(uintptr_t va, uintptr_t frame, size_t len, size_t *done)
{
	return uffd_move(uffd_frames_fd, frame, va, len, done);
}

static int
pmap_uffd_frames_free(uintptr_t frame, size_t len)
{
	return madvise((void *)frame, len, MADV_DONTNEED) == 0 ? 0 : errno;
}

static int
pmap_uffd_stage_in(uintptr_t va, uintptr_t frame, size_t len, size_t *done)
{
	int error = uffd_move(uffd_fd, va, frame, len, done);

	if (error != EINVAL || *done != 0)
		return error;
	/* Not an anonymous writable range (a private view of an object, a
	 * read-only entry): the kernel moves nothing in, so copy. */
	error = pmap_uffd_copy(va, (const void *)frame, len, 0, done);
	if (*done > 0)
		(void)pmap_uffd_frames_free(frame, *done);
	return error;
}

/*
 * Ranges stage_copy is dropping pages of: the REMOVE events that raises
 * are the runtime's own.  One at a time per calling thread (the page
 * daemon, and whoever else pages out), so a few slots do.  The
 * application may drop pages of such a range itself at the same moment
 * (its own madvise), and its event is told from the runtime's by count:
 * the runtime's events cover the range once, so a page an event covers a
 * second time is the application's (whichever of the two came first).
 */
#define UFFD_OWN_MAX	8
#define UFFD_OWN_PAGES	64		/* pages a range at most: seen's bits */

static pthread_mutex_t uffd_own_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t uffd_own_cv = PTHREAD_COND_INITIALIZER;
static struct {
	uintptr_t start, end;		/* end 0: free */
	uint64_t seen;			/* pages an event covered */
} uffd_own[UFFD_OWN_MAX];		/* uffd_own_lock */

bool
uffd_own_remove(uintptr_t start, uintptr_t end, uint64_t *appmask)
{
	bool own = false;

	pthread_mutex_lock(&uffd_own_lock);
	for (unsigned i = 0; i < UFFD_OWN_MAX && !own; i++) {
		uint64_t ev;
		if (!(start >= uffd_own[i].start && end <= uffd_own[i].end))
			continue;
		own = true;
		ev = (end - start == ptoa(UFFD_OWN_PAGES) ? ~0ull :
		    (1ull << atop(end - start)) - 1) <<
		    atop(start - uffd_own[i].start);
		*appmask = (ev & uffd_own[i].seen) >>
		    atop(start - uffd_own[i].start);
		uffd_own[i].seen |= ev;
	}
	pthread_mutex_unlock(&uffd_own_lock);
	return own;
}

static unsigned
uffd_own_add(uintptr_t start, uintptr_t end)
{
	unsigned i;

	pthread_mutex_lock(&uffd_own_lock);
	for (;;) {
		for (i = 0; i < UFFD_OWN_MAX && uffd_own[i].end != 0; i++)
			continue;
		if (i < UFFD_OWN_MAX)
			break;
		pthread_cond_wait(&uffd_own_cv, &uffd_own_lock);
	}
	uffd_own[i].start = start;
	uffd_own[i].end = end;
	uffd_own[i].seen = 0;
	pthread_mutex_unlock(&uffd_own_lock);
	return i;
}

/* Page k of slot i raises no event of the runtime's. */
static void
uffd_own_seen(unsigned i, size_t k)
{
	pthread_mutex_lock(&uffd_own_lock);
	uffd_own[i].seen |= 1ull << k;
	pthread_mutex_unlock(&uffd_own_lock);
}

static void
uffd_own_done(unsigned i)
{
	pthread_mutex_lock(&uffd_own_lock);
	uffd_own[i].start = uffd_own[i].end = 0;
	pthread_cond_signal(&uffd_own_cv);
	pthread_mutex_unlock(&uffd_own_lock);
}

/*
 * uffd_fork_child: in a fork child (fork.c), the inherited descriptors
 * are the parent's (its userfaultfd contexts, its /proc/self/mem): new
 * ones, with nothing registered yet.  => 0 or a negative errno, and then
 * no context.
 */
int
uffd_fork_child(void)
{
	FORK_REINIT_MUTEX(&uffd_own_lock);
	FORK_REINIT_COND(&uffd_own_cv);
	memset(uffd_own, 0, sizeof(uffd_own));
	uffd_close();
	return uffd_open();
}

/*
 * pmap_uffd_stage_copy: the kernel will not move these pages out, so:
 *   1. write-protect them: a write from now on faults, and waits for the
 *      busy page;
 *   2. copy them into the frames through /proc/self/mem, which reads what
 *      is mapped and fails at a page that is not (the application
 *      dropped it) instead of faulting into the runtime;
 *   3. drop them with MADV_DONTNEED.  Its REMOVE event blocks this
 *      thread until a fault thread has read it; that thread finds the
 *      range in uffd_own and ignores the event, and trap_sync waits until
 *      it has, before the range leaves uffd_own.
 * An event the application raised over the same range meanwhile is
 * ignored too: its anons stay, holding what they held, as if its
 * madvise had come just before this page-out.
 */
static int
pmap_uffd_stage_copy(uintptr_t va, uintptr_t frame, size_t len,
    size_t *done)
{
	ssize_t r;
	size_t n;
	unsigned own;
	int error;

	*done = 0;
	if (uffd_mem_fd < 0)
		return ENOTSUP;
	if ((error = pmap_uffd_wprotect(va, len)) != 0)
		return error;
	r = pread(uffd_mem_fd, (void *)frame, len, (off_t)va);
	if ((n = trunc_page(r > 0 ? (size_t)r : 0)) == 0)
		return ENOENT;
	KASSERT(atop(n) <= UFFD_OWN_PAGES);
	own = uffd_own_add(va, va + n);
	/* A page at a time: a range split while the kernel waits for its
	 * event to be read gets the event again for the rest, which would
	 * pass for the application's (uffd_own_remove); a page is never
	 * split.  Failing (the application unmapped the page meanwhile), a
	 * page still counts as copied out (its frame holds it), and what
	 * stays mapped is a write-protected duplicate, as anon_stage_copy
	 * leaves one; an event for it can only be the application's. */
	for (size_t off = 0; off < n; off += PAGE_SIZE) {
		if (madvise((void *)(va + off), PAGE_SIZE,
		    MADV_DONTNEED) == 0)
			continue;
		usrvm_log(USRVM_LOG_NOTICE, "dropping %#lx after copying "
		    "it out: %s", (unsigned long)(va + off), strerror(errno));
		uffd_own_seen(own, atop(off));
	}
	trap_sync();
	uffd_own_done(own);
	*done = n;
	return n < len ? ENOENT : 0;
}

const struct pmap_ops pmap_uffd_ops = {
	.name = "userfaultfd",
	.reserve = pmap_uffd_reserve,
	.release = pmap_uffd_release,
	.enter = pmap_uffd_enter,
	.enter_object = pmap_uffd_enter_object,
	.remove = pmap_uffd_remove,
	.protect = pmap_uffd_protect,
	.reclaim = pmap_uffd_reclaim,
	.dontneed = pmap_uffd_dontneed,
	.disown = pmap_uffd_disown,
	.zero = pmap_uffd_zero,
	.update = pmap_uffd_update,
	.copy = pmap_uffd_copy,
	.map_object = pmap_uffd_map_object,
	.unprotect = pmap_uffd_unprotect,
	.wprotect = pmap_uffd_wprotect,
	.wake = pmap_uffd_wake,
	.poison = pmap_uffd_poison,
	.peek = pmap_uffd_peek,
	.frames_reserve = pmap_uffd_frames_reserve,
	.frames_adopt = pmap_uffd_frames_adopt,
	.frames_release = pmap_uffd_frames_release,
	.stage_out = pmap_uffd_stage_out,
	.stage_in = pmap_uffd_stage_in,
	.stage_copy = pmap_uffd_stage_copy,
	.frames_free = pmap_uffd_frames_free,
};
