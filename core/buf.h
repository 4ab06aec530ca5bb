/* Outgoing frames: reference-counted confab_buf with headroom for the
 * transports, and a builder that writes a frame's JSON text straight into
 * one. A frame is serialized once and shared by every recipient. */
#ifndef CONFAB_CORE_BUF_H
#define CONFAB_CORE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <confab/common.h>

/* A buffer with room for `len` bytes after `headroom` bytes (the largest
 * any transport asked for: broker->headroom), refs = 1. */
confab_buf *buf_new(size_t headroom, size_t len);
void buf_ref(confab_buf *buf);
void buf_unref(confab_buf *buf);

/* A growable frame under construction. Errors (out of memory) are sticky:
 * fb_finish then returns NULL. */
typedef struct frame_builder {
	confab_buf *buf;
	size_t cap;
	bool failed;
} frame_builder;

void fb_init(frame_builder *fb, size_t headroom, size_t size_hint);
void fb_add(frame_builder *fb, const void *data, size_t len);
void fb_str(frame_builder *fb, const char *text);   /* raw text, no quoting */
void fb_printf(frame_builder *fb, const char *fmt, ...) CONFAB_PRINTF(2, 3);
void fb_uint(frame_builder *fb, uint64_t v);
void fb_int(frame_builder *fb, int64_t v);
/* `text` as a JSON string literal, escaped. */
void fb_json_string(frame_builder *fb, const char *text);
/* Returns the finished frame (refs = 1) or NULL; the builder is reset. */
confab_buf *fb_finish(frame_builder *fb);
void fb_discard(frame_builder *fb);

#endif
