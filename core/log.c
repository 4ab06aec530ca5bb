/* Logging: one line per message on stderr, so that systemd's journal (or a
 * terminal) sees it as it happens. Every line, the core's and the plugins'
 * (host->log), is written by log_write_line, the one place that escapes:
 * callers pass client text as it came. */
#include "log.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "utf8.h"

static confab_log_level current_level = CONFAB_LOG_INFO;
static log_format current_format = LOG_FORMAT_TEXT;

/* log_capture_errors: where the first error line's message goes, if set */
static char *capture_buf;
static size_t capture_cap;

static const char *const level_names[] = { "error", "warn", "info", "debug" };
static const char *const format_names[] = { "text", "json" };

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

void log_set_format(log_format format)
{
	current_format = format;
}

bool log_parse_format(const char *text, log_format *out)
{
	for (size_t i = 0; i < sizeof(format_names) / sizeof(format_names[0]); i++) {
		if (strcmp(text, format_names[i]) == 0) {
			*out = (log_format)i;
			return true;
		}
	}
	return false;
}

const char *log_format_name(log_format format)
{
	if ((unsigned)format >= sizeof(format_names) / sizeof(format_names[0]))
		return "?";
	return format_names[format];
}

/* The escape for the `n` bytes at p (one UTF-8 sequence, or one invalid
 * byte when valid is false) into piece[], or 0 when they are kept as they
 * are. C1 controls (U+0080-U+009F) are escaped too: some terminals act on
 * them as on ESC sequences. */
static size_t escape_piece(char piece[16], const unsigned char *p, size_t n, bool valid,
			   log_format format)
{
	unsigned cp = p[0];
	if (valid && n == 2)
		cp = ((p[0] & 0x1fu) << 6) | (p[1] & 0x3fu);
	bool control = valid && (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f));
	if (format == LOG_FORMAT_TEXT) {
		if (valid && !control)
			return 0;
		size_t len = 0;
		for (size_t i = 0; i < n; i++)
			len += (size_t)snprintf(piece + len, 16 - len, "\\x%02X", p[i]);
		return len;
	}
	if (!valid)
		return (size_t)snprintf(piece, 16, "\\ufffd");
	switch (cp) {
	case '"':  return (size_t)snprintf(piece, 16, "\\\"");
	case '\\': return (size_t)snprintf(piece, 16, "\\\\");
	case '\n': return (size_t)snprintf(piece, 16, "\\n");
	case '\r': return (size_t)snprintf(piece, 16, "\\r");
	case '\t': return (size_t)snprintf(piece, 16, "\\t");
	default:
		return control ? (size_t)snprintf(piece, 16, "\\u%04x", cp) : 0;
	}
}

size_t log_escape(char *out, size_t cap, const char *in, log_format format)
{
	const unsigned char *p = (const unsigned char *)in;
	size_t avail = strlen(in), len = 0;
	while (avail > 0) {
		size_t n = utf8_sequence(p, avail);
		bool valid = n > 0;
		if (!valid)
			n = 1;
		char piece[16];
		size_t plen = escape_piece(piece, p, n, valid, format);
		const void *src = plen ? (const void *)piece : (const void *)p;
		if (!plen)
			plen = n;
		if (len + plen >= cap)
			break;
		memcpy(out + len, src, plen);
		len += plen;
		p += n;
		avail -= n;
	}
	out[len] = '\0';
	return len;
}

/* One line of JSON: the common members, then the fields. */
static size_t json_line(char *line, size_t cap, const char *stamp, confab_log_level level,
			const char *who, const char *msg, const log_field *fields, size_t n_fields)
{
	char esc_who[256], esc_msg[4096], esc_val[256];
	log_escape(esc_who, sizeof(esc_who), who, LOG_FORMAT_JSON);
	log_escape(esc_msg, sizeof(esc_msg), msg, LOG_FORMAT_JSON);
	int n = snprintf(line, cap, "{\"time\":\"%s\",\"level\":\"%s\",\"who\":\"%s\",\"msg\":\"%s\"",
			 stamp, log_level_name(level), esc_who, esc_msg);
	if (n < 0 || (size_t)n >= cap)
		return 0;
	size_t len = (size_t)n;
	for (size_t i = 0; i < n_fields && i < LOG_MAX_FIELDS; i++) {
		char esc_key[64];
		log_escape(esc_key, sizeof(esc_key), fields[i].key, LOG_FORMAT_JSON);
		if (fields[i].kind == LOG_FIELD_TEXT) {
			log_escape(esc_val, sizeof(esc_val), fields[i].text ? fields[i].text : "",
				   LOG_FORMAT_JSON);
			n = snprintf(line + len, cap - len, ",\"%s\":\"%s\"", esc_key, esc_val);
		} else if (fields[i].kind == LOG_FIELD_INT) {
			n = snprintf(line + len, cap - len, ",\"%s\":%lld", esc_key, fields[i].number);
		} else {
			n = snprintf(line + len, cap - len, ",\"%s\":null", esc_key);
		}
		if (n < 0 || (size_t)n >= cap - len)
			return 0;
		len += (size_t)n;
	}
	if (len + 1 >= cap)
		return 0;
	line[len++] = '}';
	return len;
}

static void log_write_line(confab_log_level level, const char *who, const log_field *fields,
			   size_t n_fields, const char *fmt, va_list ap)
{
	if (level > current_level)
		return;

	struct timespec now;
	struct tm tm;
	char date[24], stamp[40];
	clock_gettime(CLOCK_REALTIME, &now);
	gmtime_r(&now.tv_sec, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp, sizeof(stamp), "%s.%03dZ", date, (int)(now.tv_nsec / 1000000L % 1000));
	if (!who)
		who = "core";

	char msg[2048];
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		return;
	if (level == CONFAB_LOG_ERROR && capture_buf != NULL && capture_buf[0] == '\0') {
		size_t n = log_escape(capture_buf, capture_cap, who, LOG_FORMAT_TEXT);
		if (n + 2 < capture_cap) {
			memcpy(capture_buf + n, ": ", 3);
			log_escape(capture_buf + n + 2, capture_cap - n - 2, msg, LOG_FORMAT_TEXT);
		}
	}

	/* Build the whole line first so that it reaches stderr in one write.
	 * The room suffices for what the escaped parts can hold (4 KiB of
	 * message, 8 fields of 256 bytes), so no line is cut. */
	char line[8192];
	size_t len;
	if (current_format == LOG_FORMAT_JSON) {
		len = json_line(line, sizeof(line) - 1, stamp, level, who, msg, fields, n_fields);
		if (len == 0)
			return;
	} else {
		char esc_who[256];
		log_escape(esc_who, sizeof(esc_who), who, LOG_FORMAT_TEXT);
		int n = snprintf(line, sizeof(line) - 1, "%s %-5s [%s] ", stamp,
				 log_level_name(level), esc_who);
		if (n < 0 || (size_t)n >= sizeof(line) - 1)
			return;
		len = (size_t)n;
		len += log_escape(line + len, sizeof(line) - 1 - len, msg, LOG_FORMAT_TEXT);
	}
	line[len++] = '\n';
	fwrite(line, 1, len, stderr);
}

void log_capture_errors(char *buf, size_t cap)
{
	capture_buf = cap > 0 ? buf : NULL;
	capture_cap = cap;
	if (capture_buf != NULL)
		capture_buf[0] = '\0';
}

void log_vline(confab_log_level level, const char *who, const char *fmt, va_list ap)
{
	log_write_line(level, who, NULL, 0, fmt, ap);
}

void log_line(confab_log_level level, const char *who, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_write_line(level, who, NULL, 0, fmt, ap);
	va_end(ap);
}

void log_event(confab_log_level level, const char *who, const log_field *fields,
	       size_t n_fields, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_write_line(level, who, fields, n_fields, fmt, ap);
	va_end(ap);
}
