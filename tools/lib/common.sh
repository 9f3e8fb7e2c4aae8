# Shared by tools/run, tools/test and the benchmarks. Source it; do not run it.

# Installs the Debian packages given as arguments when any is missing:
# apt-get update, then a non-interactive install (CI has no stdin). Idempotent.
ensure_packages() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing: ${missing[*]}" >&2
        local sudo=""
        [ "$(id -u)" -ne 0 ] && sudo="sudo"
        $sudo apt-get update -q
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}"
    fi
}

# What building voxbridge needs (native-tls links OpenSSL; espeakng-sys runs bindgen
# over the espeak-ng headers), and what it runs with (libespeak-ng, opened on first
# speech, comes with espeak-ng; libspandsp2, the fax engine, opened on the first fax;
# libtiff6 reads any TIFF handed to `fax send`, fonts-dejavu-core sets text onto pages).
BUILD_PACKAGES=(pkg-config libssl-dev gcc libespeak-ng-dev libclang-dev)
RUN_PACKAGES=(espeak-ng libspandsp2 libtiff6 fonts-dejavu-core)
# The real peers the tests talk to.
# libtiff-tools and poppler-utils: tiffcp decodes received faxes, pdftoppm renders their
# PDFs, to compare pixels. ffmpeg: the only encoder of AAC/M4A here, for the prompt import
# test (sox makes the other formats). openssl: the CA and certificates of the TLS tests;
# baresip-core: a real softphone calling over TLS (with SRTP); tcpdump: the capture that
# shows its media encrypted.
TEST_PACKAGES=(dovecot-imapd dovecot-pop3d dovecot-lmtpd sip-tester python3-aiosmtpd sox iproute2 libtiff-tools poppler-utils socat libsox-fmt-mp3 systemd ffmpeg openssl baresip-core tcpdump)
# What the benchmarks compare against (tools/bench-sync runs mbsync side by side).
BENCH_PACKAGES=(isync)

ensure_cargo() {
    if ! command -v cargo >/dev/null 2>&1; then
        [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
    fi
    command -v cargo >/dev/null 2>&1 || { echo "cargo not found: install Rust (https://rustup.rs)" >&2; exit 1; }
}

# The unprivileged user the test Dovecot instances store mail as.
ensure_mail_user() {
    id vbmail >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin vbmail
}
