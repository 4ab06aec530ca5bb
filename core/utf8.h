/* UTF-8 checks for text frames and for the strings put into frames. */
#ifndef CONFAB_CORE_UTF8_H
#define CONFAB_CORE_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length (1-4) of the valid UTF-8 sequence at p, of at most `avail`
 * bytes, or 0 when it is not one: overlong forms, surrogates and code
 * points past U+10FFFF are invalid. A NUL ends a sequence early. */
size_t utf8_sequence(const unsigned char *p, size_t avail);
/* True when all `len` bytes are UTF-8. */
bool utf8_valid(const void *data, size_t len);

#endif
