# Helpers for the ssh example's scripts; sourced, not run (mcc runs only
# all/, frontend/ and workers/).
# shellcheck shell=sh

die() {
    echo "ssh example on ${MCC_NODE:-$(hostname)}: $*" >&2
    exit 1
}

need_env() {
    for _var in "$@"; do
        eval "_val=\${$_var:-}"
        # shellcheck disable=SC2154  # set by eval
        [ -n "$_val" ] || die "$_var is not set (run this script through mcc)"
    done
}

# Where the front-end leaves the cluster's key for the other nodes.
KEY_DIR="${MCC_SHARED:-/nonexistent}/ssh"

# Copy the cluster key from $KEY_DIR into /root/.ssh and authorize it.
install_cluster_key() {
    if [ ! -s "$KEY_DIR/id_ed25519" ] || [ ! -s "$KEY_DIR/id_ed25519.pub" ]; then
        die "no cluster key in $KEY_DIR"
    fi
    (
        umask 077
        mkdir -p /root/.ssh
        chmod 700 /root/.ssh
        # Through a temporary file and rename: /root may be shared by nodes.
        tmp="/root/.ssh/.mcc.${MCC_NODE:-node}.$$"
        cp "$KEY_DIR/id_ed25519" "$tmp" && mv -f "$tmp" /root/.ssh/id_ed25519
        cp "$KEY_DIR/id_ed25519.pub" "$tmp" && mv -f "$tmp" /root/.ssh/id_ed25519.pub
        chmod 600 /root/.ssh/id_ed25519
        chmod 644 /root/.ssh/id_ed25519.pub
        pub=$(cat "$KEY_DIR/id_ed25519.pub")
        touch /root/.ssh/authorized_keys
        grep -qxF "$pub" /root/.ssh/authorized_keys ||
            printf '%s\n' "$pub" >>/root/.ssh/authorized_keys
        chmod 600 /root/.ssh/authorized_keys
    )
}
