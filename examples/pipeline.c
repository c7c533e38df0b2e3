/* pipeline.c - a two-stage pipeline across workers, driven through named channels.
 *
 *   pipeline [file]        (reads standard input without a file)
 *
 * The host reads text lines and sends each one to the channel "lines". In the pool, one worker
 * runs `parse`: it takes lines, splits them into lowercase words and sends each line's words
 * (a table) to the channel "words". Another worker runs `aggregate`: it counts the words and,
 * once "words" is closed and drained, returns the counts. Closing is how the end of the stream
 * travels down the pipeline: the host closes "lines" at end of input, `parse` closes "words"
 * when "lines" is drained. The host prints the totals and the ten most frequent words.
 *
 * Both stages block in channel calls for as long as the stream lasts, so the pool needs a
 * worker per stage. Every value crossing a channel is a copied message: the stages share
 * nothing but the channels. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp_pool.h"

static const char *STAGES =
    "function parse()\n"
    "  local inp, out = interp.channel('lines'), interp.channel('words')\n"
    "  local n = 0\n"
    "  while true do\n"
    "    local line, err = inp:recv()\n"
    "    if err == 'closed' then break end\n"
    "    local words = {}\n"
    "    for w in line:lower():gmatch('%a+') do words[#words + 1] = w end\n"
    "    if #words > 0 then out:send(words) end\n"
    "    n = n + 1\n"
    "  end\n"
    "  out:close()\n"
    "  return n\n"
    "end\n"
    "function aggregate()\n"
    "  local inp = interp.channel('words')\n"
    "  local counts, total = {}, 0\n"
    "  while true do\n"
    "    local words, err = inp:recv()\n"
    "    if err == 'closed' then break end\n"
    "    for _, w in ipairs(words) do counts[w] = (counts[w] or 0) + 1 end\n"
    "    total = total + #words\n"
    "  end\n"
    "  return counts, total\n"
    "end\n";

typedef struct word_count {
    const char *word; /* points into the result message */
    int len;
    long long count;
} word_count;

static int by_count(const void *a, const void *b)
{
    const word_count *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    int n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->word, y->word, (size_t)n);
    return c ? c : x->len - y->len;
}

/* Send the lines of `in` to ch, one message each. Stops early (returning the error) if the
 * parse stage has ended: a sender must not wait forever on a consumer that is gone. */
static int feed(FILE *in, interp_chan *ch, interp_future *parse, long *lines)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int rc = INTERP_OK;
    while (rc == INTERP_OK && (len = getline(&line, &cap, in)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        interp_msg *m = interp_msg_str(line, (size_t)len);
        if (!m) {
            rc = INTERP_ERR_NOMEM;
            break;
        }
        /* wait in slices, so that a dead consumer is noticed */
        while ((rc = interp_chan_send(ch, m, 0.5)) == INTERP_ERR_TIMEOUT)
            if (interp_future_done(parse))
                break;
        if (rc != INTERP_OK)
            interp_msg_free(m); /* a refused message is still ours */
        else
            (*lines)++;
    }
    free(line);
    return rc;
}

/* Print the totals and the ten most frequent words of the aggregate's result
 * (a map word -> count, then the total). */
static int report(const interp_msg *r, long lines)
{
    interp_msg_iter it = interp_msg_iter_init(r);
    interp_msg_value map, total;
    if (!interp_msg_next(&it, &map) || map.type != INTERP_MSG_MAP ||
        !interp_msg_next(&it, &total) || total.type != INTERP_MSG_INT) {
        fprintf(stderr, "pipeline: unexpected result from aggregate\n");
        return 1;
    }
    size_t n = map.as.seq.count;
    word_count *wc = calloc(n ? n : 1, sizeof *wc);
    if (!wc) {
        fprintf(stderr, "pipeline: out of memory\n");
        return 1;
    }
    interp_msg_iter items = map.as.seq.items;
    for (size_t i = 0; i < n; i++) {
        interp_msg_value k, v;
        if (!interp_msg_next(&items, &k) || !interp_msg_next(&items, &v) ||
            k.type != INTERP_MSG_STR || v.type != INTERP_MSG_INT) {
            fprintf(stderr, "pipeline: unexpected entry in the counts\n");
            free(wc);
            return 1;
        }
        wc[i] = (word_count){k.as.str.ptr, (int)k.as.str.len, v.as.i};
    }
    qsort(wc, n, sizeof *wc, by_count);
    printf("lines: %ld  words: %lld  distinct: %zu\n", lines, (long long)total.as.i, n);
    for (size_t i = 0; i < n && i < 10; i++)
        printf("%6lld  %.*s\n", wc[i].count, wc[i].len, wc[i].word);
    free(wc);
    return 0;
}

int main(int argc, char **argv)
{
    FILE *in = stdin;
    if (argc > 2 || (argc == 2 && !(in = fopen(argv[1], "r")))) {
        fprintf(stderr, argc > 2 ? "usage: pipeline [file]\n" : "pipeline: cannot open %s\n",
                argv[1]);
        return 2;
    }
    interp_pool_options o = interp_pool_defaults();
    o.workers = 2; /* one per stage */
    o.init_source = STAGES;
    interp_pool *pool;
    char *err = NULL;
    int rc = interp_pool_create(&pool, &o, &err);
    if (rc != INTERP_OK) {
        fprintf(stderr, "pipeline: %s: %s\n", interp_strerror(rc), err ? err : "");
        free(err);
        return 1;
    }
    interp_chan *lines = NULL;
    interp_future *parse = NULL, *aggregate = NULL;
    int status = 0;
    if ((rc = interp_pool_channel(pool, "lines", 256, &lines)) != INTERP_OK ||
        (rc = interp_pool_submit(pool, "aggregate", NULL, &aggregate)) != INTERP_OK ||
        (rc = interp_pool_submit(pool, "parse", NULL, &parse)) != INTERP_OK) {
        fprintf(stderr, "pipeline: %s\n", interp_strerror(rc));
        status = 1;
        goto out_release;
    }

    long nlines = 0;
    int feed_rc = feed(in, lines, parse, &nlines);
    interp_chan_close(lines); /* end of stream: parse drains, then closes "words" */

    const interp_msg *r;
    if ((rc = interp_future_result(parse, INTERP_FOREVER, NULL)) != INTERP_OK) {
        fprintf(stderr, "pipeline: parse: %s\n", interp_future_error(parse));
        status = 1;
    } else if ((rc = interp_future_result(aggregate, INTERP_FOREVER, &r)) != INTERP_OK) {
        fprintf(stderr, "pipeline: aggregate: %s\n", interp_future_error(aggregate));
        status = 1;
    } else if (feed_rc != INTERP_OK) {
        fprintf(stderr, "pipeline: reading input: %s\n", interp_strerror(feed_rc));
        status = 1;
    } else {
        status = report(r, nlines);
    }
out_release:
    /* if parse failed, aggregate still waits on "words": destroy interrupts it */
    interp_future_release(parse);
    interp_future_release(aggregate);
    interp_chan_release(lines);
    interp_pool_destroy(pool);
    if (in != stdin)
        fclose(in);
    return status;
}
