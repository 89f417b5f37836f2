# OpenPGP-signed bmaps with `bmaptk copy` and `bmaptk check`, against keys
# this test makes with gpg: detached signatures found next to the bmap
# (BMAP.asc, armored, before BMAP.sig, binary) or given with --bmap-sig,
# clearsigned bmaps, --fingerprint, --keyring (with no GnuPG home at all).
# Every refusal (bad signature, unknown signer, expired or revoked key,
# expired signature, fingerprint that did not sign, --fingerprint or
# --keyring with no signature) must exit 1 with bmaptool 3.9's message,
# print nothing on stdout, leave a new DEST uncreated and an existing DEST
# byte for byte as it was. Past keys and signatures: gpg --faked-system-time.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd cmp stat date
[ -x /usr/bin/gpg ] || skip "/usr/bin/gpg is not installed (package gnupg)"
[ -x /usr/bin/gpgconf ] || skip "/usr/bin/gpgconf is not installed"
GPG=/usr/bin/gpg
T=$E2E_TMP

# A GnuPG home per key owner: H1 is the user's (trusted keys), H2 a
# stranger's. Agents started for them are killed at exit.
H1=$T/h1
H2=$T/h2
mkdir -m 700 "$H1" "$H2" || fail "cannot make GnuPG homes"
on_exit "/usr/bin/gpgconf --homedir '$H1' --kill all"
on_exit "/usr/bin/gpgconf --homedir '$H2' --kill all"
export GNUPGHOME=$H1

# gen HOME UID ALGO EXPIRE [GPGOPT...]: make a key without passphrase;
# prints its FPR.
gen() {
	GNUPGHOME=$1 $GPG --batch "${@:5}" --passphrase '' --quick-gen-key \
		"$2" "$3" default "$4" >"$T/gen.log" 2>&1 ||
		fail "gpg --quick-gen-key $2: $(cat "$T/gen.log")"
	GNUPGHOME=$1 $GPG --batch --with-colons --list-keys "$2" 2>/dev/null |
		awk -F: '$1 == "fpr" { print $10; exit }'
}

# sign HOME FPR MODE IN OUT [GPGOPT...]: MODE is armor, binary or clear.
sign() {
	local -a how
	case $3 in
	armor) how=(--armor --detach-sign) ;;
	binary) how=(--detach-sign) ;;
	clear) how=(--clearsign) ;;
	esac
	GNUPGHOME=$1 $GPG --batch --yes "${@:6}" --local-user "$2" \
		"${how[@]}" --output "$5" "$4" >"$T/sign.log" 2>&1 ||
		fail "gpg ${how[*]} $4 with $2: $(cat "$T/sign.log")"
}

UA="Alice Signer <alice@example.org>"
UE="Eve Expiring <eve@example.org>"
US="Sam Stale <sam@example.org>"
UR="Rob Revoked <rob@example.org>"
UU="Ursula Unknown <ursula@example.org>"

# Two small sparse images, A and B (different data, 3 ranges each), with
# bmaps.
MIB=$((1024 * 1024))
A=$T/a.img
B=$T/b.img
"$PYTHON" - "$A" "$B" <<'EOF2' || fail "cannot generate the images"
import os
import sys

for path, tag in ((sys.argv[1], b"A"), (sys.argv[2], b"B")):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    size = 2 * 1024 * 1024 + 1234
    os.ftruncate(fd, size)
    for off, n in ((0, 30000), (1024 * 1024 + 4096, 20000), (size - 234, 234)):
        line = b"image %s, data at %d\n" % (tag, off)
        os.pwrite(fd, (line * (n // len(line) + 1))[:n], off)
    os.fsync(fd)
    os.close(fd)
EOF2
for i in "$A" "$B"; do
	"$BMAPTK" create "$i" -o "$i.bmap" 2>"$T/create.err" ||
		fail "bmaptk create $i: $(cat "$T/create.err")"
done
cmp -s "$A.bmap" "$B.bmap" && fail "the two bmaps are identical"
[ "$(grep -c '<Range' "$A.bmap")" = 3 ] || fail "$A.bmap: expected 3 ranges"

# Keys and signatures from the past (gpg --faked-system-time): Eve's key
# lived one day, three days ago, and signed then; Sam's key is valid, but
# the signature he made three days ago expired after a day.
# Ed25519 keys are instant; Alice has GnuPG's default (RSA) key.
PAST="$(($(date +%s) - 3 * 86400))!"
SIGNED="$(($(date +%s) - 3 * 86400 + 3600))!"
FE=$(gen "$H1" "$UE" future-default 1d --faked-system-time "$PAST")
FS=$(gen "$H1" "$US" future-default 1y --faked-system-time "$PAST")
sign "$H1" "$FE" armor "$A.bmap" "$T/a.bmap.eve.asc" \
	--faked-system-time "$SIGNED"
sign "$H1" "$FS" armor "$A.bmap" "$T/a.bmap.sam.asc" \
	--faked-system-time "$SIGNED" --default-sig-expire 1d
FA=$(gen "$H1" "$UA" default 1y)
FR=$(gen "$H1" "$UR" future-default 1y)
FU=$(gen "$H2" "$UU" future-default 1y)
for f in "$FA" "$FE" "$FS" "$FR" "$FU"; do
	[ ${#f} = 40 ] || fail "bad key fingerprint [$f]"
done

# The other signatures.
sign "$H1" "$FA" armor "$A.bmap" "$T/a.bmap.alice.asc"
sign "$H1" "$FA" binary "$A.bmap" "$T/a.bmap.alice.sig"
sign "$H1" "$FA" clear "$A.bmap" "$T/a.clear.bmap"
sign "$H1" "$FR" armor "$A.bmap" "$T/a.bmap.rob.asc"
sign "$H2" "$FU" armor "$A.bmap" "$T/a.bmap.ursula.asc"
sign "$H2" "$FU" clear "$A.bmap" "$T/a.ursula.bmap"
sign "$H1" "$FA" armor "$B.bmap" "$T/b.bmap.alice.asc"
head -c 1 "$T/a.bmap.alice.sig" | grep -q -- - &&
	fail "gpg --detach-sign made an armored signature"
head -n 1 "$T/a.clear.bmap" | grep -qx -- '-----BEGIN PGP SIGNED MESSAGE-----' ||
	fail "gpg --clearsign made no clearsigned message"
$GPG --export "$FA" >"$T/alice.kr" && $GPG --export "$FR" >"$T/rob.kr" &&
	GNUPGHOME=$H2 $GPG --export "$FU" >"$T/ursula.kr" ||
	fail "gpg --export failed"
[ -s "$T/alice.kr" ] && [ -s "$T/ursula.kr" ] || fail "empty key export"

# An existing DEST, bigger than the image, that a refused copy must leave
# as it is (contents, size and mtime).
head -c $((3 * MIB)) /dev/urandom >"$T/old.img" || fail "cannot make old.img"

ENVV=() # environment changes for bmaptk (env arguments)

# bm WANT_RC ARG...: run bmaptk; check its exit status, that stdout stays
# empty and that no sanitizer reported anything. RUN_ERR has its stderr.
bm() {
	local want=$1
	shift
	run env "${ENVV[@]}" "$BMAPTK" "$@"
	assert_rc "$want" "bmaptk $*"
	assert_eq "" "$RUN_OUT" "stdout of bmaptk $*"
	assert_no_sanitizer "stderr of bmaptk $*"
}

# assert_verified UID FPR WHAT: the success message names the signer.
assert_verified() {
	grep -F "successfully verified bmap file signature" "$T/run.err" |
		grep -F "$1" | grep -qF "$2" ||
		fail "$3: no success message naming $1 and $2: [$RUN_ERR]"
}

# copy_ok WHAT UID FPR ARG...: `copy ARG... NEW` succeeds, verifies the
# signature of UID/FPR and writes the image. The image is the last ARG.
copy_ok() {
	local what=$1 uid=$2 fpr=$3
	shift 3
	local img=${*: -1}
	rm -f "$T/new.img"
	bm 0 copy "$@" "$T/new.img"
	assert_verified "$uid" "$fpr" "$what"
	assert_contains "$RUN_ERR" "ranges verified" "$what"
	assert_same_file "$img" "$T/new.img" "$what"
	note "ok: $what"
}

# copy_refused WHAT RC MSG ARG...: `copy ARG... DEST` exits RC with MSG in
# its stderr, onto a new DEST (must not appear) and onto an existing one
# (must not change).
copy_refused() {
	local what=$1 rc=$2 msg=$3 before
	shift 3
	rm -f "$T/new.img"
	bm "$rc" copy "$@" "$T/new.img"
	assert_contains "$RUN_ERR" "$msg" "$what"
	assert_not_contains "$RUN_ERR" "successfully verified" "$what"
	assert_no_file "$T/new.img" "$what: new DEST"
	cp -p "$T/old.img" "$T/dest.img"
	before=$(stat -c '%s %y' "$T/dest.img")
	bm "$rc" copy "$@" "$T/dest.img"
	assert_contains "$RUN_ERR" "$msg" "$what (existing DEST)"
	assert_same_file "$T/old.img" "$T/dest.img" "$what: existing DEST"
	assert_eq "$before" "$(stat -c '%s %y' "$T/dest.img")" \
		"$what: size and mtime of the existing DEST"
	note "ok: refused: $what"
}

BAD="discovered a BAD GPG signature"
sig() { # SRC: make SRC A's discovered detached signature (and only it)
	rm -f "$A.bmap.asc" "$A.bmap.sig" "$B.bmap.asc" "$B.bmap.sig"
	[ -z "${1:-}" ] || cp "$1" "$A.bmap.${1##*.}"
}

# Detached signatures found next to the bmap, given, or preferred.
sig "$T/a.bmap.alice.asc"
copy_ok "detached armored A.bmap.asc" "$UA" "$FA" "$A"
assert_contains "$RUN_ERR" "discovered signature file for bmap '$A.bmap.asc'" \
	"discovery of .asc"
sig "$T/a.bmap.alice.sig"
copy_ok "detached binary A.bmap.sig" "$UA" "$FA" "$A"
assert_contains "$RUN_ERR" "discovered signature file for bmap '$A.bmap.sig'" \
	"discovery of .sig"
sig "$T/a.bmap.alice.asc"
cp "$T/a.bmap.ursula.asc" "$A.bmap.sig"
copy_ok ".asc is used before .sig" "$UA" "$FA" "$A"
sig "$T/a.bmap.ursula.asc"
cp "$T/a.bmap.alice.sig" "$A.bmap.sig"
copy_refused ".asc is used before .sig (bad .asc)" 1 "$BAD" "$A"
sig
copy_ok "--bmap-sig" "$UA" "$FA" --bmap-sig "$T/a.bmap.alice.sig" "$A"
copy_ok "--bmap-sig with --bmap" "$UA" "$FA" --bmap "$A.bmap" \
	--bmap-sig "$T/a.bmap.alice.asc" "$A"
sig "$T/a.bmap.alice.asc"
copy_ok "--fingerprint of the signer" "$UA" "$FA" --fingerprint "$FA" "$A"

# Clearsigned bmaps, given and discovered.
sig
copy_ok "clearsigned, --bmap" "$UA" "$FA" --bmap "$T/a.clear.bmap" "$A"
assert_contains "$RUN_ERR" "discovered inline signature in $T/a.clear.bmap" \
	"clearsigned"
cp "$T/a.clear.bmap" "$T/c.img.bmap"
cp "$A" "$T/c.img"
copy_ok "clearsigned, discovered" "$UA" "$FA" "$T/c.img"
copy_ok "clearsigned, --fingerprint" "$UA" "$FA" --fingerprint "$FA" \
	--bmap "$T/a.clear.bmap" "$A"

# Bad signatures: A's signature on B's bmap, an edited clearsigned text.
cp "$T/a.bmap.alice.asc" "$B.bmap.asc"
copy_refused "A's signature next to B's bmap" 1 "$BAD" "$B"
rm -f "$B.bmap.asc"
copy_refused "--bmap-sig of another bmap" 1 "$BAD" \
	--bmap-sig "$T/a.bmap.alice.sig" "$B"
copy_refused "--bmap-sig of another bmap, armored" 1 "$BAD" \
	--bmap-sig "$T/a.bmap.alice.asc" "$B"
sed 's/<BlockSize>/<BlockSize> /' "$T/a.clear.bmap" >"$T/edited.bmap"
cmp -s "$T/a.clear.bmap" "$T/edited.bmap" && fail "cannot edit a.clear.bmap"
copy_refused "edited clearsigned bmap" 1 "$BAD" --bmap "$T/edited.bmap" "$A"
echo "this is not an OpenPGP signature" >"$T/junk.asc"
copy_refused "a signature file that is not one" 1 \
	"failure when trying to verify the GPG signature" \
	--bmap-sig "$T/junk.asc" "$A"
copy_refused "--bmap-sig naming no file" 2 "$T/nosuch.asc" \
	--bmap-sig "$T/nosuch.asc" "$A"

# Unknown signer: Ursula's key is not in GNUPGHOME.
sig "$T/a.bmap.ursula.asc"
copy_refused "unknown signer, detached" 1 "$BAD" "$A"
sig
copy_refused "unknown signer, clearsigned" 1 "$BAD" \
	--bmap "$T/a.ursula.bmap" "$A"

# --fingerprint: of a key that did not sign; without any signature.
sig "$T/a.bmap.alice.asc"
copy_refused "--fingerprint of another key" 1 \
	"requested fingerprint $FR did not sign" --fingerprint "$FR" "$A"
copy_refused "--fingerprint of another key, clearsigned" 1 \
	"requested fingerprint $FU did not sign" --fingerprint "$FU" \
	--bmap "$T/a.clear.bmap" "$A"
sig
copy_refused "--fingerprint without a signature" 1 \
	"no signature found but --fingerprint given" --fingerprint "$FA" "$A"
copy_refused "--keyring without a signature" 1 \
	"no signature found but --keyring given" --keyring "$T/alice.kr" "$A"

# --no-sig-verify: a bad signature is not looked at; with --bmap-sig it is
# a usage error.
cp "$T/a.bmap.alice.asc" "$B.bmap.asc"
rm -f "$T/new.img"
bm 0 copy --no-sig-verify "$B" "$T/new.img"
assert_same_file "$B" "$T/new.img" "--no-sig-verify"
assert_not_contains "$RUN_ERR" "$BAD" "--no-sig-verify"
note "ok: --no-sig-verify"
copy_refused "--bmap-sig with --no-sig-verify" 2 "cannot be used together" \
	--no-sig-verify --bmap-sig "$T/a.bmap.alice.asc" "$A"
rm -f "$B.bmap.asc"

# --keyring alone: no GnuPG home at all (GNUPGHOME unset, HOME empty, or
# GNUPGHOME naming nothing), and the keys of GNUPGHOME are not used.
sig "$T/a.bmap.alice.asc"
ENVV=(-u GNUPGHOME HOME="$T/nohome")
copy_ok "--keyring, GNUPGHOME unset" "$UA" "$FA" --keyring "$T/alice.kr" "$A"
assert_no_file "$T/nohome" "--keyring: HOME"
copy_ok "--keyring + --fingerprint" "$UA" "$FA" --keyring "$T/alice.kr" \
	--fingerprint "$FA" "$A"
copy_ok "--keyring, clearsigned" "$UA" "$FA" --keyring "$T/alice.kr" \
	--bmap "$T/a.clear.bmap" "$A"
ENVV=(GNUPGHOME="$T/nowhere")
copy_ok "--keyring, GNUPGHOME names nothing" "$UA" "$FA" \
	--keyring "$T/alice.kr" "$A"
assert_no_file "$T/nowhere" "--keyring: GNUPGHOME"
ENVV=()
copy_refused "--keyring without the signer (signer in GNUPGHOME)" 1 "$BAD" \
	--keyring "$T/rob.kr" "$A"
sig "$T/a.bmap.ursula.asc"
copy_ok "--keyring with a signer unknown to GNUPGHOME" "$UU" "$FU" \
	--keyring "$T/ursula.kr" "$A"
sig
copy_refused "--keyring that is no keyring" 2 "$T/junk.asc" \
	--keyring "$T/junk.asc" --bmap-sig "$T/a.bmap.alice.asc" "$A"

# check: the same verification before reading DEST.
sig "$T/a.bmap.alice.asc"
cp "$A" "$T/check.img"
bm 0 check "$A.bmap" "$T/check.img"
assert_verified "$UA" "$FA" "check with A.bmap.asc"
assert_contains "$RUN_ERR" "3 of 3 ranges verified, 0 bad" \
	"check with A.bmap.asc"
bm 0 check "$A" "$T/check.img"
assert_verified "$UA" "$FA" "check IMAGE (discovered bmap and signature)"
bm 0 check --bmap "$T/a.clear.bmap" "$A" "$T/check.img"
assert_verified "$UA" "$FA" "check with a clearsigned bmap"
bm 1 check --fingerprint "$FR" "$A.bmap" "$T/check.img"
assert_contains "$RUN_ERR" "requested fingerprint $FR did not sign" \
	"check --fingerprint of another key"
assert_not_contains "$RUN_ERR" "ranges verified" "check refused"
cp "$T/a.bmap.alice.asc" "$B.bmap.asc"
cp "$B" "$T/check.img"
bm 1 check "$B.bmap" "$T/check.img"
assert_contains "$RUN_ERR" "$BAD" "check with a bad signature"
assert_not_contains "$RUN_ERR" "ranges verified" "check with a bad signature"
rm -f "$B.bmap.asc"
note "ok: check"

# Revoked: Rob's signature verifies, then his key is revoked with the
# certificate GnuPG stored when it made the key.
sig "$T/a.bmap.rob.asc"
copy_ok "Rob's key before revocation" "$UR" "$FR" "$A"
REV=$H1/openpgp-revocs.d/$FR.rev
[ -f "$REV" ] || fail "no revocation certificate $REV"
sed 's/^:-----BEGIN/-----BEGIN/' "$REV" >"$T/rob.rev"
$GPG --batch --import "$T/rob.rev" >"$T/import.log" 2>&1 ||
	fail "cannot import $REV: $(cat "$T/import.log")"
$GPG --batch --with-colons --list-keys "$FR" 2>/dev/null | grep -q '^pub:r:' ||
	fail "Rob's key is not revoked after importing $REV"
copy_refused "revoked key" 1 "$BAD" "$A"
assert_contains "$RUN_ERR" "revoked" "revoked key"

# Expired: Eve's key (her signature was made while it was valid), Sam's
# signature.
$GPG --batch --with-colons --list-keys "$FE" 2>/dev/null | grep -q '^pub:e:' ||
	fail "Eve's key has not expired"
sig "$T/a.bmap.eve.asc"
copy_refused "expired key" 1 "$BAD" "$A"
assert_contains "$RUN_ERR" "expired" "expired key"
sig "$T/a.bmap.sam.asc"
copy_refused "expired signature" 1 "$BAD" "$A"
assert_contains "$RUN_ERR" "expired" "expired signature"
# Whom a signature trusts. Ursula's key merely imported into the user's
# home (never certified, no ownertrust) signs nothing that counts: gpg
# itself warns "not certified with a trusted signature". Pinning her
# fingerprint, or giving her keyring file, is the explicit trust.
$GPG --batch --import "$T/ursula.kr" >"$T/import.log" 2>&1 ||
	fail "cannot import Ursula's key: $(cat "$T/import.log")"
sig "$T/a.bmap.ursula.asc"
copy_refused "imported, uncertified key" 1 \
	"bmap signed by key 0x$FU which is not trusted; use --keyring FILE or --fingerprint FPR to trust it explicitly" "$A"
sig
copy_refused "clearsigned by an uncertified key" 1 "which is not trusted" \
	--bmap "$T/a.ursula.bmap" "$A"
sig "$T/a.bmap.ursula.asc"
copy_ok "uncertified key, pinned with --fingerprint" "$UU" "$FU" \
	--fingerprint "$FU" "$A"
copy_ok "uncertified key, in --keyring" "$UU" "$FU" \
	--keyring "$T/ursula.kr" "$A"
sig

# A clearsigned bmap and a detached signature at once: bmaptool refuses it.
rm -f "$T/new.img"
bm 2 copy --bmap "$T/a.clear.bmap" --bmap-sig "$T/a.bmap.alice.asc" "$A" \
	"$T/new.img"
assert_contains "$RUN_ERR" "clearsigned; it cannot also have a detached signature"
assert_no_file "$T/new.img" "clearsigned + --bmap-sig"

# --keyring or --fingerprint and a signature file without signatures (a
# key block where the signature should be) is an error, not a warning.
$GPG --armor --export "$FA" >"$T/nosigs.asc" || fail "gpg --export failed"
for opt in "--keyring $T/alice.kr" "--fingerprint $FA"; do
	# shellcheck disable=SC2086 # opt is two words on purpose
	run env "${ENVV[@]}" "$BMAPTK" copy $opt --bmap-sig "$T/nosigs.asc" \
		"$A" "$T/new.img"
	[ "$RUN_RC" != 0 ] || fail "$opt with a signature file of no signatures: exit 0"
	assert_not_contains "$RUN_ERR" "successfully verified" "$opt, no signatures"
	assert_no_file "$T/new.img" "$opt, no signatures"
done
note "ok: trust rules"
sig
note "all cases passed"
