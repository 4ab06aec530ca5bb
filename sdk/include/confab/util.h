/* confab plugin SDK — the small rules and parsers every plugin needs:
 * user-id and room-name rules, request headers, the Authorization scheme,
 * base64 and base64url, bounded integers.
 *
 * Header-only (static inline, like query.h): compiled into the plugin,
 * calling nothing in the broker, so it is not part of the ABI and a
 * plugin needs no library to use it. The core uses the same functions,
 * so a plugin and the broker can never disagree on what a valid user id
 * is. Not a place for state.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef CONFAB_UTIL_H
#define CONFAB_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <confab/transport.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- names ---------------------------------------------------------------- */

/* The longest user id and room name the broker accepts, in bytes. */
#define CONFAB_USER_MAX 64
#define CONFAB_ROOM_MAX 64

static inline bool confab_name_char_(int c, bool allow_at)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == ':' || c == '-' || (allow_at && c == '@');
}

/* strnlen and strcasecmp are POSIX, and a plugin built with -std=c11 and
 * no feature macro does not see them: these two stand in. */
static inline size_t confab_strnlen_(const char *s, size_t max)
{
	size_t n = 0;
	while (n < max && s[n] != '\0')
		n++;
	return n;
}

static inline int confab_lower_(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* True when the first `n` bytes of `a` equal `b`'s in any ASCII case
 * (`a` may be shorter: its NUL then differs). */
static inline bool confab_prefix_ci_(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (confab_lower_((unsigned char)a[i]) != confab_lower_((unsigned char)b[i]))
			return false;
	return true;
}

static inline bool confab_valid_name_(const char *s, size_t len, size_t max, bool allow_at)
{
	if (s == NULL || len < 1 || len > max)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!confab_name_char_((unsigned char)s[i], allow_at))
			return false;
	return true;
}

/* A user id: 1 to CONFAB_USER_MAX bytes of A-Z a-z 0-9 _ . : - @.
 * (Whether it may be used is another matter: ids beginning with "guest-"
 * are the core's, see auth.h.) `_n` checks `len` bytes, which must not
 * hold a NUL (a JSON string's length, say). */
static inline bool confab_valid_user_n(const char *s, size_t len)
{
	return confab_valid_name_(s, len, CONFAB_USER_MAX, true);
}

static inline bool confab_valid_user(const char *s)
{
	return s != NULL && confab_valid_user_n(s, confab_strnlen_(s, CONFAB_USER_MAX + 1));
}

/* A room name: 1 to CONFAB_ROOM_MAX bytes of A-Z a-z 0-9 _ . : - (no @). */
static inline bool confab_valid_room(const char *s)
{
	return s != NULL && confab_valid_name_(s, confab_strnlen_(s, CONFAB_ROOM_MAX + 1),
					       CONFAB_ROOM_MAX, false);
}

/* ---- the request ---------------------------------------------------------- */

/* The value of the first header called `name` (any case), or NULL when the
 * request has none (or a transport gave it no value). */
static inline const char *confab_header_value(const confab_request *req, const char *name)
{
	if (req == NULL || name == NULL)
		return NULL;
	for (size_t i = 0; i < req->n_headers; i++)
		if (req->headers[i].name != NULL && req->headers[i].value != NULL &&
		    strlen(req->headers[i].name) == strlen(name) &&
		    confab_prefix_ci_(req->headers[i].name, name, strlen(name)))
			return req->headers[i].value;
	return NULL;
}

/* The credentials of an `Authorization: <scheme> <credentials>` header
 * whose scheme is `scheme` (any case, e.g. "Bearer", "Basic"), with the
 * blanks around them skipped: a pointer into the header's value and its
 * length in *len. NULL (and *len 0) when there is no Authorization
 * header, when it names another scheme (another plugin's business), or
 * when nothing follows the scheme; confab_auth_scheme_is tells the last
 * case from the others. */
static inline const char *confab_auth_credentials(const confab_request *req, const char *scheme,
						  size_t *len)
{
	const char *v = confab_header_value(req, "authorization");
	size_t n = strlen(scheme);

	*len = 0;
	if (v == NULL)
		return NULL;
	v += strspn(v, " \t");
	if (!confab_prefix_ci_(v, scheme, n) || (v[n] != ' ' && v[n] != '\t' && v[n] != '\0'))
		return NULL;
	v += n;
	v += strspn(v, " \t");
	n = strlen(v);
	while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		n--;
	*len = n;
	return n > 0 ? v : NULL;
}

/* True when the request has an Authorization header of scheme `scheme`,
 * credentials or not: a plugin that owns the scheme answers an empty one
 * with 401 rather than ignoring the client. */
static inline bool confab_auth_scheme_is(const confab_request *req, const char *scheme)
{
	const char *v = confab_header_value(req, "authorization");
	size_t n = strlen(scheme);

	if (v == NULL)
		return false;
	v += strspn(v, " \t");
	return confab_prefix_ci_(v, scheme, n) && (v[n] == ' ' || v[n] == '\t' || v[n] == '\0');
}

/* ---- base64 ---------------------------------------------------------------- */

static inline int confab_b64_value_(int c, bool url)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == (url ? '-' : '+'))
		return 62;
	if (c == (url ? '_' : '/'))
		return 63;
	return -1;
}

/* Decodes `len` bytes of base64 (RFC 4648 section 4) or, with `url`,
 * base64url (section 5) into out[cap]. The decoded bytes may hold NULs.
 *  - base64: up to two trailing '=' are optional, as clients differ.
 *  - base64url: no padding, and the unused bits of the last character
 *    must be zero, so that each text has one decoding (JWTs are compared
 *    as text: RFC 7515 section 2).
 * Any other character (blanks included) or a length no encoding has is an
 * error. Returns the decoded length, or -1 for bad input or when `cap` is
 * too small (CONFAB_BASE64_DECODED_MAX(len) is always enough). */
static inline long confab_b64_decode_(const char *in, size_t len, unsigned char *out,
				      size_t cap, bool url)
{
	uint32_t acc = 0;
	size_t n = 0, bits = 0;

	for (int pad = 0; !url && pad < 2 && len > 0 && in[len - 1] == '='; pad++)
		len--;
	if (len % 4 == 1)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int v = confab_b64_value_((unsigned char)in[i], url);
		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			if (n >= cap)
				return -1;
			out[n++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	return url && acc != 0 ? -1 : (long)n;
}

static inline long confab_base64_decode(const char *in, size_t len, unsigned char *out,
					size_t cap)
{
	return confab_b64_decode_(in, len, out, cap, false);
}

static inline long confab_base64url_decode(const char *in, size_t len, unsigned char *out,
					   size_t cap)
{
	return confab_b64_decode_(in, len, out, cap, true);
}

/* The most bytes `len` characters of base64 or base64url decode to. */
#define CONFAB_BASE64_DECODED_MAX(len) (((len) / 4 + 1) * 3)

/* ---- integers ------------------------------------------------------------ */

/* Parses `text` as a decimal number from `min` to `max`: digits only (no
 * sign, no blanks, no hex, no trailing characters), overflow checked.
 * True and *out set, or false and *out untouched. */
static inline bool confab_parse_uint(const char *text, uint64_t min, uint64_t max,
				     uint64_t *out)
{
	uint64_t v = 0;

	if (text == NULL || *text == '\0')
		return false;
	for (const char *p = text; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return false;
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (v < min || v > max)
		return false;
	*out = v;
	return true;
}

/* The same for a signed number: an optional '-' then digits. */
static inline bool confab_parse_int(const char *text, int64_t min, int64_t max, int64_t *out)
{
	bool negative = text != NULL && *text == '-';
	uint64_t mag;

	if (text == NULL || !confab_parse_uint(text + negative, 0, (uint64_t)INT64_MAX + negative,
					       &mag))
		return false;
	int64_t v = negative ? (mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag)
			     : (int64_t)mag;
	if (v < min || v > max)
		return false;
	*out = v;
	return true;
}

#ifdef __cplusplus
}
#endif

#endif /* CONFAB_UTIL_H */
