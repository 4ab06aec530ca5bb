/* The typed settings slots of the host table (ABI 1.6): a plugin's own
 * section read as numbers and booleans, and [broker]'s numbers. */
#ifndef CONFAB_CORE_SETTINGS_H
#define CONFAB_CORE_SETTINGS_H

#include <stdbool.h>
#include <stdint.h>
#include <confab/common.h>

int settings_config_uint(confab_ctx *ctx, const char *key, uint64_t def, uint64_t min,
			 uint64_t max, uint64_t *out);
int settings_config_bool(confab_ctx *ctx, const char *key, bool def, bool *out);
int settings_broker_uint(confab_ctx *ctx, const char *key, uint64_t *out);

#endif
