# A write-protected block device (a card's lock switch; here `losetup -r`)
# is refused while the destinations are validated: exit 2, one line
# saying it is read-only, and no claim that the device holds an
# incomplete image, since nothing was written.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd losetup cmp
[ "$(id -u)" = 0 ] || skip "loop devices need root"

e2e_ramdir R
fault_image "$R/img" 7
truncate -s 80M "$R/card"
head -c 1M /dev/urandom >"$R/before"
dd if="$R/before" of="$R/card" conv=notrunc status=none
DEV=$(losetup -r --find --show "$R/card" 2>/dev/null) ||
	skip "no free loop device"
on_exit "losetup -d '$DEV'"

bm 2 copy "$R/img" "$DEV"
assert_contains "$RUN_ERR" "$DEV is read-only (write-protect switch?)"
assert_not_contains "$RUN_ERR" "incomplete" "nothing was written"
assert_not_contains "$RUN_ERR" "write error"
cmp -s -n 1048576 "$R/before" "$R/card" || fail "the read-only card changed"
note "a write-protected device is refused before writing"
