/*
 * usrvm-snapshot: a background save without fork(2), the way Redis saves
 * its data set with fork(2), but with usrvm_fork: a consistent
 * copy-on-write snapshot of an in-memory table is written to a file by a
 * second thread while the application keeps changing the table.
 *
 *	usrvm-snapshot [--size SIZE] [--mem SIZE] [--out FILE]
 *
 * The table (--size, default 256M) lives in a usrvm space under a memory
 * budget (--mem, default half the table) with swap.  At the snapshot the
 * table holds generation 1 in every record; the writer thread walks the
 * child space and writes it out, while the main thread rewrites every
 * record with generation 2.  Afterwards the file is read back: every
 * record must be generation 1 (the moment of the snapshot), and the table
 * generation 2.  Exit status 0 if both hold, 1 if not, 2 on usage.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "usrvm.h"

#define RECORD		64		/* bytes per record */

struct record {
	uint64_t key, gen, sum;
	char pad[RECORD - 3 * sizeof(uint64_t)];
};

struct saver {
	const struct record *table;	/* in the snapshot space */
	size_t n;
	int fd;
	int error;
	double seconds;
};

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void
set(struct record *r, uint64_t key, uint64_t gen)
{
	r->key = key;
	r->gen = gen;
	r->sum = key * 0x9e3779b97f4a7c15ull ^ gen;
}

/* The background save: write the snapshot out, 1 MiB at a time. */
static void *
save(void *arg)
{
	struct saver *s = arg;
	const char *p = (const char *)s->table;
	size_t left = s->n * RECORD;
	double t0 = now();

	while (left > 0) {
		size_t chunk = left < (1 << 20) ? left : (1 << 20);
		ssize_t w = write(s->fd, p, chunk);
		if (w < 0) {
			s->error = errno;
			return NULL;
		}
		p += w;
		left -= (size_t)w;
	}
	s->seconds = now() - t0;
	return NULL;
}

/* Every record of the file is generation gen.  => bad records. */
static size_t
check_file(int fd, size_t n, uint64_t gen)
{
	static struct record buf[16384];
	size_t bad = 0, i = 0;
	ssize_t got;

	if (lseek(fd, 0, SEEK_SET) != 0)
		return n;
	while (i < n && (got = read(fd, buf, sizeof(buf))) > 0) {
		for (size_t k = 0; k < (size_t)got / RECORD; k++, i++)
			if (buf[k].key != i || buf[k].gen != gen ||
			    buf[k].sum != (i * 0x9e3779b97f4a7c15ull ^ gen))
				bad++;
	}
	return bad + (n - i);
}

static void
usage(FILE *f)
{
	fprintf(f, "usage: usrvm-snapshot [--size SIZE] [--mem SIZE] "
	    "[--out FILE]\n"
	    "  --size SIZE  the table (default 256M)\n"
	    "  --mem SIZE   the memory budget (default half the table)\n"
	    "  --out FILE   where the snapshot goes (default: an unlinked "
	    "file in $TMPDIR)\n");
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "size", required_argument, NULL, 's' },
		{ "mem",  required_argument, NULL, 'm' },
		{ "out",  required_argument, NULL, 'o' },
		{ "help", no_argument,       NULL, 'h' },
		{ NULL,   0,                 NULL, 0 }
	};
	size_t size = (size_t)256 << 20, mem = 0, n, bad_file, bad_table = 0;
	const char *out = NULL, *tmp = getenv("TMPDIR");
	struct usrvm_config cfg;
	struct usrvm_space *vs, *snap;
	struct usrvm_stats st;
	struct record *table;
	struct saver sv = { 0 };
	pthread_t th;
	double t0, tfork, tmut;
	int ch, error;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if ((ch == 's' && usrvm_parse_size(optarg, &size) != 0) ||
		    (ch == 'm' && usrvm_parse_size(optarg, &mem) != 0)) {
			fprintf(stderr, "usrvm-snapshot: bad size '%s'\n",
			    optarg);
			return 2;
		}
		if (ch == 'o')
			out = optarg;
		if (ch == 'h') {
			usage(stdout);
			return 0;
		}
		if (ch == '?') {
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || size < (1 << 20) || size % 4096 != 0) {
		usage(stderr);
		return 2;
	}
	if ((error = usrvm_config_load(&cfg)) != 0)
		return 2;
	cfg.mem_limit = mem != 0 ? mem : size / 2;
	if (cfg.swap_size < 4 * size)
		cfg.swap_size = 4 * size;	/* table + snapshot + slack */
	if ((error = usrvm_init(&cfg)) != 0) {
		fprintf(stderr, "usrvm-snapshot: usrvm_init: %s\n",
		    strerror(-error));
		return 1;
	}
	sv.fd = out != NULL ? open(out, O_RDWR | O_CREAT | O_TRUNC, 0600) :
	    open(tmp != NULL ? tmp : "/tmp", O_RDWR | O_TMPFILE, 0600);
	if (sv.fd < 0) {
		fprintf(stderr, "usrvm-snapshot: %s: %s\n",
		    out != NULL ? out : "O_TMPFILE", strerror(errno));
		return 1;
	}

	/* The application's table, in a space of its own. */
	n = size / RECORD;
	if ((vs = usrvm_space_create(size + (64 << 20))) == NULL ||
	    (table = usrvm_map(vs, NULL, size, USRVM_PROT_ALL,
	    USRVM_MAP_PRIVATE | USRVM_MAP_ANON, -1, 0)) == NULL) {
		fprintf(stderr, "usrvm-snapshot: map: %s\n", strerror(errno));
		return 1;
	}
	for (size_t i = 0; i < n; i++)
		set(&table[i], i, 1);

	/* The snapshot: the same offsets in another space. */
	t0 = now();
	if ((snap = usrvm_fork(vs)) == NULL) {
		fprintf(stderr, "usrvm-snapshot: usrvm_fork: %s\n",
		    strerror(errno));
		return 1;
	}
	tfork = now() - t0;
	sv.table = (const struct record *)((char *)usrvm_space_base(snap) +
	    ((char *)table - (char *)usrvm_space_base(vs)));
	sv.n = n;
	if ((error = pthread_create(&th, NULL, save, &sv)) != 0) {
		fprintf(stderr, "usrvm-snapshot: thread: %s\n",
		    strerror(error));
		return 1;
	}
	/* Meanwhile the application changes every record. */
	t0 = now();
	for (size_t i = 0; i < n; i++)
		set(&table[i], i, 2);
	tmut = now() - t0;
	pthread_join(th, NULL);
	if (sv.error != 0) {
		fprintf(stderr, "usrvm-snapshot: write: %s\n",
		    strerror(sv.error));
		return 1;
	}
	usrvm_space_destroy(snap);

	bad_file = check_file(sv.fd, n, 1);
	for (size_t i = 0; i < n; i++)
		if (table[i].gen != 2 || table[i].key != i)
			bad_table++;
	usrvm_stats(&st);
	printf("usrvm-snapshot: table %zu MiB (%zu records), budget %zu MiB\n"
	    "usrvm-snapshot: usrvm_fork %.0f us; the save wrote %zu MiB in "
	    "%.2f s while the application rewrote every record in %.2f s\n"
	    "usrvm-snapshot: pages copied on write %llu, shared pages moved "
	    "%llu, page-outs %llu, page-ins %llu, resident peak %llu MiB\n"
	    "usrvm-snapshot: file: %zu records not from the moment of the "
	    "snapshot; table: %zu records not updated\n",
	    size >> 20, n, (size_t)(cfg.mem_limit >> 20), tfork * 1e6,
	    size >> 20, sv.seconds, tmut,
	    (unsigned long long)st.faults_cow,
	    (unsigned long long)st.faults_cow_move,
	    (unsigned long long)st.pageouts, (unsigned long long)st.pageins,
	    (unsigned long long)(st.resident_peak * 4096 >> 20),
	    bad_file, bad_table);
	close(sv.fd);
	usrvm_space_destroy(vs);
	usrvm_shutdown();
	return bad_file == 0 && bad_table == 0 ? 0 : 1;
}
