/*
 * usrvm-demo: map memory through usrvm, use it, and show what the runtime
 * did.
 *
 *	usrvm-demo [SIZE]	(default 256M)
 *
 * Writes a pattern over SIZE bytes of private anonymous memory from four
 * threads (a quarter each), reads a sparse region (zero pages), reads everything back and
 * verifies it, discards half with DONTNEED, checks it reads as zeros,
 * unmaps, and prints the runtime's statistics.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "usrvm.h"

#define PAGE		4096UL
#define NTHREADS	4

static char *region;
static size_t region_len;

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t
pattern(size_t page)
{
	return page * 0x9e3779b97f4a7c15ull + 1;
}

static void *
writer(void *arg)
{
	size_t t = (size_t)arg, npages = region_len / PAGE;
	size_t first = npages * t / NTHREADS, last = npages * (t + 1) / NTHREADS;

	/* Each thread its own quarter, in order: a sequential stream each. */
	for (size_t p = first; p < last; p++)
		*(uint64_t *)(region + p * PAGE) = pattern(p);
	return NULL;
}

/*
 * parse_size: a size as usrvm_parse_size takes it ("256M", "1G"), not
 * zero, rounded up to whole pages.  => 0 or -1.
 */
static int
parse_size(const char *s, size_t *out)
{
	size_t v;

	if (usrvm_parse_size(s, &v) != 0 || v == 0 || v > SIZE_MAX - PAGE + 1)
		return -1;
	*out = (v + PAGE - 1) & ~(PAGE - 1);
	return 0;
}

int
main(int argc, char **argv)
{
	struct usrvm_space *vs;
	pthread_t th[NTHREADS];
	size_t npages, bad = 0;
	double t0, t1;
	int error;

	region_len = 256UL << 20;
	if (argc > 2 || (argc == 2 && parse_size(argv[1], &region_len) != 0)) {
		fprintf(stderr, "usage: usrvm-demo [SIZE]  (e.g. 256M)\n");
		return 2;
	}
	npages = region_len / PAGE;
	if ((error = usrvm_init(NULL)) != 0) {
		fprintf(stderr, "usrvm-demo: usrvm_init: %s\n",
		    strerror(-error));
		return 1;
	}
	vs = usrvm_default_space();
	region = usrvm_map(vs, NULL, region_len,
	    USRVM_PROT_READ | USRVM_PROT_WRITE,
	    USRVM_MAP_PRIVATE | USRVM_MAP_ANON, -1, 0);
	if (region == NULL) {
		fprintf(stderr, "usrvm-demo: usrvm_map: %s\n", strerror(errno));
		return 1;
	}
	printf("mapped %zu MiB at %p in the default space [%p, +%zu GiB)\n",
	    region_len >> 20, (void *)region, usrvm_space_base(vs),
	    usrvm_space_size(vs) >> 30);

	t0 = now();
	for (size_t t = 0; t < NTHREADS; t++)
		pthread_create(&th[t], NULL, writer, (void *)t);
	for (size_t t = 0; t < NTHREADS; t++)
		pthread_join(th[t], NULL);
	t1 = now();
	printf("first touch by %d threads: %zu pages in %.3f s "
	    "(%.0f pages/s)\n", NTHREADS, npages, t1 - t0, npages / (t1 - t0));

	for (size_t p = 0; p < npages; p++)
		if (*(uint64_t *)(region + p * PAGE) != pattern(p))
			bad++;
	printf("verified %zu pages: %zu wrong\n", npages, bad);

	/* A system call writing into managed memory that was discarded. */
	if (usrvm_advise(vs, region, region_len / 2, USRVM_ADV_DONTNEED) != 0) {
		fprintf(stderr, "usrvm-demo: advise failed\n");
		return 1;
	}
	for (size_t p = 0; p < npages / 2; p++)
		if (*(uint64_t *)(region + p * PAGE) != 0)
			bad++;
	int fd = open("/proc/self/stat", O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, region + PAGE, 512) : -1;
	if (fd >= 0)
		close(fd);
	printf("after DONTNEED of the first half: zeros checked, read(2) "
	    "into a discarded page returned %zd\n", n);

	usrvm_unmap(vs, region, region_len);
	fflush(stdout);
	usrvm_stats_print(STDOUT_FILENO);
	usrvm_shutdown();
	if (bad != 0 || n <= 0) {
		printf("FAILED: %zu wrong pages\n", bad);
		return 1;
	}
	printf("ok\n");
	return 0;
}
