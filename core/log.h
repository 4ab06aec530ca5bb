/* Logging to stderr with a level. One line per call, prefixed with the time,
 * the level and who speaks (the core's module or a plugin instance), as
 * text or as one JSON object; client text in it is escaped here, so that
 * no caller can let a control character or a forged line through. */
#ifndef CONFAB_CORE_LOG_H
#define CONFAB_CORE_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <confab/common.h>

typedef enum log_format {
	LOG_FORMAT_TEXT,   /* "2026-01-02T03:04:05.678Z info  [who] msg" */
	LOG_FORMAT_JSON    /* {"time":...,"level":...,"who":...,"msg":...} */
} log_format;

void log_set_level(confab_log_level level);
confab_log_level log_get_level(void);
/* Parses "error", "warn", "info" or "debug". Returns false otherwise. */
bool log_parse_level(const char *text, confab_log_level *out);
const char *log_level_name(confab_log_level level);

void log_set_format(log_format format);
/* Parses "text" or "json". Returns false otherwise. */
bool log_parse_format(const char *text, log_format *out);
const char *log_format_name(log_format format);

/* Writes `in` escaped for `format` into `out` (NUL-terminated, at most
 * cap - 1 bytes, cut before an escape that would not fit) and returns the
 * bytes written. Valid UTF-8 is kept, except control characters (C0, DEL
 * and C1); those and invalid bytes become, in text, \xNN for each byte;
 * in JSON (the inside of a string), \n, \r, \t or \u00NN, with " and \
 * escaped and each invalid byte replaced by \ufffd. cap must be >= 1. */
size_t log_escape(char *out, size_t cap, const char *in, log_format format);

/* From now on, the first error line's "who: message" (escaped as in
 * text) is also copied into buf[0..cap) (emptied here), until called
 * again with NULL: what confabctl is answered when a reload is refused. */
void log_capture_errors(char *buf, size_t cap);

/* A structured field of a line, written in JSON format only: the text
 * format has the message alone. */
typedef enum log_field_kind { LOG_FIELD_TEXT, LOG_FIELD_INT, LOG_FIELD_NULL } log_field_kind;
typedef struct log_field {
	const char *key;
	log_field_kind kind;
	const char *text;    /* LOG_FIELD_TEXT (borrowed) */
	long long number;    /* LOG_FIELD_INT */
} log_field;
#define LOG_TEXT(k, v) ((log_field){ .key = (k), .kind = LOG_FIELD_TEXT, .text = (v) })
#define LOG_INT(k, v) ((log_field){ .key = (k), .kind = LOG_FIELD_INT, .number = (v) })
#define LOG_NULL(k) ((log_field){ .key = (k), .kind = LOG_FIELD_NULL })
/* At most this many fields are written; more are dropped. */
#define LOG_MAX_FIELDS 8

void log_line(confab_log_level level, const char *who, const char *fmt, ...)
	CONFAB_PRINTF(3, 4);
void log_vline(confab_log_level level, const char *who, const char *fmt, va_list ap)
	CONFAB_PRINTF(3, 0);
/* A line with structured fields (for events a log shipper counts). */
void log_event(confab_log_level level, const char *who, const log_field *fields,
	       size_t n_fields, const char *fmt, ...) CONFAB_PRINTF(5, 6);

#endif
