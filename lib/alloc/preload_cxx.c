/*
 * preload_cxx.c: C++ operator new and delete for libusrvm-preload.so.
 *
 * libstdc++'s own operators call malloc and free, which are ours already;
 * defining them here saves a call and keeps sized and aligned deletes off
 * libstdc++'s path.  When memory runs out, a throwing operator new hands
 * the request to the next definition (libstdc++'s), which calls the
 * new-handler and throws std::bad_alloc as the program expects: C cannot
 * throw.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>
#include <stdlib.h>

#define EXPORT	__attribute__((visibility("default")))

void *memalign(size_t align, size_t size);

/* The next definition of a throwing operator new, for its failures. */
static void *
cxx_fail(const char *name, size_t size, size_t align)
{
	void *next = dlsym(RTLD_NEXT, name);

	if (next == NULL)
		abort();	/* no libstdc++: nobody could catch it */
	if (align == 0)
		return ((void *(*)(size_t))next)(size);
	return ((void *(*)(size_t, size_t))next)(size, align);
}

static inline void *
cxx_new(const char *name, size_t size)
{
	void *p = malloc(size);

	return p != NULL ? p : cxx_fail(name, size, 0);
}

static inline void *
cxx_new_aligned(const char *name, size_t size, size_t align)
{
	void *p = memalign(align, size);

	return p != NULL ? p : cxx_fail(name, size, align);
}

/* operator new / new[] (size_t [, align_val_t] [, nothrow_t const &]) */
EXPORT void *_Znwm(size_t n) { return cxx_new("_Znwm", n); }
EXPORT void *_Znam(size_t n) { return cxx_new("_Znam", n); }
EXPORT void *_ZnwmRKSt9nothrow_t(size_t n, const void *t)
{ (void)t; return malloc(n); }
EXPORT void *_ZnamRKSt9nothrow_t(size_t n, const void *t)
{ (void)t; return malloc(n); }
EXPORT void *_ZnwmSt11align_val_t(size_t n, size_t a)
{ return cxx_new_aligned("_ZnwmSt11align_val_t", n, a); }
EXPORT void *_ZnamSt11align_val_t(size_t n, size_t a)
{ return cxx_new_aligned("_ZnamSt11align_val_t", n, a); }
EXPORT void *_ZnwmSt11align_val_tRKSt9nothrow_t(size_t n, size_t a,
    const void *t)
{ (void)t; return memalign(a, n); }
EXPORT void *_ZnamSt11align_val_tRKSt9nothrow_t(size_t n, size_t a,
    const void *t)
{ (void)t; return memalign(a, n); }

/* operator delete / delete[] (void * [, size_t] [, align_val_t]
 * [, nothrow_t const &]): all of them are free(). */
EXPORT void _ZdlPv(void *p) { free(p); }
EXPORT void _ZdaPv(void *p) { free(p); }
EXPORT void _ZdlPvm(void *p, size_t n) { (void)n; free(p); }
EXPORT void _ZdaPvm(void *p, size_t n) { (void)n; free(p); }
EXPORT void _ZdlPvRKSt9nothrow_t(void *p, const void *t)
{ (void)t; free(p); }
EXPORT void _ZdaPvRKSt9nothrow_t(void *p, const void *t)
{ (void)t; free(p); }
EXPORT void _ZdlPvSt11align_val_t(void *p, size_t a) { (void)a; free(p); }
EXPORT void _ZdaPvSt11align_val_t(void *p, size_t a) { (void)a; free(p); }
EXPORT void _ZdlPvmSt11align_val_t(void *p, size_t n, size_t a)
{ (void)n; (void)a; free(p); }
EXPORT void _ZdaPvmSt11align_val_t(void *p, size_t n, size_t a)
{ (void)n; (void)a; free(p); }
EXPORT void _ZdlPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a,
    const void *t)
{ (void)a; (void)t; free(p); }
EXPORT void _ZdaPvSt11align_val_tRKSt9nothrow_t(void *p, size_t a,
    const void *t)
{ (void)a; (void)t; free(p); }
