/*
 * swap.c: the swap device (see swap.h).
 *
 * Slot allocation: a bitmap with a rotor (next fit), so consecutive
 * clusters land next to each other on the device and a sequential stream
 * of page-outs becomes a sequential stream of writes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "kmem.h"
#include "pager/inject.h"
#include "pager/pgio.h"
#include "pager/swap.h"
#include "usrvm_internal.h"

#define SWAP_DEF_FACTOR	8	/* default size: 8 x the budget */

static pthread_mutex_t swap_lock = PTHREAD_MUTEX_INITIALIZER;
static int swap_dev = -1;
static uint64_t *swap_map;		/* 1: in use (or bad, or slot 0) */
static size_t swap_words;
static size_t swap_total;		/* slots in the file, slot 0 included */
static size_t swap_inuse;		/* allocated, bad excluded */
static size_t swap_nbad;
static size_t swap_rotor;
/* Where the device is (USRVM_SWAP: a directory or a file; "" default),
 * for a fork child's own (swap_fork_open). */
static char swap_where[PATH_MAX];
static int swap_newdev = -1;		/* a fork child's, being filled */

/*
 * swap_open: the file.  A directory gets an unlinked file; a path names
 * a file, created if missing.  O_DIRECT where the file system has it.
 */
static int
swap_open(const char *path)
{
	struct stat st;
	int fd, flags = O_RDWR | O_CLOEXEC;

	if (path == NULL) {
		path = getenv("TMPDIR");
		if (path == NULL || path[0] == '\0')
			path = "/tmp";
	}
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		fd = open(path, flags | O_TMPFILE | O_DIRECT, 0600);
		if (fd < 0 && errno == EINVAL)	/* no O_DIRECT here */
			fd = open(path, flags | O_TMPFILE, 0600);
	} else {
		fd = open(path, flags | O_CREAT | O_DIRECT, 0600);
		if (fd < 0 && errno == EINVAL)
			fd = open(path, flags | O_CREAT, 0600);
	}
	if (fd < 0) {
		int error = errno;
		usrvm_log(USRVM_LOG_ERR, "swap device '%s': %s (set USRVM_SWAP "
		    "to a writable file or directory)", path, strerror(error));
		return -error;
	}
	if (!(fcntl(fd, F_GETFL) & O_DIRECT))
		usrvm_log(USRVM_LOG_NOTICE, "swap device '%s' has no O_DIRECT: "
		    "paging goes through the kernel's page cache", path);
	return fd;
}

/*
 * swap_size_set: make the file `bytes` long with its blocks reserved
 * (fallocate), so that its file system filling up later fails no
 * page-out: commit accounting promises what swap can hold, and a sparse
 * file would fail writes with ENOSPC mid-run.  On tmpfs, reserving would
 * take the memory now: the file stays sparse there, as it does on a file
 * system without fallocate.  A device keeps its size.
 * => 0 or an errno (ENOSPC, EDQUOT: no room for it; what was allocated
 *    before it ran out is given back, and the file has its old size).
 */
static int
swap_size_set(int fd, size_t bytes)
{
	struct statfs sfs;
	struct stat st;
	int error;

	if (fstat(fd, &st) != 0)
		return errno;
	if (!S_ISREG(st.st_mode))
		return 0;
	if (fstatfs(fd, &sfs) == 0 && sfs.f_type == TMPFS_MAGIC) {
		usrvm_log(USRVM_LOG_NOTICE, "swap device on tmpfs: the pages "
		    "it holds are memory");
	} else if (fallocate(fd, 0, 0, (off_t)bytes) == 0) {
		return 0;
	} else if (errno != EOPNOTSUPP && errno != ENOSYS) {
		error = errno;
		/* ext4 keeps the blocks it found before running out. */
		(void)fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		    0, (off_t)bytes);
		(void)ftruncate(fd, st.st_size);
		return error;
	}
	if ((size_t)st.st_size < bytes && ftruncate(fd, (off_t)bytes) != 0)
		return errno;
	return 0;
}

int
swap_init(const struct usrvm_config *cfg, size_t budget)
{
	size_t bytes = cfg->swap_size;
	int fd, error;

	if (bytes == 0)
		bytes = ptoa(budget) * SWAP_DEF_FACTOR;
	bytes &= ~(PAGE_SIZE - 1);
	if (bytes < 2 * PAGE_SIZE) {
		usrvm_log(USRVM_LOG_ERR, "swap_size=%zu: too small for one "
		    "page", cfg->swap_size);
		return EINVAL;
	}
	if ((fd = swap_open(cfg->swap_path)) < 0)
		return -fd;
	snprintf(swap_where, sizeof(swap_where), "%s",
	    cfg->swap_path != NULL ? cfg->swap_path : "");
	if ((error = swap_size_set(fd, bytes)) != 0) {
		usrvm_log(USRVM_LOG_ERR, "swap device: cannot make it %zu "
		    "bytes: %s (USRVM_SWAP_SIZE)", bytes, strerror(error));
		close(fd);
		return error;
	}
	swap_total = atop(bytes);
	swap_words = (swap_total + 63) / 64;
	swap_map = kmem_zalloc(swap_words * sizeof(*swap_map));
	if (swap_map == NULL) {
		close(fd);
		return ENOMEM;
	}
	/* Slot 0 and the bits past the end are never free. */
	swap_map[0] = 1;
	for (size_t s = swap_total; s < swap_words * 64; s++)
		swap_map[s / 64] |= 1ull << (s % 64);
	swap_dev = fd;
	swap_inuse = swap_nbad = 0;
	swap_rotor = 1;
	return 0;
}

void
swap_fini(void)
{
	if (swap_dev < 0)
		return;
	close(swap_dev);
	kmem_free(swap_map, swap_words * sizeof(*swap_map));
	swap_map = NULL;
	swap_dev = -1;
}

int
swap_fd(void)
{
	return swap_dev;
}

size_t
swap_nslots(void)
{
	return swap_total > 0 ? swap_total - 1 : 0;
}

size_t
swap_used(void)
{
	size_t n;

	pthread_mutex_lock(&swap_lock);
	n = swap_inuse;
	pthread_mutex_unlock(&swap_lock);
	return n;
}

size_t
swap_bad(void)
{
	size_t n;

	pthread_mutex_lock(&swap_lock);
	n = swap_nbad;
	pthread_mutex_unlock(&swap_lock);
	return n;
}

static bool
slot_isset(size_t s)
{
	return swap_map[s / 64] & (1ull << (s % 64));
}

/*
 * swap_find: the first free slot at or after `from`, or SIZE_MAX.
 * => swap_lock held.
 */
static size_t
swap_find(size_t from)
{
	for (size_t w = from / 64; w < swap_words; w++) {
		uint64_t free = ~swap_map[w];
		if (w == from / 64)
			free &= ~0ull << (from % 64);
		if (free != 0)
			return w * 64 + (size_t)__builtin_ctzll(free);
	}
	return SIZE_MAX;
}

unsigned
swap_alloc(unsigned n, uint32_t *first)
{
	size_t s, len = 0;

	if (inject_take(USRVM_INJECT_SWAP_FULL) != 0)
		return 0;
	pthread_mutex_lock(&swap_lock);
	if ((s = swap_find(swap_rotor)) == SIZE_MAX)
		s = swap_find(1);
	if (s != SIZE_MAX) {
		while (len < n && s + len < swap_total && !slot_isset(s + len)) {
			swap_map[(s + len) / 64] |= 1ull << ((s + len) % 64);
			len++;
		}
		swap_inuse += len;
		swap_rotor = s + len;
		*first = (uint32_t)s;
	}
	pthread_mutex_unlock(&swap_lock);
	return (unsigned)len;
}

void
swap_free(uint32_t first, unsigned n)
{
	pthread_mutex_lock(&swap_lock);
	for (size_t s = first; s < (size_t)first + n; s++) {
		KASSERT(s > 0 && s < swap_total && slot_isset(s));
		swap_map[s / 64] &= ~(1ull << (s % 64));
	}
	KASSERT(swap_inuse >= n);
	swap_inuse -= n;
	pthread_mutex_unlock(&swap_lock);
}

void
swap_markbad(uint32_t first, unsigned n)
{
	pthread_mutex_lock(&swap_lock);
	for (size_t s = first; s < (size_t)first + n; s++)
		KASSERT(s > 0 && s < swap_total && slot_isset(s));
	swap_inuse -= n;
	swap_nbad += n;
	pthread_mutex_unlock(&swap_lock);
}

/* ------------------------------------------------------------------ */
/* fork(2) child                                                       */
/* ------------------------------------------------------------------ */

/*
 * A fork child pages to a device of its own: a new unlinked file the
 * size of the parent's, next to it (in its directory, when USRVM_SWAP
 * names a file), holding a copy of the slots the child still refers to,
 * at the same offsets, so that no anon's slot number changes.  The parent
 * waits until the copy is made (fork.c), and then frees and reuses its
 * slots as it likes.
 */
int
swap_fork_open(void)
{
	char dir[PATH_MAX];
	const char *where = NULL;
	struct stat st;
	int fd, error;

	FORK_REINIT_MUTEX(&swap_lock);
	if (swap_dev < 0)
		return 0;
	if (swap_where[0] != '\0') {
		snprintf(dir, sizeof(dir), "%s", swap_where);
		where = stat(dir, &st) == 0 && S_ISDIR(st.st_mode) ? dir :
		    dirname(dir);
	}
	if ((fd = swap_open(where)) < 0)
		return -fd;
	/* Sparse: reserving a whole device for every child, most of which
	 * exec at once, would take 8x the budget of disk each. */
	if (ftruncate(fd, (off_t)ptoa(swap_total)) != 0) {
		error = errno;
		close(fd);
		return error;
	}
	swap_newdev = fd;
	return 0;
}

void
swap_fork_abort(void)
{
	if (swap_newdev >= 0)
		close(swap_newdev);
	swap_newdev = -1;
}

/*
 * In a child the parent did not wait for: the parent may reuse any slot
 * at any moment, and none is read (pages only there read as zeros).
 */
void
swap_fork_lose(void)
{
	if (swap_dev >= 0)
		close(swap_dev);
	swap_dev = -1;
}

/* Every slot free again (slot 0 and the bits past the end excepted),
 * until swap_fork_keep marks those the child refers to. */
void
swap_fork_clear(void)
{
	if (swap_dev < 0)
		return;
	memset(swap_map, 0, swap_words * sizeof(*swap_map));
	swap_map[0] = 1;
	for (size_t s = swap_total; s < swap_words * 64; s++)
		swap_map[s / 64] |= 1ull << (s % 64);
	swap_inuse = swap_nbad = 0;
	swap_rotor = 1;
}

void
swap_fork_keep(uint32_t slot)
{
	KASSERT(slot > 0 && slot < swap_total);
	if (!slot_isset(slot)) {
		swap_map[slot / 64] |= 1ull << (slot % 64);
		swap_inuse++;
	}
}

/*
 * swap_fork_switch: copy the kept slots, in runs, to the new device,
 * which becomes the device.  => 0, or an errno, and then the old device
 * stays (the kept slots still read from it).
 */
int
swap_fork_switch(void)
{
	struct pgio_copy *c;
	int error = 0;

	if (swap_dev < 0)
		return 0;
	if ((c = pgio_copy_start(swap_dev, swap_newdev, &error)) == NULL)
		return error;
	for (size_t s = 1, e; s < swap_total && error == 0; s = e) {
		for (; s < swap_total && !slot_isset(s); s++)
			continue;
		for (e = s; e < swap_total && slot_isset(e); e++)
			continue;
		if (e > s)
			error = pgio_copy_add(c, ptoa(s), ptoa(e - s));
	}
	if ((error = pgio_copy_finish(c, error)) != 0)
		return error;
	close(swap_dev);
	swap_dev = swap_newdev;
	swap_newdev = -1;
	return 0;
}
