# embed.cmake - turn a text file into a C header holding it as a char array, so that Lua code
# lives in .lua files and is compiled into the binary at build time (lua/CMakeLists.txt).
#   cmake -DIN=<file> -DOUT=<header> -DNAME=<array name> -P embed.cmake
# The header defines `static const char NAME[]` (the bytes plus a NUL; sizeof NAME - 1 is the
# text's length). Bytes are written as hex numbers: no escaping to get wrong.
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n    "
       bytes "${bytes}")
get_filename_component(in_name "${IN}" NAME)
file(WRITE "${OUT}.tmp"
  "/* Generated from ${in_name} by cmake/embed.cmake: edit ${in_name}, not this file. */\n"
  "static const char ${NAME}[] = {\n    ${bytes}0x00\n};\n")
# Only a changed text touches the header (no rebuild of its users otherwise).
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
