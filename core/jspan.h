/* Where a member's value lies in JSON text, so that the text a client sent
 * can be passed on byte for byte (a message body is never re-encoded: a
 * re-encoded 0.1 is 0.10000000000000001, and a frame of numbers would grow
 * five times on its way to every member). */
#ifndef CONFAB_CORE_JSPAN_H
#define CONFAB_CORE_JSPAN_H

#include <stdbool.h>
#include <stddef.h>

/* `data` is the text of a JSON object that a strict parser has already
 * accepted (jansson, duplicate keys rejected). Finds the member `name` of
 * that object (not of nested ones; escaped key spellings such as
 * "b\u006fdy" count) and sets *off and *len to the bytes of its value,
 * without the whitespace around it. False when the object has no such
 * member. Never reads outside data[0..size), whatever the text. */
bool jspan_member(const char *data, size_t size, const char *name, size_t *off, size_t *len);

#endif
