/*
 * usrvm-xor: a file changed in place through a usrvm mapping, under a
 * memory budget smaller than the file.
 *
 *	usrvm-xor [--mem SIZE] [--key BYTE] FILE
 *
 * Maps FILE shared and writable with usrvm_map (the vnode pager), xors
 * every byte with KEY (default 0x5a) from the first page to the last,
 * writes it back with usrvm_sync, and prints what the pager did: pages
 * read, in how many reads (read-ahead), pages written back, pages
 * evicted to stay within the budget (--mem, default 16M).  Running it
 * twice gives the file back.  Exit status 0, 1 on a failure (said on
 * stderr), 2 on usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "usrvm.h"

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void
usage(void)
{
	fprintf(stderr, "usage: usrvm-xor [--mem SIZE] [--key BYTE] FILE\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "mem", required_argument, NULL, 'm' },
		{ "key", required_argument, NULL, 'k' },
		{ NULL, 0, NULL, 0 },
	};
	struct usrvm_config cfg;
	struct usrvm_stats st;
	size_t mem = (size_t)16 << 20, len;
	unsigned long key = 0x5a;
	struct stat sb;
	uint64_t word;
	double t0, t1, t2;
	char *end;
	uint8_t *p;
	int c, fd, error;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			if (usrvm_parse_size(optarg, &mem) != 0 ||
			    mem < ((size_t)1 << 20)) {
				fprintf(stderr, "usrvm-xor: --mem '%s': expected "
				    "a size of at least 1M\n", optarg);
				usage();
			}
			break;
		case 'k':
			errno = 0;
			key = strtoul(optarg, &end, 0);
			if (errno != 0 || *end != '\0' || key == 0 ||
			    key > 255) {
				fprintf(stderr, "usrvm-xor: --key '%s': "
				    "expected 1 to 255\n", optarg);
				usage();
			}
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1)
		usage();
	if ((fd = open(argv[optind], O_RDWR)) < 0 || fstat(fd, &sb) != 0) {
		fprintf(stderr, "usrvm-xor: %s: %s\n", argv[optind],
		    strerror(errno));
		return 1;
	}
	len = ((size_t)sb.st_size + 4095) & ~(size_t)4095;
	if (len == 0)
		return 0;

	if ((error = usrvm_config_load(&cfg)) != 0)
		return 1;
	cfg.mem_limit = mem;
	if ((error = usrvm_init(&cfg)) != 0) {
		fprintf(stderr, "usrvm-xor: usrvm_init: %s\n", strerror(-error));
		return 1;
	}
	p = usrvm_map(usrvm_default_space(), NULL, len,
	    USRVM_PROT_READ | USRVM_PROT_WRITE, USRVM_MAP_SHARED, fd, 0);
	if (p == NULL) {
		fprintf(stderr, "usrvm-xor: usrvm_map: %s\n", strerror(errno));
		return 1;
	}
	close(fd);		/* the mapping keeps the file */

	/* Whole words, then the bytes of the last page inside the file. */
	t0 = now();
	memset(&word, (int)key, sizeof(word));
	for (size_t i = 0; i + 8 <= (size_t)sb.st_size; i += 8)
		*(uint64_t *)(p + i) ^= word;
	for (size_t i = (size_t)sb.st_size & ~(size_t)7;
	    i < (size_t)sb.st_size; i++)
		p[i] ^= (uint8_t)key;
	t1 = now();
	if ((error = usrvm_sync(p, len, USRVM_SYNC_SYNC)) != 0) {
		fprintf(stderr, "usrvm-xor: usrvm_sync: %s\n",
		    strerror(-error));
		return 1;
	}
	t2 = now();
	usrvm_stats(&st);
	printf("usrvm-xor: %s, %.1f MiB through a %.1f MiB budget: "
	    "xor %.2f s, sync %.2f s\n", argv[optind],
	    (double)sb.st_size / 1048576, (double)mem / 1048576, t1 - t0,
	    t2 - t1);
	printf("usrvm-xor: read %llu pages in %llu reads (largest %llu "
	    "pages); wrote back %llu pages in %llu writes; evicted %llu "
	    "clean pages; peak resident %llu pages; fault errors %llu\n",
	    (unsigned long long)st.file_pageins,
	    (unsigned long long)st.file_reads,
	    (unsigned long long)st.file_read_max,
	    (unsigned long long)st.file_pageouts,
	    (unsigned long long)st.file_writes,
	    (unsigned long long)st.evict_file,
	    (unsigned long long)st.resident_peak,
	    (unsigned long long)st.faults_error);
	usrvm_shutdown();
	return st.faults_error == 0 ? 0 : 1;
}
