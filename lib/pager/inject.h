/*
 * inject.h: fault injection in the paging I/O layer, for the tests and
 * for stress-test harnesses (usrvm_inject in usrvm.h).
 */
#ifndef USRVM_INJECT_H
#define USRVM_INJECT_H

/*
 * inject_take: should this operation (USRVM_INJECT_*) fail?  => the
 * errno to fail it with (and one fewer left to inject), or 0.
 */
int inject_take(int what);
void inject_reset(void);

#endif /* USRVM_INJECT_H */
