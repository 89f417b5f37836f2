/* The modules compiled into bmaptk. Adding a built-in module is one file in
 * src/sources, src/codecs or src/sinks plus one row here. */
#include "registry_internal.h"

extern const struct bmaptk_module bmaptk_source_file;
extern const struct bmaptk_module bmaptk_source_stdin;
extern const struct bmaptk_module bmaptk_source_url;
extern const struct bmaptk_module bmaptk_codec_gzip;
extern const struct bmaptk_module bmaptk_codec_xz;
extern const struct bmaptk_module bmaptk_codec_bzip2;
extern const struct bmaptk_module bmaptk_codec_zstd;
extern const struct bmaptk_module bmaptk_codec_pack;
extern const struct bmaptk_module bmaptk_codec_simg;
extern const struct bmaptk_module bmaptk_sink_file;
extern const struct bmaptk_module bmaptk_sink_blockdev;
extern const struct bmaptk_module bmaptk_sink_simg;
extern const struct bmaptk_module bmaptk_sink_simg_crc;
extern const struct bmaptk_module bmaptk_sink_null;

/* One module a line. */
/* clang-format off */
const struct bmaptk_module *const bmaptk_builtin_modules[] = {
    &bmaptk_source_file,
    &bmaptk_source_stdin,
    &bmaptk_source_url,
    &bmaptk_codec_gzip,
    &bmaptk_codec_xz,
    &bmaptk_codec_bzip2,
    &bmaptk_codec_zstd,
    &bmaptk_codec_pack,
    &bmaptk_codec_simg,
    &bmaptk_sink_file,
    &bmaptk_sink_blockdev,
    &bmaptk_sink_simg,
    &bmaptk_sink_simg_crc,
    &bmaptk_sink_null,
    NULL,
};
/* clang-format on */
