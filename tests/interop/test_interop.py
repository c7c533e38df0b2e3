#!/usr/bin/python3
"""Interoperability of interp_pool messages with Debian's python3-msgpack.

usage: test_interop.py MSG_INTEROP_TOOL WORK_DIR

1. Messages built with the C API (msg_interop write-c) are decoded with msgpack.unpackb and
   msgpack.Unpacker and compared with the expected Python values (type-strict: 3 is not 3.0,
   True is not 1; NaN, infinities and -0.0 compared bit for bit).
2. Lua values encoded with interp_msg_from_lua (msg_interop write-lua, once the Lua codec is
   built in) likewise.
3. Values packed by msgpack.packb are written to files; msg_interop read validates them,
   prints them with the C reader (interp_msg_to_text), and decodes them into a lua_State; both
   outputs are compared with text computed here from the same Python values.

Fails (exit 1) with a clear message when python3-msgpack is missing: CI installs it.
"""
import io
import math
import os
import shutil
import struct
import subprocess
import sys

try:
    import msgpack
    from msgpack import ExtType
except ImportError:
    print("FAIL: python3-msgpack is not installed (the interop test needs it; CI installs it "
          "with scripts/deps.sh; by hand: sudo apt-get install -y python3-msgpack)")
    sys.exit(1)

EXT_REF, EXT_FUNCTION = 1, 2
failures = []


def fail(where, what):
    failures.append(f"{where}: {what}")
    print(f"FAIL {where}: {what}")


# ---- type-strict comparison ----------------------------------------------------------------

def same(a, b):
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return struct.pack(">d", a) == struct.pack(">d", b) or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        if len(a) != len(b):
            return False
        for k, v in a.items():
            match = [k2 for k2 in b if same(k, k2)]
            if len(match) != 1 or not same(v, b[match[0]]):
                return False
        return True
    return a == b


def short(v, limit=300):
    s = repr(v)
    return s if len(s) <= limit else s[:limit] + f"... ({len(s)} chars)"


def unpack_all(data):
    u = msgpack.Unpacker(io.BytesIO(data), raw=False, unicode_errors="surrogateescape",
                         strict_map_key=False, max_buffer_size=64 << 20)
    return list(u)


def check_decoded(where, data, expected, exact_bytes=False):
    """Decode a message file (a stream of values) and compare with the expected list."""
    try:
        got = unpack_all(data)
    except Exception as e:  # noqa: BLE001 - any decoder error is a failure to report
        fail(where, f"msgpack cannot decode: {e!r}")
        return
    if not same(got, expected):
        fail(where, f"decoded {short(got)}, expected {short(expected)}")
        return
    if len(expected) == 1:  # a one-value message is exactly one standard value
        one = msgpack.unpackb(data, raw=False, unicode_errors="surrogateescape",
                              strict_map_key=False)
        if not same([one], expected):
            fail(where, f"unpackb gave {short(one)}")
            return
    if exact_bytes:  # the smallest forms, as msgpack itself writes them
        want = b"".join(msgpack.packb(v) for v in expected)
        if data != want:
            fail(where, f"bytes differ from msgpack.packb: {data[:40].hex()} vs {want[:40].hex()}")
            return
    print(f"ok   {where}")


def sesc(b):
    return b.decode("utf-8", "surrogateescape")


# ---- 1. messages built with the C API (names and values: c_cases in msg_interop.c) ---------

INF = float("inf")
C_CASES = {
    "scalars": ([None, True, False, 0, 1, 127, 128, 255, 256, 65535, 65536, 4294967295,
                 4294967296, 2**63 - 1, -1, -32, -33, -128, -129, -32768, -32769, -2**31,
                 -2**31 - 1, -2**63], True),
    "floats": ([3, 3.0, 0.1, -0.0, 0.0, INF, -INF, float("nan"), sys.float_info.max, 5e-324,
                1e300, -2.5], False),
    "strings": (["", "hello", "a\x00b", "h\u00e9llo \u20ac", "a" * 31, "b" * 32, "c" * 255,
                 "d" * 256, "e" * 65535, "f" * 65536], True),
    "binary": ([sesc(b"\xff\xfe\x00\x80")], False),
    "nested": ([[1, [2, [3, []]], {"a": 1, "b": [True, None], 5: "five", -1: {}}]], True),
    "big_string": ([sesc(bytes(i % 251 for i in range(1 << 20)))], False),
    "big_array": ([[i * 3 - 1000 for i in range(100000)]], True),
    "multi": ([1, "two", 3.5], True),
    "ext": ([[[], ExtType(EXT_REF, b"\x01")]], False),
    "empty": ([], True),
}

# ---- 2. Lua values encoded by interp_msg_from_lua (chunks: lua_cases in msg_interop.c) -----

LUA_CASES = {
    "lua_scalars": [None, True, False, 0, 3, 3.0, -1, 2**63 - 1, -2**63, 0.1, -0.0, INF, -INF,
                    float("nan"), 255, 256, -33, 65536, 2.0**53],
    "lua_strings": ["", "hello", "a\x00b", "h\u00e9llo", "x" * 300, "y" * 70000,
                    sesc(b"\xff\xfe")],
    "lua_tables": [[1, 2, 3], {"x": 1}, {1: 10, 2: 20, "n": 2}, {1: "a", 3: "c"},
                   [[1, [2]], {"a": {"b": {"c": True}}}], {-1: "m", 2.5: "f"}],
    "lua_big": [[i * 0.5 for i in range(1, 100001)], "\x00z" * (1 << 19)],
    # shared and cyclic tables: a back-reference is the distance back to an object begun
    # earlier (msg_impl.h): 1 = the most recent one
    "lua_shared": [[[1], ExtType(EXT_REF, b"\x01")]],
    "lua_cycle": [[ExtType(EXT_REF, b"\x01")]],
    "lua_none": [],
}


def check_lua_special(where, data, name):
    got = unpack_all(data)
    if name == "lua_empty_table":  # an empty table: an empty array or an empty map
        if not (same(got, [[]]) or same(got, [{}])):
            fail(where, f"decoded {short(got)}, expected [] or {{}}")
            return
    elif name == "lua_function":
        if len(got) != 1 or not isinstance(got[0], ExtType) or got[0].code != EXT_FUNCTION:
            fail(where, f"decoded {short(got)}, expected one ExtType({EXT_FUNCTION}, ...)")
            return
        # the payload is plain MessagePack: bytecode (bin), the number of upvalues, ...
        items = list(msgpack.Unpacker(io.BytesIO(got[0].data), raw=True))
        if not (items and isinstance(items[0], bytes) and items[0].startswith(b"\x1bLua")
                and len(items) > 1 and items[1] == 1):
            fail(where, f"function payload {short(items)}")
            return
    print(f"ok   {where}")


# ---- 3. text the C side must print for bytes packed by Python ------------------------------

LUA_RESERVED = set("and break do else elseif end false for function goto if in local nil not "
                   "or repeat return then true until while".split())


def fmt_float(d):
    """The C printer's float format is Python's repr() (shortest round-trip digits)."""
    if math.isnan(d):
        return "nan"
    if math.isinf(d):
        return "inf" if d > 0 else "-inf"
    return repr(d)


def quote(b):
    """The C printer's string literal: printable ASCII and well-formed UTF-8 as they are."""
    esc = {0x22: '\\"', 0x5c: "\\\\", 7: "\\a", 8: "\\b", 12: "\\f", 10: "\\n", 13: "\\r",
           9: "\\t", 11: "\\v"}
    out, i = ['"'], 0
    while i < len(b):
        c = b[i]
        if c in esc:
            out.append(esc[c])
            i += 1
            continue
        if 0x20 <= c < 0x7f:
            out.append(chr(c))
            i += 1
            continue
        n = 2 if 0xc2 <= c <= 0xdf else 3 if 0xe0 <= c <= 0xef else 4 if 0xf0 <= c <= 0xf4 else 0
        if n:
            try:
                out.append(b[i:i + n].decode("utf-8"))
                if len(b[i:i + n]) == n:
                    i += n
                    continue
            except UnicodeDecodeError:
                pass
        digit_next = i + 1 < len(b) and 0x30 <= b[i + 1] <= 0x39
        out.append("\\%03d" % c if digit_next else "\\%d" % c)
        i += 1
    out.append('"')
    return "".join(out)


def c_text(v):
    if v is None:
        return "nil"
    if v is True or v is False:
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v) if v < 2**63 else fmt_float(float(v))
    if isinstance(v, float):
        return fmt_float(v)
    if isinstance(v, str):
        return quote(v.encode("utf-8", "surrogateescape"))
    if isinstance(v, bytes):
        return quote(v)
    if isinstance(v, ExtType):  # before tuple: ExtType is a namedtuple
        if v.code == EXT_REF:
            return "@ref%d" % int.from_bytes(v.data, "big")
        return "<function>"
    if isinstance(v, (list, tuple)):
        return "{" + ", ".join(c_text(x) for x in v) + "}"
    if isinstance(v, dict):
        parts = []
        for k, x in v.items():
            if (isinstance(k, str) and k.isascii() and (k.isidentifier())
                    and k not in LUA_RESERVED):
                parts.append(f"{k} = {c_text(x)}")
            else:
                parts.append(f"[{c_text(k)}] = {c_text(x)}")
        return "{" + ", ".join(parts) + "}"
    raise TypeError(type(v))


def canon(v):
    """Canonical text of a value as Lua holds it (CANON in msg_interop.c): strings as hex,
    sequences as {a, b}, other tables as {[k] = v} sorted; nil-valued entries vanish."""
    if v is None:
        return "nil"
    if v is True or v is False:
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return fmt_float(v)
    if isinstance(v, str):
        return "x" + v.encode("utf-8", "surrogateescape").hex()
    if isinstance(v, bytes):
        return "x" + v.hex()
    if isinstance(v, (list, tuple)):
        v = {i + 1: x for i, x in enumerate(v)}
    if isinstance(v, dict):
        v = {k: x for k, x in v.items() if x is not None}
        n = len(v)
        if all(type(k) is int for k in v) and set(v) == set(range(1, n + 1)):
            return "{" + ", ".join(canon(v[i]) for i in range(1, n + 1)) + "}"
        return "{" + ", ".join(sorted(f"[{canon(k)}] = {canon(x)}" for k, x in v.items())) + "}"
    raise TypeError(type(v))


def packs(*values, **kw):
    return b"".join(msgpack.packb(v, **kw) for v in values)


FLOATS = [3.0, 3, float("nan"), INF, -INF, 1e-310, 0.1, 1 / 3, 1e15, 1e16, 12345678901234567.0,
          123456789.125, 1e-4, 1.5e-5, 2.0**-1074, sys.float_info.max, -1e300, 0.5, 100.0]
F32 = struct.unpack(">f", struct.pack(">f", 0.1))[0]
INTS = [0, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, -1, -32, -33, -128,
        -129, -32768, -32769, -2**31, -2**31 - 1, -2**63]
NESTED = {1: {2: "x", 3: [1, 2.0]}, "k": {-5: None}, "with space": True, "end": [], 2.5: {}}

# name: (bytes, the values as our side reads them, Lua compares?, exact C text or None)
PY_CASES = {
    "py_ints": (packs(*INTS), INTS, True, None),
    "py_uint64": (packs(2**64 - 1, 2**63), [float(2**64 - 1), float(2**63)], True,
                  "1.8446744073709552e+19, 9.223372036854776e+18"),
    "py_float32": (packs(1.5, 0.1, -0.0, use_single_float=True), [1.5, F32, -0.0], True,
                   "1.5, 0.10000000149011612, -0.0"),
    "py_float64": (packs(*FLOATS), FLOATS, True, None),
    "py_bin": (packs(b"\x00\xffab", b"", bytes(range(256)) * 300, use_bin_type=True),
               [b"\x00\xffab", b"", bytes(range(256)) * 300], True, None),
    "py_str": (packs("h\u00e9llo w\u00f6rld", "tab\there", "", "s" * 40, "t" * 300, "u" * 70000),
               ["h\u00e9llo w\u00f6rld", "tab\there", "", "s" * 40, "t" * 300, "u" * 70000],
               True, None),
    "py_str_as_raw": (packs(b"raw\x01", use_bin_type=False), [b"raw\x01"], True, '"raw\\1"'),
    "py_nested": (packs(NESTED), [NESTED], True,
                  '{[1] = {[2] = "x", [3] = {1, 2.0}}, k = {[-5] = nil}, ["with space"] = true, '
                  '["end"] = {}, [2.5] = {}}'),
    "py_lists": (packs([[], {}, [[]], [None, 1]]), [[[], {}, [[]], [None, 1]]], False,
                 "{{}, {}, {{}}, {nil, 1}}"),
    "py_array16_map16": (packs(list(range(20)), {i: -i for i in range(20)}),
                         [list(range(20)), {i: -i for i in range(20)}], True, None),
    "py_big_array": (packs(list(range(100000))), [list(range(100000))], True, None),
    "py_big_map": (packs({f"k{i}": i for i in range(70000)}), [{f"k{i}": i for i in range(70000)}],
                   True, None),
    "py_stream": (packs(1, "two", [3], {"four": 4.0}), [1, "two", [3], {"four": 4.0}], True,
                  '1, "two", {3}, {four = 4.0}'),
    "py_ref": (packs([[], ExtType(EXT_REF, b"\x01")]), [[[], ExtType(EXT_REF, b"\x01")]], False,
               "{{}, @ref1}"),
    "py_empty": (b"", [], True, ""),
}

# bytes our side must refuse with an error (and never crash on)
PY_BAD = {
    "bad_reserved": b"\xc1",
    "bad_truncated": msgpack.packb([1, 2, 3])[:-1],
    "bad_truncated_str": msgpack.packb("hello")[:-2],
    "bad_unknown_ext": msgpack.packb(ExtType(5, b"x")),
    "bad_ref_nothing": msgpack.packb(ExtType(EXT_REF, b"\x05")),
    "bad_count": b"\xdd\xff\xff\xff\xff\x01",
}


def run(tool, *args):
    return subprocess.run([tool, *args], capture_output=True, timeout=240)


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    tool, work = sys.argv[1], sys.argv[2]
    print(f"python3-msgpack {'.'.join(map(str, msgpack.version))}, tool {tool}")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    features = run(tool, "features").stdout.decode().strip()
    with_lua = features == "lua"
    if not with_lua:
        print("note: the Lua codec is not built in yet; Lua encode/decode checks are skipped")

    # 1. C API -> Python
    r = run(tool, "write-c", work)
    if r.returncode != 0:
        fail("write-c", r.stderr.decode(errors="replace"))
    else:
        for name, (expected, exact) in C_CASES.items():
            with open(os.path.join(work, name + ".mp"), "rb") as f:
                check_decoded(f"c/{name}", f.read(), expected, exact)

    # 2. Lua values -> Python
    if with_lua:
        r = run(tool, "write-lua", work)
        if r.returncode != 0:
            fail("write-lua", r.stderr.decode(errors="replace"))
        else:
            for name in list(LUA_CASES) + ["lua_empty_table", "lua_function"]:
                with open(os.path.join(work, name + ".mp"), "rb") as f:
                    data = f.read()
                if name in LUA_CASES:
                    check_decoded(f"lua/{name}", data, LUA_CASES[name])
                else:
                    check_lua_special(f"lua/{name}", data, name)

    # 3. Python -> C reader and Lua
    for name, (data, values, lua_ok, exact) in PY_CASES.items():
        path = os.path.join(work, name + ".mp")
        with open(path, "wb") as f:
            f.write(data)
        r = run(tool, "read", path)
        out = r.stdout.decode("utf-8", "surrogateescape").split("\n")
        where = f"py/{name}"
        if r.returncode != 0:
            fail(where, f"read failed ({r.returncode}): {short(out)} {r.stderr.decode()[:300]}")
            continue
        want_c = ", ".join(c_text(v) for v in values)
        if exact is not None and exact != want_c:
            fail(where, f"test data: computed {short(want_c)} but the exact text is {exact!r}")
        ok = out[0] == f"count {len(values)}"
        if not ok:
            fail(where, f"{out[0]!r}, expected count {len(values)}")
        elif out[1] != "c: " + want_c:
            fail(where, f"C reader printed {short(out[1])}, expected {short('c: ' + want_c)}")
            ok = False
        elif with_lua and lua_ok:
            want_lua = "lua: " + ", ".join(canon(v) for v in values)
            if out[2] != want_lua:
                fail(where, f"Lua decoded {short(out[2])}, expected {short(want_lua)}")
                ok = False
        if ok:
            print(f"ok   {where}")
    for name, data in PY_BAD.items():
        path = os.path.join(work, name + ".mp")
        with open(path, "wb") as f:
            f.write(data)
        r = run(tool, "read", path)
        out = r.stdout.decode(errors="replace").strip()
        if r.returncode == 2 and out.startswith("error: "):
            print(f"ok   py/{name}: {out}")
        else:
            fail(f"py/{name}", f"expected an error, got exit {r.returncode}: {short(out)} "
                               f"{r.stderr.decode(errors='replace')[:300]}")

    if failures:
        print(f"\n{len(failures)} interop check(s) FAILED")
        return 1
    print("\nall interop checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
