# The bmap of a file must not depend on which plugins are installed.
# Probing a decoded stream for a container (tar, zip) once read through
# the first hole of an Android sparse image, so with the archive plugin
# loaded `create` mapped an extra all-zero block at offset 0.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd img2simg
PLUGINS=$BMAPTK_BUILD/plugins
[ -f "$PLUGINS/archive.so" ] || skip "the archive plugin is not built"

e2e_ramdir R
for lead in hole data; do
	rm -f "$R/img"
	truncate -s 8M "$R/img"
	[ $lead = data ] && head -c 8192 /dev/urandom |
		dd of="$R/img" conv=notrunc status=none
	head -c 40960 /dev/urandom |
		dd of="$R/img" bs=4096 seek=100 conv=notrunc status=none
	img2simg "$R/img" "$R/img.simg" || fail "img2simg failed"
	bm 0 create "$R/img.simg" -o "$R/without.bmap"
	bm 0 --plugin-dir "$PLUGINS" create "$R/img.simg" -o "$R/with.bmap"
	assert_same_file "$R/without.bmap" "$R/with.bmap" \
		"bmap of an simg starting with $lead, with the archive plugin"
	want=$([ $lead = data ] && echo 12 || echo 10)
	assert_contains "$(cat "$R/with.bmap")" \
		"<MappedBlocksCount> $want </MappedBlocksCount>" "$lead first"
	# And the copy writes the same.
	bm 0 --plugin-dir "$PLUGINS" copy --bmap "$R/with.bmap" "$R/img.simg" "$R/out"
	assert_same_file "$R/img" "$R/out" "copy of the simg ($lead first)"
	rm -f "$R/out"
done
note "plugins do not change what an Android sparse image maps"
