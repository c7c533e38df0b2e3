/* TEMP: msgpuck's out-of-line definitions, until channels/msg_check.c (branch msg) lands. */
#define MP_SOURCE 1
#include <msgpuck.h>
