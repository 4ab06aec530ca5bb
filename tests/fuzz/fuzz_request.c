/* libFuzzer target: one client text frame, as the router handles it.
 *
 * The bytes go through utf8_valid (the router closes with 1007 when it
 * fails) and, whatever it says, through protocol_parse: the parser must
 * survive any input. Then the frame the router would answer with is
 * built: the error frame (echoing the ref) for a refusal; for a request,
 * its reply and, for send and direct, the message the recipients get,
 * with the body as json_dumps writes it. Every frame built must itself
 * be UTF-8 and parse as a JSON object: when one does not, the target
 * aborts, and libFuzzer keeps the input.
 *
 * Built and run by tools/run-fuzz; see tests/fuzz/README.md.
 *
 * SPDX-License-Identifier: MIT
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "buf.h"
#include "protocol.h"
#include "utf8.h"

/* The headroom the ws transport asks for is irrelevant here; any value
 * exercises the same code. */
#define FUZZ_HEADROOM 16

static void check_frame(confab_buf *frame, const char *what)
{
	json_error_t jerr;
	json_t *v;

	if (frame == NULL)
		return;  /* out of memory is an answer, not a bug */
	if (!utf8_valid(frame->data, frame->len)) {
		fprintf(stderr, "%s frame is not UTF-8: %.*s\n", what,
			(int)frame->len, (const char *)frame->data);
		abort();
	}
	v = json_loadb((const char *)frame->data, frame->len, 0, &jerr);
	if (v == NULL || !json_is_object(v)) {
		fprintf(stderr, "%s frame is not a JSON object (%s): %.*s\n",
			what, v ? "not an object" : jerr.text, (int)frame->len,
			(const char *)frame->data);
		abort();
	}
	json_decref(v);
	buf_unref(frame);
}

/* What the recipients of a send or direct get: the sender's own bytes of
 * the body, which are the same JSON value jansson parsed. */
static void check_envelope(const request *req)
{
	json_error_t jerr;
	json_t *again = json_loadb(req->body_text, req->body_len, JSON_DECODE_ANY, &jerr);
	confab_envelope env;

	if (again == NULL || !json_equal(again, req->body)) {
		fprintf(stderr, "body text %.*s is not the body jansson read\n",
			(int)req->body_len, req->body_text);
		abort();
	}
	json_decref(again);
	memset(&env, 0, sizeof(env));
	env.size = sizeof(env);
	env.kind = req->type == REQ_DIRECT ? CONFAB_ENV_DIRECT : CONFAB_ENV_MESSAGE;
	env.room = req->room;
	env.from = "fuzz-user";
	env.to = req->to;
	env.id = "node.1.1";
	env.origin = "node.s1";
	env.body = req->body_text;
	env.body_len = req->body_len;
	env.seq = 1;
	env.ts = 1700000000000;
	check_frame(protocol_envelope(FUZZ_HEADROOM, &env), "message");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	request req;
	protocol_error err;
	size_t sent;

	(void)utf8_valid(data, size);
	/* 32: the [broker] max_json_depth default */
	if (protocol_parse((const char *)data, size, 32, &req, &err) != 0) {
		check_frame(protocol_error_frame(FUZZ_HEADROOM, err.code, err.message, req.ref),
			    "error");
		request_free(&req);
		return 0;
	}
	switch (req.type) {
	case REQ_JOIN:
		check_frame(protocol_joined(FUZZ_HEADROOM, req.room, "0123456789abcdef", req.ref),
			    "joined");
		break;
	case REQ_LEAVE:
		check_frame(protocol_simple(FUZZ_HEADROOM, "left", req.room, req.ref), "left");
		break;
	case REQ_SEND:
		check_frame(protocol_ack_room(FUZZ_HEADROOM, req.room, 1, "node.1.1", 1700000000000,
					      req.ref), "ack");
		check_envelope(&req);
		break;
	case REQ_DIRECT:
		check_frame(protocol_ack_direct(FUZZ_HEADROOM, "node.1.1", 1700000000000, req.ref),
			    "ack");
		check_envelope(&req);
		break;
	case REQ_PRESENCE: {
		const char *users[] = { "fuzz-user" };

		check_frame(protocol_presence(FUZZ_HEADROOM, req.room, users, 1, 4096, &sent,
					      req.ref), "presence");
		break;
	}
	case REQ_HISTORY:
		/* the epoch the client sent, as a backplane may echo it */
		check_frame(protocol_history(FUZZ_HEADROOM, req.room, NULL, 0, req.epoch != NULL,
					     req.epoch, 4096, &sent, req.ref), "history");
		break;
	case REQ_PING:
		check_frame(protocol_simple(FUZZ_HEADROOM, "pong", NULL, req.ref), "pong");
		break;
	}
	request_free(&req);
	return 0;
}
