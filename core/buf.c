/* The buffer sits behind a small header that holds the reference count, so
 * transports see only the public confab_buf. */
#include "buf.h"

#include "utf8.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct core_buf {
	confab_buf pub;     /* first: a confab_buf * is a core_buf * */
	unsigned refs;
	unsigned char mem[];
} core_buf;

confab_buf *buf_new(size_t headroom, size_t len)
{
	core_buf *b = malloc(sizeof(*b) + headroom + len + 1);
	if (!b)
		return NULL;
	b->refs = 1;
	b->pub.headroom = headroom;
	b->pub.data = b->mem + headroom;
	b->pub.len = len;
	return &b->pub;
}

void buf_ref(confab_buf *buf)
{
	((core_buf *)buf)->refs++;
}

void buf_unref(confab_buf *buf)
{
	if (!buf)
		return;
	core_buf *b = (core_buf *)buf;
	if (--b->refs == 0)
		free(b);
}

void fb_init(frame_builder *fb, size_t headroom, size_t size_hint)
{
	fb->cap = size_hint < 64 ? 64 : size_hint;
	fb->buf = buf_new(headroom, fb->cap);
	fb->failed = fb->buf == NULL;
	if (fb->buf)
		fb->buf->len = 0;
}

static bool reserve(frame_builder *fb, size_t more)
{
	if (fb->failed)
		return false;
	if (fb->buf->len + more <= fb->cap)
		return true;
	size_t cap = fb->cap * 2;
	while (cap < fb->buf->len + more)
		cap *= 2;
	core_buf *old = (core_buf *)fb->buf;
	core_buf *b = realloc(old, sizeof(*b) + old->pub.headroom + cap + 1);
	if (!b) {
		fb->failed = true;
		return false;
	}
	b->pub.data = b->mem + b->pub.headroom;
	fb->buf = &b->pub;
	fb->cap = cap;
	return true;
}

void fb_add(frame_builder *fb, const void *data, size_t len)
{
	if (!reserve(fb, len))
		return;
	memcpy(fb->buf->data + fb->buf->len, data, len);
	fb->buf->len += len;
}

void fb_str(frame_builder *fb, const char *text)
{
	fb_add(fb, text, strlen(text));
}

void fb_printf(frame_builder *fb, const char *fmt, ...)
{
	char small[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0) {
		fb->failed = true;
		return;
	}
	if ((size_t)n < sizeof(small)) {
		fb_add(fb, small, (size_t)n);
		return;
	}
	if (!reserve(fb, (size_t)n + 1))
		return;
	va_start(ap, fmt);
	vsnprintf((char *)fb->buf->data + fb->buf->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	fb->buf->len += (size_t)n;
}

void fb_uint(frame_builder *fb, uint64_t v)
{
	fb_printf(fb, "%" PRIu64, v);
}

void fb_int(frame_builder *fb, int64_t v)
{
	fb_printf(fb, "%" PRId64, v);
}

void fb_json_string(frame_builder *fb, const char *text)
{
	static const char hex[] = "0123456789abcdef";
	fb_add(fb, "\"", 1);
	const unsigned char *p = (const unsigned char *)text;
	const unsigned char *run = p;
	while (*p) {
		size_t n = utf8_sequence(p, SIZE_MAX);
		if (n > 1 || (n == 1 && *p >= 0x20 && *p != '"' && *p != '\\')) {
			p += n;
			continue;
		}
		fb_add(fb, run, (size_t)(p - run));
		if (n == 0) {
			/* not UTF-8 (e.g. a name cut in the middle of a character):
			 * the frame must stay valid JSON, so say U+FFFD instead */
			fb_add(fb, "\\ufffd", 6);
		} else if (*p == '"' || *p == '\\') {
			char esc[2] = { '\\', (char)*p };
			fb_add(fb, esc, 2);
		} else {
			char esc[6] = { '\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15] };
			fb_add(fb, esc, 6);
		}
		p++;
		run = p;
	}
	fb_add(fb, run, (size_t)(p - run));
	fb_add(fb, "\"", 1);
}

/* Bytes a finished frame may have unused at its end before it is
 * shrunk: a frame waits in queues (up to [ws] send_queue_max, which
 * counts its length), so a large one should not hold twice that. */
#define FB_SLACK_MAX 4096

confab_buf *fb_finish(frame_builder *fb)
{
	if (!fb->failed && fb->cap - fb->buf->len > FB_SLACK_MAX) {
		core_buf *old = (core_buf *)fb->buf;
		core_buf *b = realloc(old, sizeof(*b) + old->pub.headroom + old->pub.len + 1);
		if (b) {   /* else keep the larger one */
			b->pub.data = b->mem + b->pub.headroom;
			fb->buf = &b->pub;
		}
	}
	confab_buf *out = fb->failed ? NULL : fb->buf;
	if (fb->failed)
		buf_unref(fb->buf);
	fb->buf = NULL;
	fb->failed = true;
	return out;
}

void fb_discard(frame_builder *fb)
{
	buf_unref(fb->buf);
	fb->buf = NULL;
	fb->failed = true;
}
