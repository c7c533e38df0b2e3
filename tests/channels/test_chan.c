/* test_chan.c - the C channel API: FIFO, capacity, timeouts, close, select, limits, lifetime,
 * cancellable waits, and a many-producers many-consumers stress run. */
#include <math.h>
#include <pthread.h>
#include <semaphore.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "chan_core.h"
#include "chan_impl.h"
#include "msg_impl.h"
#include "park.h"
#include "sync.h"

/* A one-value message holding an int64 (MessagePack int64: 0xd3 + 8 big-endian bytes). */
static interp_msg *mk(int64_t v)
{
    interp_msg *m = interp__msg_alloc(9, 1, 0);
    assert_non_null(m);
    uint64_t u = (uint64_t)v;
    m->data[0] = (char)0xd3;
    for (int i = 0; i < 8; i++)
        m->data[1 + i] = (char)(u >> (56 - 8 * i));
    return m;
}

static int64_t val(const interp_msg *m)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = (u << 8) | (unsigned char)m->data[1 + i];
    return (int64_t)u;
}

/* Receive one message and return its value, freeing it; -1 on error. */
static int64_t take(interp_chan *ch, double timeout)
{
    interp_msg *m = NULL;
    if (interp_chan_recv(ch, timeout, &m) != INTERP_OK)
        return -1;
    int64_t v = val(m);
    interp_msg_free(m);
    return v;
}

static pthread_t spawn(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fn, arg), 0);
    return t;
}

/* ---- basics ------------------------------------------------------------------------------ */

static void chan_create_invalid(void **state)
{
    (void)state;
    interp_chan *ch = (interp_chan *)1;
    assert_int_equal(interp_chan_create(0, 0, &ch), INTERP_ERR_INVALID);
    assert_null(ch);
    assert_int_equal(interp_chan_create(1, 0, NULL), INTERP_ERR_INVALID);
    assert_int_equal(interp_chan_create(3, 0, &ch), INTERP_OK);
    assert_int_equal(interp_chan_capacity(ch), 3);
    assert_int_equal(interp_chan_len(ch), 0);
    assert_false(interp_chan_is_closed(ch));
    interp_msg *m = mk(1), *out = (interp_msg *)1;
    assert_int_equal(interp_chan_send(NULL, m, 0), INTERP_ERR_INVALID);
    assert_int_equal(interp_chan_send(ch, NULL, 0), INTERP_ERR_INVALID);
    assert_int_equal(interp_chan_send(ch, m, NAN), INTERP_ERR_INVALID);
    assert_int_equal(interp_chan_recv(ch, NAN, &out), INTERP_ERR_INVALID);
    assert_null(out);
    assert_int_equal(interp_chan_recv(NULL, 0, &out), INTERP_ERR_INVALID);
    size_t idx;
    assert_int_equal(interp_chan_select(&ch, 0, 0, &idx, &out), INTERP_ERR_INVALID);
    interp_chan *withnull[2] = {ch, NULL};
    assert_int_equal(interp_chan_select(withnull, 2, 0, &idx, &out), INTERP_ERR_INVALID);
    interp_msg_free(m);
    interp_chan_release(ch);
    interp_chan_release(NULL);
    interp_chan_close(NULL);
}

/* The ring grows on demand: a large capacity costs nothing up front, and order survives
 * growth with the head in the middle of the ring. */
static void chan_fifo_growth(void **state)
{
    (void)state;
    interp_chan *ch;
    assert_int_equal(interp_chan_create(1000, 0, &ch), INTERP_OK);
    int64_t next_out = 0, next_in = 0;
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < 70; i++)
            assert_int_equal(interp_chan_send(ch, mk(next_in++), 0), INTERP_OK);
        for (int i = 0; i < 50; i++)
            assert_int_equal(take(ch, 0), next_out++);
    }
    assert_int_equal(interp_chan_len(ch), (size_t)(next_in - next_out));
    while (next_out < next_in)
        assert_int_equal(take(ch, 0), next_out++);
    assert_int_equal(take(ch, 0), -1);
    interp_chan_release(ch);
}

/* ---- FIFO per sender -------------------------------------------------------------------- */

enum { FIFO_SENDERS = 3, FIFO_EACH = 3000 };

typedef struct {
    interp_chan *ch;
    int id;
    int failures;
} sender_arg;

static void *fifo_sender(void *p)
{
    sender_arg *a = p;
    for (int64_t i = 0; i < FIFO_EACH; i++) {
        interp_msg *m = mk(a->id * 1000000 + i);
        if (interp_chan_send(a->ch, m, INTERP_FOREVER) != INTERP_OK) {
            interp_msg_free(m);
            a->failures++;
        }
    }
    return NULL;
}

static void chan_fifo_per_sender(void **state)
{
    (void)state;
    interp_chan *ch;
    assert_int_equal(interp_chan_create(4, 0, &ch), INTERP_OK);
    sender_arg args[FIFO_SENDERS];
    pthread_t t[FIFO_SENDERS];
    for (int i = 0; i < FIFO_SENDERS; i++) {
        args[i] = (sender_arg){ch, i, 0};
        t[i] = spawn(fifo_sender, &args[i]);
    }
    int64_t next[FIFO_SENDERS] = {0};
    for (int n = 0; n < FIFO_SENDERS * FIFO_EACH; n++) {
        int64_t v = take(ch, INTERP_FOREVER);
        assert_true(v >= 0);
        int id = (int)(v / 1000000);
        assert_in_range(id, 0, FIFO_SENDERS - 1);
        assert_int_equal(v % 1000000, next[id]);
        next[id]++;
    }
    for (int i = 0; i < FIFO_SENDERS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(args[i].failures, 0);
        assert_int_equal(next[i], FIFO_EACH);
    }
    assert_int_equal(interp_chan_len(ch), 0);
    interp_chan_release(ch);
}

/* ---- capacity, blocking, timeouts --------------------------------------------------------- */

typedef struct {
    interp_chan *ch;
    sem_t started;
    int rc;
    int64_t got;
    double timeout;
    interp__cancel *tok;
} op_arg;

static void *blocked_send(void *p)
{
    op_arg *a = p;
    interp_msg *m = mk(99);
    sem_post(&a->started);
    a->rc = interp__chan_send_c(a->ch, m, a->timeout, a->tok);
    if (a->rc != INTERP_OK)
        interp_msg_free(m); /* on error the caller still owns it */
    return NULL;
}

static void *blocked_recv(void *p)
{
    op_arg *a = p;
    interp_msg *m = NULL;
    sem_post(&a->started);
    a->rc = interp__chan_recv_c(a->ch, a->timeout, a->tok, &m);
    a->got = m ? val(m) : -1;
    interp_msg_free(m);
    return NULL;
}

static void chan_capacity_blocks(void **state)
{
    (void)state;
    interp_chan *ch;
    assert_int_equal(interp_chan_create(2, 0, &ch), INTERP_OK);
    assert_int_equal(interp_chan_send(ch, mk(1), 0), INTERP_OK);
    assert_int_equal(interp_chan_send(ch, mk(2), 0), INTERP_OK);
    interp_msg *m = mk(3);
    assert_int_equal(interp_chan_send(ch, m, 0), INTERP_ERR_AGAIN);
    double t0 = interp__now();
    assert_int_equal(interp_chan_send(ch, m, 0.02), INTERP_ERR_TIMEOUT);
    assert_true(interp__now() - t0 >= 0.019);
    assert_int_equal(interp_chan_len(ch), 2);
    interp_msg_free(m); /* still ours after the failures */

    /* a sender blocked on the full channel goes on once we take one */
    op_arg a = {.ch = ch, .timeout = INTERP_FOREVER};
    sem_init(&a.started, 0, 0);
    pthread_t t = spawn(blocked_send, &a);
    sem_wait(&a.started);
    assert_int_equal(take(ch, INTERP_FOREVER), 1);
    pthread_join(t, NULL);
    assert_int_equal(a.rc, INTERP_OK);
    assert_int_equal(take(ch, 0), 2);
    assert_int_equal(take(ch, 0), 99);
    sem_destroy(&a.started);

    /* a receiver blocked on the empty channel gets the next message */
    op_arg b = {.ch = ch, .timeout = INTERP_FOREVER};
    sem_init(&b.started, 0, 0);
    t = spawn(blocked_recv, &b);
    sem_wait(&b.started);
    assert_int_equal(interp_chan_send(ch, mk(7), INTERP_FOREVER), INTERP_OK);
    pthread_join(t, NULL);
    assert_int_equal(b.rc, INTERP_OK);
    assert_int_equal(b.got, 7);
    sem_destroy(&b.started);
    interp_chan_release(ch);
}

static void chan_timeouts(void **state)
{
    (void)state;
    interp_chan *ch;
    assert_int_equal(interp_chan_create(1, 0, &ch), INTERP_OK);
    interp_msg *out = (interp_msg *)1;
    assert_int_equal(interp_chan_recv(ch, 0, &out), INTERP_ERR_AGAIN);
    assert_null(out);
    double t0 = interp__now();
    assert_int_equal(interp_chan_recv(ch, 0.03, &out), INTERP_ERR_TIMEOUT);
    assert_true(interp__now() - t0 >= 0.029);
    assert_null(out);
    size_t idx = 5;
    t0 = interp__now();
    assert_int_equal(interp_chan_select(&ch, 1, 0.03, &idx, &out), INTERP_ERR_TIMEOUT);
    assert_true(interp__now() - t0 >= 0.029);
    assert_int_equal(interp_chan_select(&ch, 1, 0, &idx, &out), INTERP_ERR_AGAIN);
    /* try-variants succeed when they can */
    assert_int_equal(interp_chan_send(ch, mk(5), 0), INTERP_OK);
    assert_int_equal(interp_chan_recv(ch, 0, &out), INTERP_OK);
    assert_int_equal(val(out), 5);
    interp_msg_free(out);
    interp_chan_release(ch);
}

/* A waiter's CPU is a hint for the other side only while it spins: a wait that ended leaves
 * none behind (a stale one would make a transfer on that CPU yield for nothing). */
static void chan_spin_hint_cleared_after_waits(void **state)
{
    (void)state;
    interp_chan *ch;
    assert_int_equal(interp_chan_create(1, 0, &ch), INTERP_OK);
    interp_msg *out = NULL;
    assert_int_equal(interp_chan_recv(ch, 0.001, &out), INTERP_ERR_TIMEOUT);
    assert_int_equal(atomic_load(&ch->spin_cpu[CHAN_RECEIVER]), -1);
    assert_int_equal(interp_chan_send(ch, mk(1), 0), INTERP_OK);
    interp_msg *m = mk(2);
    assert_int_equal(interp_chan_send(ch, m, 0.001), INTERP_ERR_TIMEOUT);
    interp_msg_free(m);
    assert_int_equal(atomic_load(&ch->spin_cpu[CHAN_SENDER]), -1);
    assert_int_equal(interp_chan_recv(ch, 0, &out), INTERP_OK);
    assert_int_equal(val(out), 1);
    interp_msg_free(out);
    interp_chan_release(ch);
}

/* ---- close ------------------------------------------------------------------------------- */

enum { CLOSE_WAITERS = 3 };

static void chan_close_wakes_waiters(void **state)
{
    (void)state;
    interp_chan *full, *empty;
    assert_int_equal(interp_chan_create(1, 0, &full), INTERP_OK);
    assert_int_equal(interp_chan_create(1, 0, &empty), INTERP_OK);
    assert_int_equal(interp_chan_send(full, mk(1), 0), INTERP_OK);
    op_arg s[CLOSE_WAITERS], r[CLOSE_WAITERS];
    pthread_t ts[CLOSE_WAITERS], tr[CLOSE_WAITERS];
    for (int i = 0; i < CLOSE_WAITERS; i++) {
        s[i] = (op_arg){.ch = full, .timeout = INTERP_FOREVER};
        r[i] = (op_arg){.ch = empty, .timeout = INTERP_FOREVER};
        sem_init(&s[i].started, 0, 0);
        sem_init(&r[i].started, 0, 0);
        ts[i] = spawn(blocked_send, &s[i]);
        tr[i] = spawn(blocked_recv, &r[i]);
    }
    for (int i = 0; i < CLOSE_WAITERS; i++) {
        sem_wait(&s[i].started);
        sem_wait(&r[i].started);
    }
    interp_chan_close(full);
    interp_chan_close(empty);
    interp_chan_close(empty); /* idempotent */
    for (int i = 0; i < CLOSE_WAITERS; i++) {
        pthread_join(ts[i], NULL);
        pthread_join(tr[i], NULL);
        assert_int_equal(s[i].rc, INTERP_ERR_CLOSED);
        assert_int_equal(r[i].rc, INTERP_ERR_CLOSED);
        sem_destroy(&s[i].started);
        sem_destroy(&r[i].started);
    }
    /* the message queued before close is still there */
    assert_int_equal(take(full, INTERP_FOREVER), 1);
    interp_chan_release(full);
    interp_chan_release(empty);
}

static void chan_close_drains(void **state)
{
    (void)state;
    interp_chan *ch;
    assert_int_equal(interp_chan_create(8, 0, &ch), INTERP_OK);
    for (int i = 0; i < 3; i++)
        assert_int_equal(interp_chan_send(ch, mk(i), 0), INTERP_OK);
    interp_chan_close(ch);
    assert_true(interp_chan_is_closed(ch));
    interp_msg *m = mk(9);
    assert_int_equal(interp_chan_send(ch, m, INTERP_FOREVER), INTERP_ERR_CLOSED);
    interp_msg_free(m);
    for (int i = 0; i < 3; i++)
        assert_int_equal(take(ch, INTERP_FOREVER), i);
    interp_msg *out = (interp_msg *)1;
    assert_int_equal(interp_chan_recv(ch, INTERP_FOREVER, &out), INTERP_ERR_CLOSED);
    assert_null(out);
    assert_int_equal(interp_chan_recv(ch, 0, &out), INTERP_ERR_CLOSED);
    size_t idx;
    assert_int_equal(interp_chan_select(&ch, 1, INTERP_FOREVER, &idx, &out), INTERP_ERR_CLOSED);
    interp_chan_release(ch);
}

/* Messages still queued when the last reference goes are freed (ASan checks). */
static void chan_release_frees_queued(void **state)
{
    (void)state;
    interp_chan *ch;
    assert_int_equal(interp_chan_create(40, 0, &ch), INTERP_OK);
    for (int i = 0; i < 37; i++) /* wraps and grows the ring */
        assert_int_equal(interp_chan_send(ch, mk(i), 0), INTERP_OK);
    assert_int_equal(take(ch, 0), 0);
    interp_chan_release(ch);
}

/* ---- select ------------------------------------------------------------------------------ */

static void chan_select_basic(void **state)
{
    (void)state;
    interp_chan *c[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(interp_chan_create(4, 0, &c[i]), INTERP_OK);
    assert_int_equal(interp_chan_send(c[1], mk(11), 0), INTERP_OK);
    size_t idx = 9;
    interp_msg *m;
    assert_int_equal(interp_chan_select(c, 3, INTERP_FOREVER, &idx, &m), INTERP_OK);
    assert_int_equal(idx, 1);
    assert_int_equal(val(m), 11);
    interp_msg_free(m);
    /* a closed and drained channel among open ones: select waits on for the others */
    interp_chan_close(c[0]);
    assert_int_equal(interp_chan_select(c, 3, 0.01, &idx, &m), INTERP_ERR_TIMEOUT);
    assert_int_equal(interp_chan_send(c[2], mk(22), 0), INTERP_OK);
    assert_int_equal(interp_chan_select(c, 3, 0, &idx, &m), INTERP_OK);
    assert_int_equal(idx, 2);
    interp_msg_free(m);
    /* closed with a message still queued: delivered, then closed */
    assert_int_equal(interp_chan_send(c[1], mk(33), 0), INTERP_OK);
    interp_chan_close(c[1]);
    interp_chan_close(c[2]);
    assert_int_equal(interp_chan_select(c, 3, INTERP_FOREVER, &idx, &m), INTERP_OK);
    assert_int_equal(idx, 1);
    assert_int_equal(val(m), 33);
    interp_msg_free(m);
    assert_int_equal(interp_chan_select(c, 3, INTERP_FOREVER, &idx, &m), INTERP_ERR_CLOSED);
    for (int i = 0; i < 3; i++)
        interp_chan_release(c[i]);
}

/* With every channel ready, service rotates: each channel is served once per round. */
static void chan_select_fair_rotation(void **state)
{
    (void)state;
    enum { N = 4, ROUNDS = 10 };
    interp_chan *c[N];
    for (int i = 0; i < N; i++) {
        assert_int_equal(interp_chan_create(100, 0, &c[i]), INTERP_OK);
        for (int k = 0; k < (i == 0 ? 100 : ROUNDS); k++)
            assert_int_equal(interp_chan_send(c[i], mk(i), 0), INTERP_OK);
    }
    int served[N] = {0};
    for (int r = 0; r < N * ROUNDS; r++) {
        size_t idx;
        interp_msg *m;
        assert_int_equal(interp_chan_select(c, N, 0, &idx, &m), INTERP_OK);
        assert_int_equal(val(m), (int64_t)idx);
        served[idx]++;
        interp_msg_free(m);
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(served[i], ROUNDS);
        interp_chan_release(c[i]);
    }
}

/* A producer keeps channel 0 full all the time; a trickle on channel 1 must still get
 * through: every one of its messages is served within a few selects of its arrival. */
typedef struct {
    interp_chan *ch;
    atomic_bool stop;
    long sent;
} flood_arg;

static void *flood(void *p)
{
    flood_arg *a = p;
    while (!atomic_load(&a->stop)) {
        interp_msg *m = mk(0);
        if (interp_chan_send(a->ch, m, 0.001) == INTERP_OK)
            a->sent++;
        else
            interp_msg_free(m);
    }
    return NULL;
}

static void chan_select_no_starvation(void **state)
{
    (void)state;
    interp_chan *c[2];
    assert_int_equal(interp_chan_create(64, 0, &c[0]), INTERP_OK);
    assert_int_equal(interp_chan_create(64, 0, &c[1]), INTERP_OK);
    flood_arg f = {.ch = c[0]};
    atomic_init(&f.stop, false);
    pthread_t t = spawn(flood, &f);
    long served[2] = {0, 0};
    int max_gap = 0;
    for (int k = 0; k < 200; k++) {
        assert_int_equal(interp_chan_send(c[1], mk(1), 0), INTERP_OK);
        int gap = 0;
        for (;;) {
            size_t idx;
            interp_msg *m;
            assert_int_equal(interp_chan_select(c, 2, INTERP_FOREVER, &idx, &m), INTERP_OK);
            interp_msg_free(m);
            served[idx]++;
            if (idx == 1)
                break;
            gap++;
        }
        if (gap > max_gap)
            max_gap = gap;
    }
    atomic_store(&f.stop, true);
    pthread_join(t, NULL);
    /* round-robin: a ready channel 1 waits behind at most one message of channel 0 */
    assert_true(max_gap <= 1);
    assert_int_equal(served[1], 200);
    interp_chan_release(c[0]);
    interp_chan_release(c[1]);
}

typedef struct {
    interp_chan **chans;
    size_t n;
    sem_t started;
    int rc;
    size_t idx;
    int64_t got;
    interp__cancel *tok;
} sel_arg;

static void *blocked_select(void *p)
{
    sel_arg *a = p;
    interp_msg *m = NULL;
    sem_post(&a->started);
    a->rc = interp__chan_select_c(a->chans, a->n, INTERP_FOREVER, a->tok, &a->idx, &m);
    a->got = m ? val(m) : -1;
    interp_msg_free(m);
    return NULL;
}

static void chan_select_wakes(void **state)
{
    (void)state;
    enum { N = 20 }; /* more than the on-stack node array */
    interp_chan *c[N];
    for (int i = 0; i < N; i++)
        assert_int_equal(interp_chan_create(1, 0, &c[i]), INTERP_OK);
    sel_arg a = {.chans = c, .n = N};
    sem_init(&a.started, 0, 0);
    pthread_t t = spawn(blocked_select, &a);
    sem_wait(&a.started);
    assert_int_equal(interp_chan_send(c[17], mk(170), INTERP_FOREVER), INTERP_OK);
    pthread_join(t, NULL);
    assert_int_equal(a.rc, INTERP_OK);
    assert_int_equal(a.idx, 17);
    assert_int_equal(a.got, 170);

    /* closing every channel wakes a blocked select with CLOSED */
    t = spawn(blocked_select, &a);
    sem_wait(&a.started);
    for (int i = 0; i < N; i++)
        interp_chan_close(c[i]);
    pthread_join(t, NULL);
    assert_int_equal(a.rc, INTERP_ERR_CLOSED);
    sem_destroy(&a.started);
    for (int i = 0; i < N; i++)
        interp_chan_release(c[i]);
}

/* A select registers once per channel, whatever its list: a tenant's list of one channel 10^5
 * times made every send to it walk 10^5 nodes under the channel's lock (host sends 150x
 * slower). Both ways of waiting: a blocked select and a parked one (interp__chan_watch). */
static void chan_select_repeats_register_once(void **state)
{
    (void)state;
    enum { N = 1000 };
    interp_chan *a, *b;
    assert_int_equal(interp_chan_create(1, 0, &a), INTERP_OK);
    assert_int_equal(interp_chan_create(1, 0, &b), INTERP_OK);
    interp_chan *list[N];
    for (int i = 0; i < N; i++)
        list[i] = a;
    list[N - 1] = b; /* registered last */
    sel_arg arg = {.chans = list, .n = N};
    sem_init(&arg.started, 0, 0);
    pthread_t t = spawn(blocked_select, &arg);
    sem_wait(&arg.started);
    for (double end = interp__now() + 60;
         atomic_load(&b->interest[CHAN_RECEIVER]) == 0 && interp__now() < end;)
        usleep(1000);
    assert_int_equal(atomic_load(&b->interest[CHAN_RECEIVER]), 1);
    assert_int_equal(atomic_load(&a->interest[CHAN_RECEIVER]), 1);
    assert_int_equal(interp_chan_send(a, mk(7), INTERP_FOREVER), INTERP_OK);
    pthread_join(t, NULL);
    assert_int_equal(arg.rc, INTERP_OK);
    assert_int_equal(arg.idx, 0); /* the channel's first place in the list */
    assert_int_equal(arg.got, 7);
    assert_int_equal(atomic_load(&a->interest[CHAN_RECEIVER]), 0);
    sem_destroy(&arg.started);

    interp__park park;
    memset(&park, 0, sizeof park);
    bool ready = true;
    void *reg = interp__chan_watch(list, N, false, &park, &ready);
    assert_non_null(reg);
    assert_false(ready);
    assert_int_equal(atomic_load(&a->interest[CHAN_RECEIVER]), 1);
    assert_int_equal(atomic_load(&b->interest[CHAN_RECEIVER]), 1);
    interp__chan_unwatch(reg);
    assert_int_equal(atomic_load(&a->interest[CHAN_RECEIVER]), 0);
    assert_int_equal(atomic_load(&b->interest[CHAN_RECEIVER]), 0);
    interp_chan_release(a);
    interp_chan_release(b);
}

/* ---- limits and lifetime ------------------------------------------------------------------- */

static void chan_max_msg_size(void **state)
{
    (void)state;
    interp_chan *ch;
    assert_int_equal(interp_chan_create(4, 9, &ch), INTERP_OK);
    interp_msg *big = interp__msg_alloc(10, 1, 0);
    assert_non_null(big);
    memset(big->data, 0xc0, 10);
    assert_int_equal(interp_chan_send(ch, big, INTERP_FOREVER), INTERP_ERR_LIMIT);
    interp_msg_free(big);                                        /* refused: still ours */
    assert_int_equal(interp_chan_send(ch, mk(1), 0), INTERP_OK); /* exactly 9 bytes */
    assert_int_equal(take(ch, 0), 1);
    interp_chan_release(ch);
}

enum { REF_THREADS = 4 };

typedef struct {
    interp_chan *ch; /* a reference owned by the thread */
    sem_t *go;
    int id;
    int rc;
} ref_arg;

static void *ref_user(void *p)
{
    ref_arg *a = p;
    sem_wait(a->go);
    interp_msg *m = mk(a->id);
    a->rc = interp_chan_send(a->ch, m, INTERP_FOREVER);
    if (a->rc != INTERP_OK)
        interp_msg_free(m);
    interp_chan_release(a->ch);
    return NULL;
}

/* The host drops its reference while threads still hold theirs; the last one frees. */
static void chan_refcount(void **state)
{
    (void)state;
    interp_chan *ch;
    assert_int_equal(interp_chan_create(REF_THREADS, 0, &ch), INTERP_OK);
    sem_t go;
    sem_init(&go, 0, 0);
    ref_arg a[REF_THREADS];
    pthread_t t[REF_THREADS];
    for (int i = 0; i < REF_THREADS; i++) {
        interp_chan_retain(ch);
        a[i] = (ref_arg){ch, &go, i, -100};
        t[i] = spawn(ref_user, &a[i]);
    }
    /* keep one extra reference to look at the result, then drop the creator's */
    interp_chan_retain(ch);
    interp_chan_release(ch);
    for (int i = 0; i < REF_THREADS; i++)
        sem_post(&go);
    for (int i = 0; i < REF_THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(a[i].rc, INTERP_OK);
    }
    assert_int_equal(interp_chan_len(ch), REF_THREADS);
    interp_chan_release(ch); /* the last: frees the channel and the queued messages */
    sem_destroy(&go);
}

/* ---- cancellable variants -------------------------------------------------------------------- */

static void chan_cancel_wakes(void **state)
{
    (void)state;
    interp_chan *full, *empty;
    assert_int_equal(interp_chan_create(1, 0, &full), INTERP_OK);
    assert_int_equal(interp_chan_create(1, 0, &empty), INTERP_OK);
    assert_int_equal(interp_chan_send(full, mk(1), 0), INTERP_OK);
    interp__cancel tok[3];
    for (int i = 0; i < 3; i++)
        interp__cancel_init(&tok[i]);

    op_arg r = {.ch = empty, .timeout = INTERP_FOREVER, .tok = &tok[0]};
    op_arg s = {.ch = full, .timeout = 60.0, .tok = &tok[1]};
    interp_chan *two[2] = {empty, empty};
    sel_arg x = {.chans = two, .n = 2, .tok = &tok[2]};
    sem_init(&r.started, 0, 0);
    sem_init(&s.started, 0, 0);
    sem_init(&x.started, 0, 0);
    pthread_t tr = spawn(blocked_recv, &r), ts = spawn(blocked_send, &s),
              tx = spawn(blocked_select, &x);
    sem_wait(&r.started);
    sem_wait(&s.started);
    sem_wait(&x.started);
    interp__cancel_fire(&tok[0], INTERP_ERR_CANCELLED);
    interp__cancel_fire(&tok[1], INTERP_ERR_TIMEOUT);
    interp__cancel_fire(&tok[2], INTERP_ERR_SHUTDOWN);
    interp__cancel_fire(&tok[2], INTERP_ERR_CANCELLED); /* the first reason wins */
    pthread_join(tr, NULL);
    pthread_join(ts, NULL);
    pthread_join(tx, NULL);
    assert_int_equal(r.rc, INTERP_ERR_CANCELLED);
    assert_int_equal(s.rc, INTERP_ERR_TIMEOUT);
    assert_int_equal(x.rc, INTERP_ERR_SHUTDOWN);
    assert_int_equal(interp_chan_len(full), 1); /* the cancelled send left nothing behind */

    /* a token fired before the call fails it at once, even with a message waiting */
    interp_msg *m = NULL;
    size_t idx;
    assert_int_equal(interp__chan_recv_c(full, INTERP_FOREVER, &tok[0], &m), INTERP_ERR_CANCELLED);
    assert_null(m);
    assert_int_equal(interp__chan_select_c(&full, 1, 0, &tok[2], &idx, &m), INTERP_ERR_SHUTDOWN);
    /* reset: the token no longer interferes; a NULL token is the plain call */
    interp__cancel_reset(&tok[0]);
    assert_int_equal(interp__chan_recv_c(full, 0, &tok[0], &m), INTERP_OK);
    assert_int_equal(val(m), 1);
    assert_int_equal(interp__chan_send_c(full, m, 0, NULL), INTERP_OK);

    sem_destroy(&r.started);
    sem_destroy(&s.started);
    sem_destroy(&x.started);
    for (int i = 0; i < 3; i++)
        interp__cancel_destroy(&tok[i]);
    interp_chan_release(full);
    interp_chan_release(empty);
}

/* ---- stress ------------------------------------------------------------------------------ */

enum { ST_PRODUCERS = 4, ST_CONSUMERS = 4, ST_EACH = 10000 };

typedef struct {
    interp_chan **chans; /* two channels: producers alternate, consumers recv or select */
    atomic_uchar *seen;
    int id;
    long received;
    int errors;
} stress_arg;

static void *stress_producer(void *p)
{
    stress_arg *a = p;
    for (int64_t i = 0; i < ST_EACH; i++) {
        interp_msg *m = mk(a->id * ST_EACH + i);
        if (interp_chan_send(a->chans[i & 1], m, INTERP_FOREVER) != INTERP_OK) {
            interp_msg_free(m);
            a->errors++;
        }
    }
    return NULL;
}

static void *stress_consumer(void *p)
{
    stress_arg *a = p;
    for (;;) {
        interp_msg *m = NULL;
        size_t idx;
        int rc = a->id & 1 ? interp_chan_select(a->chans, 2, INTERP_FOREVER, &idx, &m)
                           : interp_chan_recv(a->chans[a->id & 2 ? 1 : 0], 0.5, &m);
        if (rc == INTERP_ERR_CLOSED)
            break;
        if (rc == INTERP_ERR_TIMEOUT)
            continue;
        if (rc != INTERP_OK) {
            a->errors++;
            break;
        }
        int64_t v = val(m);
        interp_msg_free(m);
        if (v < 0 || v >= ST_PRODUCERS * ST_EACH || atomic_fetch_add(&a->seen[v], 1) != 0)
            a->errors++;
        a->received++;
    }
    return NULL;
}

static void stress_mpmc(void)
{
    interp_chan *c[2];
    assert_int_equal(interp_chan_create(8, 0, &c[0]), INTERP_OK);
    assert_int_equal(interp_chan_create(3, 0, &c[1]), INTERP_OK);
    atomic_uchar *seen = calloc(ST_PRODUCERS * ST_EACH, sizeof *seen);
    assert_non_null(seen);
    stress_arg pa[ST_PRODUCERS], ca[ST_CONSUMERS];
    pthread_t pt[ST_PRODUCERS], ct[ST_CONSUMERS];
    for (int i = 0; i < ST_CONSUMERS; i++) {
        ca[i] = (stress_arg){c, seen, i, 0, 0};
        ct[i] = spawn(stress_consumer, &ca[i]);
    }
    for (int i = 0; i < ST_PRODUCERS; i++) {
        pa[i] = (stress_arg){c, seen, i, 0, 0};
        pt[i] = spawn(stress_producer, &pa[i]);
    }
    for (int i = 0; i < ST_PRODUCERS; i++) {
        pthread_join(pt[i], NULL);
        assert_int_equal(pa[i].errors, 0);
    }
    interp_chan_close(c[0]);
    interp_chan_close(c[1]);
    long total = 0;
    for (int i = 0; i < ST_CONSUMERS; i++) {
        pthread_join(ct[i], NULL);
        assert_int_equal(ca[i].errors, 0);
        total += ca[i].received;
    }
    assert_int_equal(total, ST_PRODUCERS * ST_EACH);
    for (int i = 0; i < ST_PRODUCERS * ST_EACH; i++)
        assert_int_equal(atomic_load(&seen[i]), 1);
    free(seen);
    interp_chan_release(c[0]);
    interp_chan_release(c[1]);
}

static void chan_stress_mpmc(void **state)
{
    (void)state;
    stress_mpmc();
}

/* The same without spinning: every wait goes through the sleep and wake-up handshake, so a
 * lost wake-up would hang here. */
static void chan_stress_mpmc_sleeping(void **state)
{
    (void)state;
    interp__chan_set_spin(0);
    stress_mpmc();
    interp__chan_set_spin(20000);
}

/* Ping-pong over two channels of capacity 1, without spinning: each hop sleeps and is woken. */
typedef struct {
    interp_chan *in, *out;
    long n;
    int errors;
} pong_arg;

static void *ponger(void *p)
{
    pong_arg *a = p;
    for (long i = 0; i < a->n; i++) {
        interp_msg *m;
        if (interp_chan_recv(a->in, INTERP_FOREVER, &m) != INTERP_OK) {
            a->errors++;
            break;
        }
        if (interp_chan_send(a->out, m, INTERP_FOREVER) != INTERP_OK) {
            interp_msg_free(m);
            a->errors++;
            break;
        }
    }
    return NULL;
}

static void chan_pingpong_sleeping(void **state)
{
    (void)state;
    enum { N = 3000 };
    interp__chan_set_spin(0);
    interp_chan *a, *b;
    assert_int_equal(interp_chan_create(1, 0, &a), INTERP_OK);
    assert_int_equal(interp_chan_create(1, 0, &b), INTERP_OK);
    pong_arg pa = {a, b, N, 0};
    pthread_t t = spawn(ponger, &pa);
    for (long i = 0; i < N; i++) {
        assert_int_equal(interp_chan_send(a, mk(i), INTERP_FOREVER), INTERP_OK);
        /* half the time through select, to drive its waiter too */
        interp_msg *m;
        size_t idx;
        if (i & 1)
            assert_int_equal(interp_chan_recv(b, INTERP_FOREVER, &m), INTERP_OK);
        else
            assert_int_equal(interp_chan_select(&b, 1, INTERP_FOREVER, &idx, &m), INTERP_OK);
        assert_int_equal(val(m), i);
        interp_msg_free(m);
    }
    pthread_join(t, NULL);
    assert_int_equal(pa.errors, 0);
    interp__chan_set_spin(20000);
    interp_chan_release(a);
    interp_chan_release(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chan_create_invalid),
        cmocka_unit_test(chan_fifo_growth),
        cmocka_unit_test(chan_fifo_per_sender),
        cmocka_unit_test(chan_capacity_blocks),
        cmocka_unit_test(chan_timeouts),
        cmocka_unit_test(chan_spin_hint_cleared_after_waits),
        cmocka_unit_test(chan_close_wakes_waiters),
        cmocka_unit_test(chan_close_drains),
        cmocka_unit_test(chan_release_frees_queued),
        cmocka_unit_test(chan_select_basic),
        cmocka_unit_test(chan_select_fair_rotation),
        cmocka_unit_test(chan_select_no_starvation),
        cmocka_unit_test(chan_select_wakes),
        cmocka_unit_test(chan_select_repeats_register_once),
        cmocka_unit_test(chan_max_msg_size),
        cmocka_unit_test(chan_refcount),
        cmocka_unit_test(chan_cancel_wakes),
        cmocka_unit_test(chan_stress_mpmc),
        cmocka_unit_test(chan_stress_mpmc_sleeping),
        cmocka_unit_test(chan_pingpong_sleeping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
