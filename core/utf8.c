/* UTF-8 validation of client text (utf8.h).
 *
 * Written out rather than taken from jansson, which validates only while
 * parsing and says so with an error text, not a position. */
#include "utf8.h"

#include <stdint.h>

size_t utf8_sequence(const unsigned char *p, size_t avail)
{
	if (avail == 0)
		return 0;
	if (p[0] < 0x80)
		return 1;
	size_t n;
	uint32_t cp;
	if ((p[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = p[0] & 0x1f;
	} else if ((p[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = p[0] & 0x0f;
	} else if ((p[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = p[0] & 0x07;
	} else {
		return 0;
	}
	if (avail < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	static const uint32_t min[5] = { 0, 0, 0x80, 0x800, 0x10000 };
	if (cp < min[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

bool utf8_valid(const void *data, size_t len)
{
	const unsigned char *p = data;
	size_t i = 0;
	while (i < len) {
		size_t n = utf8_sequence(p + i, len - i);
		if (n == 0)
			return false;
		i += n;
	}
	return true;
}
