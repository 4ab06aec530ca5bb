/* The host slots that read a plugin's settings and report bad ones
 * (config_error, config_uint, config_bool, broker_uint): one wording for
 * each mistake, whichever plugin reads the key, reported the way the core
 * reports its own ([broker]). */
#include "settings.h"

#include <stdarg.h>

#include <confab/util.h>

#include "broker.h"
#include "config.h"

/* The value of `key` in the instance's section (marking it known), or NULL. */
static const char *value_of(confab_ctx *ctx, const char *key)
{
	config_entry *e = config_section_get(ctx->section, key);
	return e != NULL ? e->value : NULL;
}

void settings_config_error(confab_ctx *ctx, const char *key, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	ctx->reported = true;
	config_vreport(broker_config(ctx->broker), ctx->name, key, fmt, ap);
	va_end(ap);
}

int settings_config_uint(confab_ctx *ctx, const char *key, uint64_t def, uint64_t min,
			 uint64_t max, uint64_t *out)
{
	const char *v = value_of(ctx, key);

	*out = def;
	if (v == NULL || confab_parse_uint(v, min, max, out))
		return 0;
	settings_config_error(ctx, key, "'%s' is not a number from %llu to %llu", v, (unsigned long long)min,
	       (unsigned long long)max);
	return CONFAB_EINVAL;
}

int settings_config_bool(confab_ctx *ctx, const char *key, bool def, bool *out)
{
	const char *v = value_of(ctx, key);

	*out = def;
	if (v == NULL || config_parse_bool(v, out))
		return 0;
	settings_config_error(ctx, key, "'%s' is not a boolean (true or false)", v);
	return CONFAB_EINVAL;
}

int settings_broker_uint(confab_ctx *ctx, const char *key, uint64_t *out)
{
	return config_broker_uint(broker_config(ctx->broker), key, out);
}
