# `bmaptk copy` from ftp://, sftp:// and file:// URLs on this machine: an FTP
# server made with python3-pyftpdlib (anonymous and user:secret; one
# transfer of a "drop." file is cut short to check resuming over FTP), an
# OpenSSH sshd on a high port with its own configuration, host key and a
# client key made here (skipped with a reason if sshd cannot run or libcurl
# lacks sftp), and file:// URLs. Copies must equal the image; missing files,
# bad passwords and unknown host keys exit 3 and leave no DEST.
set -u -o pipefail
. "$(dirname "$0")/lib.sh"
e2e_init
require_cmd cmp zstd gzip ssh-keygen "$PYTHON"
unset ftp_proxy FTP_PROXY all_proxy ALL_PROXY no_proxy NO_PROXY

D=$E2E_TMP/files
mkdir "$D"
IMG=$D/img.raw
SIZE=$((24 * 1024 * 1024 + 100))
"$PYTHON" - "$IMG" "$SIZE" <<'EOF' || fail "cannot generate the image"
import os
import random
import sys

MIB = 1024 * 1024
rng = random.Random(77)
path, size = sys.argv[1], int(sys.argv[2])
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
os.ftruncate(fd, size)
for off, n in [(0, 200000), (2 * MIB, 1000000), (2 * MIB + 1100000, 5000),
               (9 * MIB + 5, 1500000), (16 * MIB, 600000),
               (size - 3000, 3000)]:
    assert os.pwrite(fd, rng.randbytes(n), off) == n
os.close(fd)
EOF
"$BMAPTK" create "$IMG" -o "$IMG.bmap" 2>"$E2E_TMP/create.err" ||
	fail "bmaptk create: $(cat "$E2E_TMP/create.err")"
zstd -q -k "$IMG" && gzip -k "$IMG" || fail "cannot compress the image"
ln "$IMG.zst" "$D/drop.img.raw.zst" && ln "$IMG.bmap" "$D/drop.img.raw.bmap" ||
	fail "ln"

OUT=$E2E_TMP/out
mkdir "$OUT"
copy_ok() {
	rm -f "$OUT/a"
	bm 0 copy "$@" "$OUT/a"
	assert_same_file "$IMG" "$OUT/a" "copy of $*"
	rm -f "$OUT/a"
}
copy_fails() {
	rm -f "$OUT/a"
	bm 3 copy "$@" "$OUT/a"
	assert_no_file "$OUT/a" "DEST after a failed copy of $*"
}

# --- file:// ----------------------------------------------------------------
copy_ok "file://$IMG"
assert_contains "$RUN_ERR" "file://$IMG.bmap" "bmap found over file://"
copy_ok "file://$IMG.gz"
copy_fails --bmap "$IMG.bmap" "file://$D/missing.raw"
assert_contains "$RUN_ERR" "error: file://$D/missing.raw: not found" \
	"missing file://"

# --- ftp --------------------------------------------------------------------
if ! "$PYTHON" -c 'import pyftpdlib' 2>/dev/null; then
	skip_case "python3-pyftpdlib is not installed"
else
	cat >"$E2E_TMP/ftpd.py" <<'EOF'
import os
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import DTPHandler, FTPHandler
from pyftpdlib.servers import FTPServer

root, port_file = sys.argv[1], sys.argv[2]
cut = {"done": False}


class CuttingDTP(DTPHandler):
    """Cut the first transfer of a drop.* file that starts after byte 0
    (the first one is too short to cut reliably) after 100000 bytes."""

    start = 0

    def use_sendfile(self):
        return False

    def push_with_producer(self, producer):
        self.start = producer.file.tell()
        super().push_with_producer(producer)

    def send(self, data):
        name = os.path.basename(getattr(self.file_obj, "name", "") or "")
        if name.startswith("drop.") and not cut["done"] and \
                self.start > 0 and self.tot_bytes_sent + len(data) > 100000:
            cut["done"] = True
            self.close()
            return 0
        return super().send(data)


auth = DummyAuthorizer()
auth.add_user("user", "secret", root, perm="elr")
auth.add_anonymous(root)
handler = FTPHandler
handler.authorizer = auth
handler.dtp_handler = CuttingDTP
server = FTPServer(("127.0.0.1", 0), handler)
with open(port_file + ".tmp", "w") as f:
    f.write("%d\n" % server.socket.getsockname()[1])
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
EOF
	"$PYTHON" "$E2E_TMP/ftpd.py" "$D" "$E2E_TMP/ftp.port" \
		>"$E2E_TMP/ftpd.log" 2>&1 &
	FPID=$!
	on_exit "kill $FPID; wait $FPID"
	for ((i = 0; i < 100; i++)); do
		[ -s "$E2E_TMP/ftp.port" ] && break
		sleep 0.1
	done
	if [ ! -s "$E2E_TMP/ftp.port" ]; then
		skip_case "the FTP server did not start: $(cat "$E2E_TMP/ftpd.log")"
	else
		F=ftp://127.0.0.1:$(cat "$E2E_TMP/ftp.port")
		FU=ftp://user:secret@127.0.0.1:$(cat "$E2E_TMP/ftp.port")
		copy_ok "$F/img.raw"
		assert_contains "$RUN_ERR" "$F/img.raw.bmap" "bmap found over ftp"
		copy_ok "$FU/img.raw.zst"
		copy_fails --bmap "$IMG.bmap" "$F/missing.raw"
		assert_contains "$RUN_ERR" "error: $F/missing.raw: not found" \
			"missing over ftp"
		copy_fails --bmap "$IMG.bmap" \
			"ftp://user:nope@127.0.0.1:$(cat "$E2E_TMP/ftp.port")/img.raw"
		assert_contains "$RUN_ERR" "error: $F/img.raw: access denied" \
			"wrong FTP password"
		assert_not_contains "$RUN_ERR" "nope" "messages"
		copy_ok "$FU/drop.img.raw.zst"
		assert_contains "$RUN_ERR" "; retrying in 0.5 s (retry 1 of 5)" \
			"resumed FTP transfer"
		# (Only the URL source's own messages: the CLI's info lines
		# still show the URL as given.)
		assert_not_contains "$(grep -E 'error:|warning:' <<<"$RUN_ERR")" \
			"secret" "warnings"
	fi
fi

# --- sftp -------------------------------------------------------------------
sftp_case() {
	local S=$E2E_TMP/ssh port user
	start_sshd "$S" "$E2E_TMP/home" || return
	port=$SSHD_PORT
	user=$(id -un)
	echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$S/host_key.pub")" \
		>"$E2E_TMP/home/.ssh/known_hosts"
	local U=sftp://$user@127.0.0.1:$port$D
	local shown=sftp://127.0.0.1:$port$D
	HOME=$E2E_TMP/home
	copy_ok "$U/img.raw"
	copy_ok "$U/img.raw.zst"
	copy_fails --bmap "$IMG.bmap" "$U/missing.raw"
	assert_contains "$RUN_ERR" "error: $shown/missing.raw: not found" \
		"missing over sftp"
	# A host key that is not the server's: refused, also with --insecure
	# (about TLS certificates only; remote_security.sh has more).
	ssh-keygen -q -t ed25519 -N '' -f "$S/other_key" || fail "ssh-keygen"
	echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$S/other_key.pub")" \
		>"$E2E_TMP/home/.ssh/known_hosts"
	copy_fails "$U/img.raw"
	assert_contains "$RUN_ERR" "SSH host key verification failed: the server's SSH host key differs from the one in ~/.ssh/known_hosts" \
		"wrong host key"
	rm "$E2E_TMP/home/.ssh/known_hosts"
	copy_fails "$U/img.raw"
	assert_contains "$RUN_ERR" "the server's SSH host key is not in ~/.ssh/known_hosts" \
		"unknown host key"
	copy_fails --insecure "$U/img.raw.gz"
	assert_contains "$RUN_ERR" "the server's SSH host key is not in ~/.ssh/known_hosts" \
		"unknown host key with --insecure"
}
sftp_case
note "all cases passed"
