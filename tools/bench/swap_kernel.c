/*
 * swap_kernel.c: the kernel contender's setting for the swap case.
 *
 * The kernel pages out only under pressure: its contender's child runs
 * in a memory cgroup (v1) whose limit is the budget, with a swap file of
 * SK_SWAP_FACTOR times the working set, both made here before the runs
 * (sandbox.c removes them on every way out, signals included).
 * Twice, not just enough: once swap is more than half full
 * (vm_swap_full()) the kernel frees a page's swap slot when it swaps the
 * page in, so every later eviction writes the page again.  With the
 * working set plus 256 MiB (1.25 GiB for 1 GiB against 256 MiB: 60%
 * used), the kernel wrote 754,000 pages per run instead of 262,000 and
 * its sequential re-read fell from 38,000-50,000 to 12,500 pages/s.
 * Twice the set is also the swap usrvm has by default at the default
 * sizes (8 x the budget).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/swap.h>
#include <unistd.h>

#include "bench.h"
#include "sandbox.h"
#include "swap.h"

#define SK_SWAP_FACTOR	2	/* swap file: times the working set */

static char sk_swapfile[PATH_MAX];	/* the swap file made; "" none */

/*
 * sk_make_swap: make the swap file (a unique name in --swap-dir, all its
 * blocks allocated, as swapon requires), write the swap header mkswap
 * would (version 1, no bad pages, no label), and swapon it.
 * => 0, or -1 with why[] set.
 */
static int
sk_make_swap(const struct sw_opts *o, char *why, size_t len)
{
	const size_t ps = bench_pagesize, size = o->size * SK_SWAP_FACTOR;
	uint32_t *info;
	char *hdr;
	int fd, error;

	if ((fd = sb_file_make(o->swap_dir, "usrvm-bench-swap", true, 0,
	    sk_swapfile, sizeof(sk_swapfile))) < 0) {
		snprintf(why, len, "cannot make a swap file in %s: %s",
		    o->swap_dir, strerror(errno));
		return -1;
	}
	if ((error = posix_fallocate(fd, 0, (off_t)size)) != 0) {
		snprintf(why, len, "cannot allocate %zu MiB for %s: %s",
		    size >> 20, sk_swapfile, strerror(error));
		close(fd);
		return -1;
	}
	if ((hdr = calloc(1, ps)) == NULL) {
		snprintf(why, len, "no memory for a swap header");
		close(fd);
		return -1;
	}
	/* struct swap_header_v1_2 (linux/swap.h): words after 1 KiB. */
	info = (uint32_t *)(hdr + 1024);
	info[0] = 1;				/* version */
	info[1] = (uint32_t)(size / ps - 1);	/* last_page */
	memcpy(hdr + ps - 10, "SWAPSPACE2", 10);
	error = pwrite(fd, hdr, ps, 0) == (ssize_t)ps && fsync(fd) == 0 ? 0 :
	    errno != 0 ? errno : EIO;
	free(hdr);
	close(fd);
	if (error != 0) {
		snprintf(why, len, "cannot write the header of %s: %s",
		    sk_swapfile, strerror(error));
		return -1;
	}
	if (swapon(sk_swapfile, 0) != 0) {
		snprintf(why, len, "swapon %s: %s%s", sk_swapfile,
		    strerror(errno), errno == EINVAL ? " (the file system of "
		    "--swap-dir may not hold swap files: tmpfs, some btrfs "
		    "and network file systems do not)" : "");
		return -1;
	}
	return 0;
}

int
sw_kernel_setup(const struct sw_opts *o)
{
	char why[PATH_MAX + 256];
	int error;

	sb_init("swap");
	error = sb_cgroup_make(o->mem, why, sizeof(why));
	if (error == 0)
		error = sk_make_swap(o, why, sizeof(why));
	if (error != 0) {
		printf("swap kernel skipped: %s\n", why);
		sb_cleanup();
	}
	return error;
}

const char *
sw_kernel_describe(const struct sw_opts *o, char *buf, size_t len)
{
	char mem[32], swap[32];

	snprintf(buf, len, "child in memory cgroup %s (limit %s), swap file "
	    "%s (%s)", sb_cgroup_dir(), bench_size_str(o->mem, mem,
	    sizeof(mem)), sk_swapfile, bench_size_str(o->size *
	    SK_SWAP_FACTOR, swap, sizeof(swap)));
	return buf;
}

void
sw_kernel_stats(struct sw_kstats *ks)
{
	ks->pswpin = sb_read_u64("/proc", "vmstat", "pswpin");
	ks->pswpout = sb_read_u64("/proc", "vmstat", "pswpout");
	ks->peak = sb_cgroup_peak();
}
