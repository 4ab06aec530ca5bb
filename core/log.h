/* Logging to stderr with a level. One line per call, prefixed with the time,
 * the level and who speaks (the core's module or a plugin instance). */
#ifndef CONFAB_CORE_LOG_H
#define CONFAB_CORE_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <confab/common.h>

void log_set_level(confab_log_level level);
confab_log_level log_get_level(void);
/* Parses "error", "warn", "info" or "debug". Returns false otherwise. */
bool log_parse_level(const char *text, confab_log_level *out);
const char *log_level_name(confab_log_level level);

void log_line(confab_log_level level, const char *who, const char *fmt, ...)
	CONFAB_PRINTF(3, 4);
void log_vline(confab_log_level level, const char *who, const char *fmt, va_list ap)
	CONFAB_PRINTF(3, 0);

#endif
