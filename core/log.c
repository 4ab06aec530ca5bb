/* Logging: one line per message on stderr, so that systemd's journal (or a
 * terminal) sees it as it happens. */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static confab_log_level current_level = CONFAB_LOG_INFO;

static const char *const level_names[] = { "error", "warn", "info", "debug" };

void log_set_level(confab_log_level level)
{
	current_level = level;
}

confab_log_level log_get_level(void)
{
	return current_level;
}

bool log_parse_level(const char *text, confab_log_level *out)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(text, level_names[i]) == 0) {
			*out = (confab_log_level)i;
			return true;
		}
	}
	return false;
}

const char *log_level_name(confab_log_level level)
{
	if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0]))
		return "?";
	return level_names[level];
}

void log_vline(confab_log_level level, const char *who, const char *fmt, va_list ap)
{
	if (level > current_level)
		return;

	struct timespec now;
	struct tm tm;
	char stamp[32];
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);

	/* Build the whole line first so that it reaches stderr in one write. */
	char line[2048];
	int n = snprintf(line, sizeof(line), "%s.%03ldZ %-5s [%s] ", stamp,
			 now.tv_nsec / 1000000L, log_level_name(level), who ? who : "core");
	if (n < 0)
		return;
	if ((size_t)n < sizeof(line))
		vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	size_t len = strnlen(line, sizeof(line) - 2);
	/* One message, one line: a newline inside the text would split it. */
	for (size_t i = 0; i < len; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	line[len++] = '\n';
	fwrite(line, 1, len, stderr);
}

void log_line(confab_log_level level, const char *who, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vline(level, who, fmt, ap);
	va_end(ap);
}
