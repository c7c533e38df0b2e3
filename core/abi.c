/* abi.c - what keeps old binaries working with a newer shared library: the version, and the
 * copying of size-tagged structs between the caller's layout and this library's. */
#include <string.h>

#include "core_impl.h"

const char *interp_pool_version(void) { return INTERP_POOL_VERSION_STRING; }

int interp__struct_in(void *dst, size_t dst_size, const void *src, size_t src_size,
                      size_t abi0_size, const char **why)
{
    if (src_size == 0)
        src_size = abi0_size;
    if (src_size < abi0_size) {
        *why = "struct_size: smaller than the first release's struct";
        return INTERP_ERR_INVALID;
    }
    memset(dst, 0, dst_size);
    memcpy(dst, src, src_size < dst_size ? src_size : dst_size);
    for (size_t i = dst_size; i < src_size; i++)
        if (((const unsigned char *)src)[i] != 0) {
            *why = "options from a newer interp_pool header set fields this library does not "
                   "know";
            return INTERP_ERR_INVALID;
        }
    return INTERP_OK;
}

void interp__struct_out(void *dst, size_t dst_size, const void *src, size_t src_size)
{
    memcpy(dst, src, dst_size < src_size ? dst_size : src_size);
    if (dst_size > src_size)
        memset((unsigned char *)dst + src_size, 0, dst_size - src_size);
}
