/* The settings slots of the host table: a plugin's bad setting reported,
 * and (ABI 1.6) its own section read as numbers and booleans, and
 * [broker]'s numbers. */
#ifndef CONFAB_CORE_SETTINGS_H
#define CONFAB_CORE_SETTINGS_H

#include <stdbool.h>
#include <stdint.h>
#include <confab/common.h>

/* The config_error slot: one line naming the file, the key's line, the
 * instance's section and the key; the instance counts as having reported. */
void settings_config_error(confab_ctx *ctx, const char *key, const char *fmt, ...)
	CONFAB_PRINTF(3, 4);
int settings_config_uint(confab_ctx *ctx, const char *key, uint64_t def, uint64_t min,
			 uint64_t max, uint64_t *out);
int settings_config_bool(confab_ctx *ctx, const char *key, bool def, bool *out);
int settings_broker_uint(confab_ctx *ctx, const char *key, uint64_t *out);

#endif
