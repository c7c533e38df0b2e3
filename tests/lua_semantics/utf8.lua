local s = "héllo wörld ✓ 😀"
print(utf8.len(s), #s, utf8.char(72, 233, 10003, 128512), utf8.codepoint(s, 1, 3))
for p, c in utf8.codes("aé✓") do print(p, c) end
print(utf8.offset(s, 3), utf8.offset(s, -1), utf8.offset(s, 0, 3), utf8.len(s, 3), utf8.len("\xff"))
print(pcall(utf8.codepoint, "\xff"))
print(pcall(utf8.char, -1))
print(utf8.len("\u{7FFFFFFF}", 1, -1, true), utf8.len("\u{7FFFFFFF}"), utf8.char(0x7FFFFFFF):byte(1, -1))
print(pcall(function() for _ in utf8.codes("a\xffb") do end end))
print(utf8.codepoint("\u{10FFFF}"), pcall(utf8.codepoint, "\u{110000}"), utf8.codepoint("\u{110000}", 1, 1, true))
