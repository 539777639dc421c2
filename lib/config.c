/*
 * config.c: the runtime's configuration, from struct usrvm_config and the
 * USRVM_* environment variables.
 *
 * A bad value is never guessed at: it is named, with the form expected,
 * in one line on stderr, and the call fails with -EINVAL (or, for a
 * preloaded process, that setting keeps its default).
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "usrvm_internal.h"

#define CONFIG_MAX_THREADS	256
#define CONFIG_MIN_RESERVE	((size_t)64 << 20)	/* 64 MiB */
#define CONFIG_MAX_RESERVE	((size_t)64 << 40)	/* 64 TiB */
#define CONFIG_DEF_RESERVE	((size_t)256 << 30)	/* 256 GiB */
#define CONFIG_MIN_MEM		((size_t)1 << 20)	/* 1 MiB */
#define CONFIG_MAX_SWAP		((size_t)1 << 44)	/* 16 TiB: 2^32 slots */
#define CONFIG_DEF_DIRTY_AGE	30000			/* ms */
#define CONFIG_MAX_DIRTY_AGE	86400000		/* ms: a day */

/*
 * usrvm_parse_size: "4096", "64K", "256M", "1G", "2T" (binary units,
 * case-insensitive, an optional trailing "B" or "iB").  Public: the
 * tools parse their size arguments with it too.
 * => 0 or -EINVAL (also on overflow).
 */
int
usrvm_parse_size(const char *s, size_t *out)
{
	unsigned long long v;
	unsigned shift = 0;
	char *end;

	if (s == NULL || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return -EINVAL;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: break;
	}
	if (shift != 0 && (*end == 'i' || *end == 'I'))
		end++;
	if (*end == 'b' || *end == 'B')
		end++;
	if (*end != '\0' || (shift != 0 && v > (ULLONG_MAX >> shift)) ||
	    (v << shift) > SIZE_MAX)
		return -EINVAL;
	*out = (size_t)(v << shift);
	return 0;
}

static int
config_parse_uint(const char *s, unsigned max, unsigned *out)
{
	unsigned long v;
	char *end;

	if (s == NULL || *s < '0' || *s > '9')
		return EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return EINVAL;
	*out = (unsigned)v;
	return 0;
}

/* A time: seconds, or milliseconds with "ms" after the digits. */
static int
config_parse_ms(const char *s, unsigned *out)
{
	char buf[16];
	size_t n = strlen(s);
	unsigned v;

	if (n > 2 && n < sizeof(buf) && strcmp(s + n - 2, "ms") == 0) {
		memcpy(buf, s, n - 2);
		buf[n - 2] = '\0';
		if (config_parse_uint(buf, CONFIG_MAX_DIRTY_AGE, &v) != 0)
			return EINVAL;
		*out = v;
		return 0;
	}
	if (config_parse_uint(s, CONFIG_MAX_DIRTY_AGE / 1000, &v) != 0)
		return EINVAL;
	*out = v * 1000;
	return 0;
}

void
config_defaults(struct usrvm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->fault_threads = 0;
	cfg->default_reserve = CONFIG_DEF_RESERVE;
	cfg->verbose = 0;
	cfg->dirty_age_ms = CONFIG_DEF_DIRTY_AGE;
}

/*
 * config_check: is every field of cfg acceptable?  Names the first bad
 * field.  => 0 or EINVAL.
 */
int
config_check(const struct usrvm_config *cfg)
{
	if (cfg->fault_threads > CONFIG_MAX_THREADS) {
		usrvm_log(USRVM_LOG_ERR, "config fault_threads=%u: expected 0 "
		    "(one per core) to %u", cfg->fault_threads,
		    CONFIG_MAX_THREADS);
		return EINVAL;
	}
	if (cfg->default_reserve < CONFIG_MIN_RESERVE ||
	    cfg->default_reserve > CONFIG_MAX_RESERVE) {
		usrvm_log(USRVM_LOG_ERR, "config default_reserve=%zu: expected "
		    "64M to 64T", cfg->default_reserve);
		return EINVAL;
	}
	if (cfg->mem_limit != 0 && cfg->mem_limit < CONFIG_MIN_MEM) {
		usrvm_log(USRVM_LOG_ERR, "config mem_limit=%zu: expected 0 (no "
		    "budget) or at least 1M", cfg->mem_limit);
		return EINVAL;
	}
	if (cfg->swap_size > CONFIG_MAX_SWAP) {
		usrvm_log(USRVM_LOG_ERR, "config swap_size=%zu: expected at "
		    "most 16T", cfg->swap_size);
		return EINVAL;
	}
	if (cfg->swap_path != NULL && cfg->swap_path[0] == '\0') {
		usrvm_log(USRVM_LOG_ERR, "config swap_path is empty: expected "
		    "a file or a directory, or NULL");
		return EINVAL;
	}
	if (cfg->trace_path != NULL && cfg->trace_path[0] == '\0') {
		usrvm_log(USRVM_LOG_ERR, "config trace_path is empty: expected "
		    "a file, or NULL");
		return EINVAL;
	}
	if (cfg->dirty_age_ms > CONFIG_MAX_DIRTY_AGE) {
		usrvm_log(USRVM_LOG_ERR, "config dirty_age_ms=%u: expected 0 "
		    "(30 s) to %u (a day)", cfg->dirty_age_ms,
		    CONFIG_MAX_DIRTY_AGE);
		return EINVAL;
	}
	if (cfg->verbose > 2) {
		usrvm_log(USRVM_LOG_ERR, "config verbose=%u: expected 0, 1 or "
		    "2", cfg->verbose);
		return EINVAL;
	}
	return 0;
}

/*
 * config_load: the defaults, then the USRVM_* environment.  A malformed
 * variable is named in one line on stderr; strict: the call fails with
 * EINVAL; lenient (a preloaded process, which must run anyway): that
 * setting keeps its default and the others still apply.
 */
int
config_load(struct usrvm_config *cfg, bool strict)
{
	struct usrvm_config def;
	const char *v;
	bool bad = false;

	config_defaults(cfg);
	config_defaults(&def);
#define CONFIG_BAD(field, ...) do {					\
		usrvm_log(USRVM_LOG_ERR, __VA_ARGS__);			\
		if (strict)						\
			return EINVAL;					\
		cfg->field = def.field;					\
		bad = true;						\
	} while (0)
	if ((v = getenv("USRVM_FAULT_THREADS")) != NULL &&
	    config_parse_uint(v, CONFIG_MAX_THREADS, &cfg->fault_threads))
		CONFIG_BAD(fault_threads, "USRVM_FAULT_THREADS='%s': expected "
		    "a number from 0 (one per core) to %u", v,
		    CONFIG_MAX_THREADS);
	if ((v = getenv("USRVM_RESERVE")) != NULL &&
	    (usrvm_parse_size(v, &cfg->default_reserve) != 0 ||
	    cfg->default_reserve < CONFIG_MIN_RESERVE ||
	    cfg->default_reserve > CONFIG_MAX_RESERVE))
		CONFIG_BAD(default_reserve, "USRVM_RESERVE='%s': expected a "
		    "size from 64M to 64T: digits with an optional K, M, G or "
		    "T suffix", v);
	if ((v = getenv("USRVM_MEM")) != NULL &&
	    (usrvm_parse_size(v, &cfg->mem_limit) != 0 ||
	    (cfg->mem_limit != 0 && cfg->mem_limit < CONFIG_MIN_MEM)))
		CONFIG_BAD(mem_limit, "USRVM_MEM='%s': expected 0 (no budget) "
		    "or a size of at least 1M: digits with an optional K, M, G "
		    "or T suffix", v);
	if ((v = getenv("USRVM_SWAP")) != NULL) {
		if (v[0] == '\0')
			CONFIG_BAD(swap_path, "USRVM_SWAP is empty: expected a "
			    "file or a directory");
		else
			cfg->swap_path = v;
	}
	if ((v = getenv("USRVM_TRACE")) != NULL) {
		if (v[0] == '\0')
			CONFIG_BAD(trace_path, "USRVM_TRACE is empty: expected a "
			    "file");
		else
			cfg->trace_path = v;
	}
	if ((v = getenv("USRVM_SWAP_SIZE")) != NULL &&
	    (usrvm_parse_size(v, &cfg->swap_size) != 0 ||
	    cfg->swap_size > CONFIG_MAX_SWAP))
		CONFIG_BAD(swap_size, "USRVM_SWAP_SIZE='%s': expected a size "
		    "up to 16T: digits with an optional K, M, G or T suffix",
		    v);
	if ((v = getenv("USRVM_DIRTY_AGE")) != NULL &&
	    (config_parse_ms(v, &cfg->dirty_age_ms) != 0 ||
	    cfg->dirty_age_ms == 0))
		CONFIG_BAD(dirty_age_ms, "USRVM_DIRTY_AGE='%s': expected a "
		    "time from 1 ms to a day: seconds, or milliseconds with "
		    "an ms suffix (500ms)", v);
	if ((v = getenv("USRVM_VERBOSE")) != NULL &&
	    config_parse_uint(v, 2, &cfg->verbose) != 0)
		CONFIG_BAD(verbose, "USRVM_VERBOSE='%s': expected 0, 1 or 2",
		    v);
#undef CONFIG_BAD
	if (bad)
		usrvm_log(USRVM_LOG_ERR, "running with the default for what "
		    "is malformed");
	return 0;
}

int
usrvm_config_load(struct usrvm_config *cfg)
{
	if (cfg == NULL)
		return -EINVAL;
	return -config_load(cfg, true);
}
