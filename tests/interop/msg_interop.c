/* msg_interop.c - the C side of the interoperability test with Debian's python3-msgpack
 * (driven by test_interop.py).
 *
 *   msg_interop features          prints "lua" when the Lua codec is built in, else "c"
 *   msg_interop write-c DIR       writes DIR/<case>.mp, messages built with the C API
 *   msg_interop write-lua DIR     writes DIR/<case>.mp, Lua values encoded with
 *                                 interp_msg_from_lua (only with the Lua codec)
 *   msg_interop read FILE         validates FILE with interp_msg_from_bytes and prints
 *                                   count <n>
 *                                   c: <interp_msg_to_text of the message>
 *                                   lua: <canonical text of the values decoded into a
 *                                         lua_State by interp_msg_to_lua>  (with the codec)
 *                                 or "error: <status>: <reason>" and exit status 2.
 *
 * Every other failure prints a reason and exits with status 1.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "interp_msg.h"
#include "msg_impl.h"

#ifdef INTERP_INTEROP_LUA
#include <lauxlib.h>
#include <lualib.h>

#include "interp_msg_lua.h"
#endif

static void die(const char *what, int rc)
{
    fprintf(stderr, "msg_interop: %s: %s\n", what, rc ? interp_strerror(rc) : strerror(errno));
    exit(1);
}

static void check(int rc, const char *what)
{
    if (rc != INTERP_OK)
        die(what, rc);
}

static void write_file(const char *dir, const char *name, const interp_msg *m)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.mp", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f)
        die(path, 0);
    size_t n = interp_msg_size(m);
    if ((n && fwrite(interp_msg_data(m), 1, n, f) != n) || fclose(f) != 0)
        die(path, 0);
}

/* ---- messages built with the C API (expected values: C_CASES in test_interop.py) ------- */

typedef void (*build_fn)(interp_msg_builder *b);

static void build_scalars(interp_msg_builder *b)
{
    static const int64_t ints[] = {
        0,         1,  127, 128, 255,  256,  65535,  65536,  4294967295LL, 4294967296LL,
        INT64_MAX, -1, -32, -33, -128, -129, -32768, -32769, INT32_MIN,    (int64_t)INT32_MIN - 1,
        INT64_MIN};
    check(interp_msg_add_nil(b), "nil");
    check(interp_msg_add_bool(b, true), "true");
    check(interp_msg_add_bool(b, false), "false");
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++)
        check(interp_msg_add_int(b, ints[i]), "int");
}

static void build_floats(interp_msg_builder *b)
{
    const double d[] = {3.0, 0.1,     -0.0,   0.0,   INFINITY, -INFINITY,
                        NAN, DBL_MAX, 5e-324, 1e300, -2.5};
    check(interp_msg_add_int(b, 3), "int"); /* 3 and 3.0 stay distinct */
    for (size_t i = 0; i < sizeof d / sizeof *d; i++)
        check(interp_msg_add_double(b, d[i]), "double");
}

static void add_repeated(interp_msg_builder *b, char c, size_t n)
{
    char *s = malloc(n ? n : 1);
    if (!s)
        die("malloc", INTERP_ERR_NOMEM);
    memset(s, c, n);
    check(interp_msg_add_str(b, s, n), "str");
    free(s);
}

static void build_strings(interp_msg_builder *b)
{
    check(interp_msg_add_cstr(b, ""), "str");
    check(interp_msg_add_cstr(b, "hello"), "str");
    check(interp_msg_add_str(b, "a\0b", 3), "str");
    check(interp_msg_add_cstr(b, "h\xc3\xa9llo \xe2\x82\xac"), "str"); /* UTF-8 */
    add_repeated(b, 'a', 31);                                          /* fixstr */
    add_repeated(b, 'b', 32);                                          /* str8 */
    add_repeated(b, 'c', 255);
    add_repeated(b, 'd', 256); /* str16 */
    add_repeated(b, 'e', 65535);
    add_repeated(b, 'f', 65536); /* str32 */
}

static void build_binary(interp_msg_builder *b)
{
    check(interp_msg_add_str(b, "\xff\xfe\x00\x80", 4), "str"); /* not UTF-8 */
}

static void build_nested(interp_msg_builder *b)
{
    /* [1, [2, [3, []]], {"a": 1, "b": [true, None], 5: "five", -1: {}}] */
    check(interp_msg_add_array(b, 3), "array");
    check(interp_msg_add_int(b, 1), "int");
    check(interp_msg_add_array(b, 2), "array");
    check(interp_msg_add_int(b, 2), "int");
    check(interp_msg_add_array(b, 2), "array");
    check(interp_msg_add_int(b, 3), "int");
    check(interp_msg_add_array(b, 0), "array");
    check(interp_msg_add_map(b, 4), "map");
    check(interp_msg_add_cstr(b, "a"), "str");
    check(interp_msg_add_int(b, 1), "int");
    check(interp_msg_add_cstr(b, "b"), "str");
    check(interp_msg_add_array(b, 2), "array");
    check(interp_msg_add_bool(b, true), "bool");
    check(interp_msg_add_nil(b), "nil");
    check(interp_msg_add_int(b, 5), "int");
    check(interp_msg_add_cstr(b, "five"), "str");
    check(interp_msg_add_int(b, -1), "int");
    check(interp_msg_add_map(b, 0), "map");
}

static void build_big_string(interp_msg_builder *b)
{
    size_t n = 1 << 20;
    char *s = malloc(n);
    if (!s)
        die("malloc", INTERP_ERR_NOMEM);
    for (size_t i = 0; i < n; i++)
        s[i] = (char)(i % 251); /* NUL bytes every 251 */
    check(interp_msg_add_str(b, s, n), "str");
    free(s);
}

static void build_big_array(interp_msg_builder *b)
{
    check(interp_msg_add_array(b, 100000), "array");
    for (int i = 0; i < 100000; i++)
        check(interp_msg_add_int(b, (int64_t)i * 3 - 1000), "int");
}

static void build_multi(interp_msg_builder *b)
{
    interp_msg *parts[] = {interp_msg_int(1), interp_msg_cstr("two"), interp_msg_double(3.5)};
    for (int i = 0; i < 3; i++) {
        if (!parts[i])
            die("constructor", INTERP_ERR_NOMEM);
        check(interp_msg_add_msg(b, parts[i]), "add_msg");
        interp_msg_free(parts[i]);
    }
}

static void build_ext(interp_msg_builder *b)
{
    /* [[], ref 1]: a back-reference to the inner table (distance 1), as the Lua codec writes
     * a shared table; appended from bytes validated by interp_msg_from_bytes */
    const unsigned char bytes[] = {0x92, 0x90, 0xd4, INTERP_MSG_EXT_REF, 0x01};
    interp_msg *m;
    check(interp_msg_from_bytes(bytes, sizeof bytes, 0, &m), "from_bytes");
    check(interp_msg_add_msg(b, m), "add_msg");
    interp_msg_free(m);
}

static void build_empty(interp_msg_builder *b) { (void)b; }

static const struct {
    const char *name;
    build_fn build;
} c_cases[] = {
    {"scalars", build_scalars},     {"floats", build_floats}, {"strings", build_strings},
    {"binary", build_binary},       {"nested", build_nested}, {"big_string", build_big_string},
    {"big_array", build_big_array}, {"multi", build_multi},   {"ext", build_ext},
    {"empty", build_empty},
};

static int write_c(const char *dir)
{
    for (size_t i = 0; i < sizeof c_cases / sizeof *c_cases; i++) {
        interp_msg_builder *b = interp_msg_builder_new();
        if (!b)
            die("builder", INTERP_ERR_NOMEM);
        c_cases[i].build(b);
        interp_msg *m;
        check(interp_msg_builder_finish(b, &m), c_cases[i].name);
        write_file(dir, c_cases[i].name, m);
        interp_msg_free(m);
    }
    return 0;
}

#ifdef INTERP_INTEROP_LUA
/* ---- Lua values encoded with interp_msg_from_lua (expected: LUA_CASES in the script) --- */

static const struct {
    const char *name;
    const char *chunk; /* returns the values to encode */
} lua_cases[] = {
    {"lua_scalars", "return nil, true, false, 0, 3, 3.0, -1, math.maxinteger, math.mininteger,"
                    " 0.1, -0.0, 1/0, -1/0, 0/0, 255, 256, -33, 65536, 2^53"},
    {"lua_strings", "return '', 'hello', 'a\\0b', 'h\\u{e9}llo', ('x'):rep(300),"
                    " ('y'):rep(70000), '\\xff\\xfe'"},
    {"lua_tables", "return {1, 2, 3}, {x = 1}, {10, 20, n = 2}, {[1] = 'a', [3] = 'c'},"
                   " {{1, {2}}, {a = {b = {c = true}}}}, {[-1] = 'm', [2.5] = 'f'}"},
    {"lua_empty_table", "return {}"},
    {"lua_big", "local t = {} for i = 1, 100000 do t[i] = i * 0.5 end"
                " return t, ('\\0z'):rep(1 << 19)"},
    {"lua_shared", "local t = {1} return {t, t}"},
    {"lua_cycle", "local t = {} t[1] = t return t"},
    {"lua_function", "local k = 42 return function(x) return x + k end"},
    {"lua_none", "return"},
};

static lua_State *new_state(void)
{
    lua_State *L = luaL_newstate();
    if (!L)
        die("luaL_newstate", INTERP_ERR_NOMEM);
    luaL_openlibs(L);
    return L;
}

static int write_lua(const char *dir)
{
    for (size_t i = 0; i < sizeof lua_cases / sizeof *lua_cases; i++) {
        lua_State *L = new_state();
        if (luaL_loadstring(L, lua_cases[i].chunk) != LUA_OK ||
            lua_pcall(L, 0, LUA_MULTRET, 0) != LUA_OK) {
            fprintf(stderr, "msg_interop: %s: %s\n", lua_cases[i].name, lua_tostring(L, -1));
            exit(1);
        }
        interp_msg_opts opts = {.allow_functions = true};
        interp_msg_error err = {{0}};
        interp_msg *m;
        int rc = interp_msg_from_lua(L, 1, lua_gettop(L), &opts, &m, &err);
        if (rc != INTERP_OK) {
            fprintf(stderr, "msg_interop: %s: %s: %s\n", lua_cases[i].name, interp_strerror(rc),
                    err.text);
            exit(1);
        }
        write_file(dir, lua_cases[i].name, m);
        interp_msg_free(m);
        lua_close(L);
    }
    return 0;
}

/* Canonical text of Lua values, the same as canon() in test_interop.py computes from the
 * Python values: integers and floats told apart, floats printed the way the C printer does,
 * strings as hex bytes, sequences as {a, b}, other tables as {[k] = v} sorted by key text. */
static const char CANON[] =
    "local function fmt(d)\n"
    "  if d ~= d then return 'nan' end\n"
    "  if d == math.huge then return 'inf' elseif d == -math.huge then return '-inf' end\n"
    "  local p = 1\n"
    "  while p < 17 and tonumber(string.format('%.' .. (p - 1) .. 'e', d)) ~= d do p = p + 1 end\n"
    "  local x = tonumber(string.format('%.' .. (p - 1) .. 'e', d):match('e([-+]%d+)'))\n"
    "  local s = string.format('%.' .. (p - 1) .. 'e', d)\n"
    "  if x >= -4 and x < 16 then s = string.format('%.' .. math.max(p, x + 1) .. 'g', d) end\n"
    "  if not s:find('[%.eE]') then s = s .. '.0' end\n"
    "  return s\n"
    "end\n"
    "local canon\n"
    "local function seqlen(t)\n"
    "  local n, count = #t, 0\n"
    "  for _ in pairs(t) do count = count + 1 end\n"
    "  if count ~= n then return nil end\n"
    "  for i = 1, n do if t[i] == nil then return nil end end\n"
    "  return n\n"
    "end\n"
    "canon = function(v, seen)\n"
    "  local ty = type(v)\n"
    "  if ty == 'nil' or ty == 'boolean' then return tostring(v) end\n"
    "  if ty == 'number' then\n"
    "    if math.type(v) == 'integer' then return string.format('%d', v) end\n"
    "    return fmt(v)\n"
    "  end\n"
    "  if ty == 'string' then return 'x' .. v:gsub('.', function(c) return string.format('%02x', "
    "c:byte()) end) end\n"
    "  if ty == 'function' then return '<function>' end\n"
    "  if ty ~= 'table' then return '<' .. ty .. '>' end\n"
    "  if seen[v] then return '<cycle>' end\n"
    "  seen[v] = true\n"
    "  local parts = {}\n"
    "  local n = seqlen(v)\n"
    "  if n then\n"
    "    for i = 1, n do parts[i] = canon(v[i], seen) end\n"
    "  else\n"
    "    for k, x in pairs(v) do parts[#parts + 1] = '[' .. canon(k, seen) .. '] = ' .. canon(x, "
    "seen) end\n"
    "    table.sort(parts)\n"
    "  end\n"
    "  seen[v] = nil\n"
    "  return '{' .. table.concat(parts, ', ') .. '}'\n"
    "end\n"
    "local out = {}\n"
    "for i = 1, select('#', ...) do out[i] = canon((select(i, ...)), {}) end\n"
    "return table.concat(out, ', ')\n";

/* Decode m into a fresh state and print the canonical text of its values. */
static void print_lua(const interp_msg *m)
{
    lua_State *L = new_state();
    if (luaL_loadstring(L, CANON) != LUA_OK)
        die("canon chunk", INTERP_ERR_SCRIPT);
    interp_msg_opts opts = {.allow_functions = true};
    interp_msg_error err = {{0}};
    int rc = interp_msg_to_lua(L, m, &opts, &err);
    if (rc != INTERP_OK) {
        printf("lua-error: %s: %s\n", interp_strerror(rc), err.text);
        lua_close(L);
        return;
    }
    if (lua_pcall(L, (int)interp_msg_count(m), 1, 0) != LUA_OK) {
        fprintf(stderr, "msg_interop: canon: %s\n", lua_tostring(L, -1));
        exit(1);
    }
    printf("lua: %s\n", lua_tostring(L, -1));
    lua_close(L);
}
#endif

static int read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die(path, 0);
    size_t cap = 1 << 16, len = 0;
    char *data = malloc(cap);
    if (!data)
        die("malloc", INTERP_ERR_NOMEM);
    size_t n;
    while ((n = fread(data + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            char *d2 = realloc(data, cap *= 2);
            if (!d2)
                die("realloc", INTERP_ERR_NOMEM);
            data = d2;
        }
    }
    if (ferror(f))
        die(path, 0);
    fclose(f);

    interp_msg *m;
    int rc = interp_msg_from_bytes(data, len, 0, &m);
    if (rc != INTERP_OK) {
        char why[256] = "";
        uint32_t count, flags;
        interp__msg_validate(data, len, 0, &count, &flags, why, sizeof why);
        printf("error: %s: %s\n", interp_strerror(rc), why);
        free(data);
        return 2;
    }
    free(data);
    char *text;
    check(interp_msg_to_text(m, &text), "to_text");
    printf("count %u\nc: %s\n", (unsigned)interp_msg_count(m), text);
    free(text);
#ifdef INTERP_INTEROP_LUA
    print_lua(m);
#endif
    interp_msg_free(m);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "features") == 0) {
#ifdef INTERP_INTEROP_LUA
        puts("lua");
#else
        puts("c");
#endif
        return 0;
    }
    if (argc == 3 && strcmp(argv[1], "write-c") == 0)
        return write_c(argv[2]);
#ifdef INTERP_INTEROP_LUA
    if (argc == 3 && strcmp(argv[1], "write-lua") == 0)
        return write_lua(argv[2]);
#endif
    if (argc == 3 && strcmp(argv[1], "read") == 0)
        return read_file(argv[2]);
    fprintf(stderr, "usage: msg_interop features | write-c DIR | write-lua DIR | read FILE\n");
    return 1;
}
