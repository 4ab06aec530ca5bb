/* Finding a member's value in JSON text without parsing it (jspan.h).
 *
 * A scanner, not a parser: the text was validated before, so it only has
 * to step over strings (minding escapes) and count brackets. Each step is
 * still bounded by `size`, so text that was not validated cannot make it
 * read past the end; it then just finds nothing. */
#include "jspan.h"

#include <string.h>

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t skip_ws(const char *d, size_t n, size_t i)
{
	while (i < n && is_ws(d[i]))
		i++;
	return i;
}

/* d[i] is '"': the index just after the closing quote, or n. */
static size_t skip_string(const char *d, size_t n, size_t i)
{
	for (i++; i < n; i++) {
		if (d[i] == '\\')
			i++;
		else if (d[i] == '"')
			return i + 1;
	}
	return n;
}

/* The index just after the value that starts at d[i], or n. */
static size_t skip_value(const char *d, size_t n, size_t i)
{
	if (i >= n)
		return n;
	if (d[i] == '"')
		return skip_string(d, n, i);
	if (d[i] == '{' || d[i] == '[') {
		size_t depth = 0;
		while (i < n) {
			char c = d[i];
			if (c == '"') {
				i = skip_string(d, n, i);
				continue;
			}
			if (c == '{' || c == '[') {
				depth++;
			} else if (c == '}' || c == ']') {
				if (--depth == 0)
					return i + 1;
			}
			i++;
		}
		return n;
	}
	/* a number, true, false or null: up to the next delimiter */
	while (i < n && !is_ws(d[i]) && d[i] != ',' && d[i] != '}' && d[i] != ']')
		i++;
	return i;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Whether the string content k[0..n) (between the quotes, escapes not yet
 * decoded) spells the ASCII `name`. */
static bool key_is(const char *k, size_t n, const char *name)
{
	size_t i = 0;
	for (; *name; name++) {
		if (i >= n)
			return false;
		char c = k[i++];
		if (c == '\\') {
			if (i >= n)
				return false;
			char e = k[i++];
			switch (e) {
			case 'u': {
				int v = 0;
				for (int j = 0; j < 4; j++) {
					int h = i < n ? hex_digit(k[i++]) : -1;
					if (h < 0)
						return false;
					v = v * 16 + h;
				}
				if (v >= 0x80)
					return false;  /* a name is ASCII */
				c = (char)v;
				break;
			}
			case 'b': c = '\b'; break;
			case 'f': c = '\f'; break;
			case 'n': c = '\n'; break;
			case 'r': c = '\r'; break;
			case 't': c = '\t'; break;
			default: c = e; break;   /* " \ / */
			}
		}
		if (c != *name)
			return false;
	}
	return i == n;
}

bool jspan_member(const char *d, size_t n, const char *name, size_t *off, size_t *len)
{
	size_t i = skip_ws(d, n, 0);
	if (i >= n || d[i] != '{')
		return false;
	i++;
	for (;;) {
		i = skip_ws(d, n, i);
		if (i >= n || d[i] != '"')
			return false;   /* '}' (no such member) or not an object */
		size_t key = i + 1;
		i = skip_string(d, n, i);
		if (i >= n)
			return false;
		bool match = key_is(d + key, i - 1 - key, name);
		i = skip_ws(d, n, i);
		if (i >= n || d[i] != ':')
			return false;
		i = skip_ws(d, n, i + 1);
		size_t value = i;
		i = skip_value(d, n, i);
		if (i == value)
			return false;
		if (match) {
			*off = value;
			*len = i - value;
			return true;
		}
		i = skip_ws(d, n, i);
		if (i >= n || d[i] != ',')
			return false;
		i++;
	}
}
