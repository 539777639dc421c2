/*
 * config.h: configuration parsing and checks (config.c).
 */
#ifndef USRVM_CONFIG_H
#define USRVM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "usrvm.h"

void config_defaults(struct usrvm_config *cfg);
int config_check(const struct usrvm_config *cfg);	/* 0 or EINVAL */
/* Defaults + USRVM_* environment; strict: EINVAL on a malformed one,
 * else it keeps its default (the line naming it is printed either way). */
int config_load(struct usrvm_config *cfg, bool strict);

#endif /* USRVM_CONFIG_H */
