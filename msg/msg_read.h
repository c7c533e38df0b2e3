/* msg_read.h - internal: low-level helpers of the C reader (msg_read.c) shared with the
 * builder and the printer. Not installed. */
#ifndef INTERP_MSG_READ_H
#define INTERP_MSG_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "interp_msg.h"

/* Skip `n` whole values starting at *pos, never reading at or past `end`. On success *pos
 * points after the last value skipped and, if tables is not NULL, *tables is increased by the
 * number of arrays and maps met (nested ones included; the contents of extension payloads are
 * not looked at). Returns false, *pos unchanged, if the bytes end early or hold something
 * that is not MessagePack. Iterative: no recursion whatever the nesting. */
bool interp__msg_skip(const char **pos, const char *end, uint64_t n, uint64_t *tables);

/* Step over the head of the value at *pos: its marker, length and scalar bytes, and the
 * payload of a str, bin or extension, but not the elements of an array or map. *type is set;
 * for INTERP_MSG_REF *ref is the index. Returns false, *pos unchanged, on truncation or bytes
 * that start no value. Walking heads one after the other visits every value in order (arrays
 * and maps before their elements), complete or not. */
bool interp__msg_step(const char **pos, const char *end, interp_msg_type *type, uint32_t *ref);

/* Read the value at *pos like interp_msg_next, except that an array or map is not stepped
 * over: *pos ends after its head, v->as.seq.items.left holds how many values follow inside it
 * (maps: keys and values) and v->as.seq.items.end is `end`. Lets a caller that visits every
 * value (the printer) walk in one linear pass. Returns false, *pos unchanged, like
 * interp__msg_step. */
bool interp__msg_read_head(const char **pos, const char *end, interp_msg_value *v);

#endif
